/** Time as an explicit dependency, so code that ages or expires things can be tested. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

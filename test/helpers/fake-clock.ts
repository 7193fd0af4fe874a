import type { Clock } from "../../src/clock.js";

/** A clock that moves only when told to; `sleep` records the wait and returns at once. */
export interface FakeClock extends Clock {
  advance(ms: number): void;
  sleeps: number[];
}

export function createFakeClock(start = Date.UTC(2026, 10, 24, 12)): FakeClock {
  let now = start;
  const sleeps: number[] = [];
  return {
    now: () => now,
    advance: (ms) => void (now += ms),
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    sleeps,
  };
}

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
      // A turn of the event loop, as a timer takes: a loop of sleeps in the code under test then
      // lets the test's timeout fire. Resolved at once, it never let go of the thread (a hang no
      // timeout could end).
      await new Promise((resolve) => setImmediate(resolve));
    },
    sleeps,
  };
}

/** A clock whose `sleep` waits until `advance` moves time past its end, as timers do. */
export interface ManualClock extends Clock {
  advance(ms: number): Promise<void>;
}

export function createManualClock(start = Date.UTC(2026, 10, 24, 12)): ManualClock {
  let now = start;
  let sleepers: Array<{ until: number; wake: () => void }> = [];
  return {
    now: () => now,
    sleep: (ms) => new Promise((wake) => sleepers.push({ until: now + ms, wake })),
    advance: async (ms) => {
      now += ms;
      const due = sleepers.filter((s) => s.until <= now);
      sleepers = sleepers.filter((s) => s.until > now);
      for (const sleeper of due) sleeper.wake();
      // Let what the sleepers start get going before the caller looks.
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

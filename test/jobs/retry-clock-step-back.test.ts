import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { JobRunner } from "../../src/jobs/job-runner.js";
import type { Clock } from "../../src/clock.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

/**
 * A system clock as a server sees it: `now()` is the wall clock, which an NTP correction (or a VM
 * restored from a snapshot) can step back, while timers (`sleep`) run on monotonic time and are
 * not moved by such a step.
 */
function steppableClock(start = Date.UTC(2026, 10, 24, 12)) {
  let monotonic = 0;
  let wallOffset = start;
  let sleepers: Array<{ until: number; wake: () => void }> = [];
  const clock: Clock & {
    advance(ms: number): Promise<void>;
    stepWallClock(ms: number): void;
  } = {
    now: () => monotonic + wallOffset,
    sleep: (ms, signal) =>
      new Promise<void>((wake) => {
        if (signal?.aborted) return wake();
        sleepers.push({ until: monotonic + ms, wake });
        signal?.addEventListener("abort", () => wake(), { once: true });
      }),
    // Real time passing, a minute at a time, letting what the timers start run.
    advance: async (ms) => {
      const end = monotonic + ms;
      while (monotonic < end) {
        monotonic = Math.min(end, monotonic + 60_000);
        const due = sleepers.filter((s) => s.until <= monotonic);
        sleepers = sleepers.filter((s) => s.until > monotonic);
        for (const sleeper of due) sleeper.wake();
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      }
    },
    stepWallClock: (ms) => void (wallOffset += ms),
  };
  return clock;
}

describe("retries and a wall clock stepped back", () => {
  // A retry's time is a wall-clock instant: a clock stepped back a day after the failure (an
  // NTP correction, a restored snapshot) made a 30 s retry wait the day, and every later job of
  // its thread with it. No retry waits longer than the longest delay the runner asks for.
  it("runs a 30 s retry within two hours even after the wall clock steps back a day", async () => {
    const logs = await captureLogs("warn");
    const clock = steppableClock();
    const journal = await JobJournal.open({
      file: join(makeDataDir(), "journal.log"),
      maxQueued: 100,
      retentionMs: 72 * 3_600_000,
      maxFinished: 100,
      clock,
      log: logs.log,
    });
    onTestFinished(() => journal.close());
    const runner = new JobRunner<string>({
      queue: journal,
      concurrency: 4,
      maxAttempts: 5,
      clock,
      log: logs.log,
      metrics: createMetrics(),
    });
    let runs = 0;
    runner.register("work", async () => {
      runs++;
      // A GitHub 502: retryable, so retried after 30 s.
      if (runs === 1) throw Object.assign(new Error("Bad Gateway"), { status: 502 });
    });
    runner.start(async () => "context");
    onTestFinished(() => runner.stop(0).then(() => undefined));

    const failed = runner.waitFor("d1").catch(() => undefined);
    await runner.submit(
      { id: "d1", kind: "work", event: "issues.opened", thread: "o/r#1", payload: {} },
      "context",
    );
    await failed;
    expect(runs).toBe(1);
    const waiting = journal.list().find((job) => job.id === "d1");
    expect(waiting?.retryAt).toBe(clock.now() + 30_000);

    // NTP steps the wall clock back by a day; then two hours of real time pass.
    clock.stepWallClock(-24 * 3_600_000);
    await clock.advance(2 * 3_600_000);
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(runs).toBe(2);
  });
});

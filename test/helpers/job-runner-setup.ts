import { join } from "node:path";
import { onTestFinished } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { JobRunner } from "../../src/jobs/job-runner.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createManualClock } from "./fake-clock.js";
import { captureLogs, makeDataDir } from "./test-app.js";

/**
 * A job journal in a fresh file (or `file`, to open one again) and a runner over it, on a manual
 * clock, with captured logs and metrics of their own.
 */
export async function setupJobRunner(
  options: { concurrency?: number; maxAttempts?: number; file?: string } = {},
) {
  const logs = await captureLogs("info");
  const clock = createManualClock();
  const file = options.file ?? join(makeDataDir(), "journal.log");
  const journal = await JobJournal.open({
    file,
    maxQueued: 100,
    retentionMs: 3_600_000,
    maxFinished: 100,
    clock,
    log: logs.log,
  });
  // Its file handle, else closed by the garbage collector (a deprecation warning, later an error).
  onTestFinished(() => journal.close());
  const metrics = createMetrics();
  const runner = new JobRunner<string>({
    queue: journal,
    concurrency: options.concurrency ?? 4,
    maxAttempts: options.maxAttempts ?? 3,
    clock,
    log: logs.log,
    metrics,
  });
  return { runner, journal, clock, logs, metrics, file };
}

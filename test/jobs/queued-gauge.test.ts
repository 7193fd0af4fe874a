import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import type { NewJob } from "../../src/jobs/job-queue.js";
import { JobRunner } from "../../src/jobs/job-runner.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

function job(id: string, thread = "1/10#1"): NewJob {
  return {
    id,
    kind: "work",
    event: "issues.opened",
    thread,
    repository: "octo/hello",
    installation: 1,
    payload: { id },
  };
}

async function open(file: string) {
  const logs = await captureLogs("info");
  const clock = createManualClock();
  const journal = await JobJournal.open({
    file,
    maxQueued: 100,
    retentionMs: 72 * 3_600_000,
    maxFinished: 100,
    clock,
    log: logs.log,
  });
  onTestFinished(() => journal.close());
  const metrics = createMetrics();
  const runner = new JobRunner<string>({
    queue: journal,
    concurrency: 2,
    maxAttempts: 3,
    clock,
    log: logs.log,
    metrics,
  });
  return { journal, runner, metrics };
}

describe("what `talos jobs` and the metrics say", () => {
  it("talos_jobs_queued counts the parked jobs a restart found in the journal", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await open(file);
    for (const id of ["p1", "p2", "p3"]) {
      await first.journal.enqueue(job(id, `1/10#${id}`));
      const claimed = await first.journal.claimNext();
      await first.journal.fail(claimed!.id, "HttpError: 422 Validation Failed", undefined);
    }
    await first.journal.close();

    const second = await open(file);
    second.runner.register("work", async () => undefined);
    second.runner.start(async () => "context");
    await second.runner.idle();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await second.journal.count()).toBe(3);
    // The gauge the README describes as "Jobs counted against TALOS_JOB_QUEUE_MAX".
    const gauge = (await second.metrics.jobsQueued.get()).values[0]?.value;
    expect(gauge).toBe(3);
  });
});

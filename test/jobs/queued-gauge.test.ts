import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { NewJob } from "../../src/jobs/job-queue.js";
import { setupJobRunner } from "../helpers/job-runner-setup.js";
import { makeDataDir } from "../helpers/test-app.js";

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

describe("what `talos jobs` and the metrics say", () => {
  it("talos_jobs_queued counts the parked jobs a restart found in the journal", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await setupJobRunner({ file, concurrency: 2 });
    for (const id of ["p1", "p2", "p3"]) {
      await first.journal.enqueue(job(id, `1/10#${id}`));
      const claimed = await first.journal.claimNext();
      await first.journal.fail(claimed!.id, "HttpError: 422 Validation Failed", undefined);
    }
    await first.journal.close();

    const second = await setupJobRunner({ file, concurrency: 2 });
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

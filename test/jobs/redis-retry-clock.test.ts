import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { MAX_RETRY_WAIT_MS, type Job, type NewJob } from "../../src/jobs/job-queue.js";
import { RedisJobQueue } from "../../src/jobs/redis-job-queue.js";
import { deleteKeys, requireRedis, TEST_REDIS_URL } from "../helpers/shared-services.js";

const available = await requireRedis("Redis retry times and clocks");

const job = (id: string, thread: string): NewJob => ({
  id,
  kind: "work",
  event: "issues.edited",
  thread,
  repository: "acme/widgets",
  payload: { id },
});

describe.runIf(available)("the Redis job queue and a retry time set by a clock a day ahead", () => {
  const prefixes: string[] = [];
  const queues: RedisJobQueue[] = [];
  afterAll(async () => {
    await Promise.allSettled(queues.map((q) => q.close()));
    for (const prefix of prefixes) await deleteKeys(prefix);
  });

  // The local journal (job-journal.ts, retry-clock-step-back.test.ts) treats a retry time
  // further off than MAX_RETRY_WAIT_MS as set by a clock since stepped back (or, across
  // instances, a skewed clock) and runs it now. The Redis queue's CLAIM honours any retry time,
  // so a 30 s retry recorded by an instance whose wall clock was a day ahead holds the job, and
  // every later job of its issue, for a day.
  it("runs a retry whose time is further off than MAX_RETRY_WAIT_MS at once, and its thread goes on", async () => {
    const prefix = `talos-review-${randomUUID()}`;
    prefixes.push(prefix);
    const open = () =>
      RedisJobQueue.open({
        url: TEST_REDIS_URL,
        prefix,
        maxQueued: 100,
        retentionMs: 3_600_000,
        leaseMs: 5_000,
        clock: systemClock,
        log: pino({ level: "silent" }),
      });
    const [a, b] = [await open(), await open()];
    queues.push(a, b);
    await a.enqueue(job("skewed", "t"));
    await a.enqueue(job("after-it", "t"));
    expect((await a.claimNext())?.id).toBe("skewed");
    // A 30 s retry, as computed by a runner whose wall clock was a day ahead (then corrected).
    const retryAt = Date.now() + 24 * 3_600_000 + 30_000;
    expect(retryAt - Date.now()).toBeGreaterThan(MAX_RETRY_WAIT_MS);
    await a.fail("skewed", "GitHub 502", retryAt);

    const seen: string[] = [];
    const until = Date.now() + 6_000;
    while (Date.now() < until && seen.length < 2) {
      const claimed: Job | undefined = await b.claimNext();
      if (claimed) {
        seen.push(claimed.id);
        await b.complete(claimed.id);
      } else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(seen).toEqual(["skewed", "after-it"]);
  }, 20_000);
});

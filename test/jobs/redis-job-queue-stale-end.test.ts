import { randomUUID } from "node:crypto";
import { Job as BullJob, Queue } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import type { NewJob } from "../../src/jobs/job-queue.js";
import { JobLeaseLostError, RedisJobQueue } from "../../src/jobs/redis-job-queue.js";
import { deleteKeys, requireRedis, TEST_REDIS_URL } from "../helpers/shared-services.js";

const available = await requireRedis("the Redis job queue's stale-end tests");

function job(id: string, thread: string): NewJob {
  return {
    id,
    kind: "work",
    event: "issues.edited",
    thread,
    repository: "acme/widgets",
    installation: 7,
    payload: { id },
  };
}

// A claim whose lease ran out in Redis before this instance's own timer said so (a process
// paused, a GC or event loop stalled past the lease's margin: the run's last answer is handled
// before the timer fires) still ends its job. Another instance has taken the job meanwhile.
describe.runIf(available)("the Redis job queue's end of a claim it no longer holds", () => {
  const prefixes: string[] = [];
  const queues: RedisJobQueue[] = [];
  const redis = new Redis(TEST_REDIS_URL);

  async function instances(count: number) {
    const prefix = `talos-test-stale-${randomUUID()}`;
    prefixes.push(prefix);
    const opened = await Promise.all(
      Array.from({ length: count }, () =>
        RedisJobQueue.open({
          url: TEST_REDIS_URL,
          prefix,
          maxQueued: 100,
          retentionMs: 3_600_000,
          // Long: this instance's own timers neither renew nor give the claim up in the test.
          leaseMs: 600_000,
          clock: systemClock,
          log: pino({ level: "silent" }),
        }),
      ),
    );
    queues.push(...opened);
    return { prefix, queues: opened };
  }

  /**
   * What a lapsed lease leads to: the thread's lease and BullMQ's lock on the job run out, BullMQ's
   * stalled-job check puts the job back to wait, and `other` claims it.
   */
  async function takeOver(prefix: string, id: string, other: RedisJobQueue) {
    const token = (await redis.get(`${prefix}:jobs:${id}:lock`))!;
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue("jobs", { prefix, connection });
    try {
      await redis.del(`${prefix}:lease:t`);
      const bull = await BullJob.fromId(queue, id);
      await bull!.moveToWait(token);
    } finally {
      await queue.close();
      connection.disconnect();
    }
    const taken = await other.claimNext();
    expect(taken).toMatchObject({ id, attempts: 2 });
    return taken!;
  }

  afterAll(async () => {
    await Promise.allSettled(queues.map((queue) => queue.close()));
    for (const prefix of prefixes) await deleteKeys(prefix);
    redis.disconnect();
  });

  it.each([
    ["completes", (q: RedisJobQueue) => q.complete("stale")],
    ["parks", (q: RedisJobQueue) => q.fail("stale", "HTTP 422", undefined)],
    ["retries (rate-limited)", (q: RedisJobQueue) => q.fail("stale", "HTTP 403", Date.now(), true)],
  ])(
    "records nothing when it %s a job another instance took over, and gives the claim up",
    async (_, end) => {
      const {
        prefix,
        queues: [a, b],
      } = await instances(2);
      await a!.enqueue(job("stale", "t"));
      await a!.enqueue(job("stale-next", "t"));
      const stale = await a!.claimNext();
      expect(stale?.id).toBe("stale");
      const taken = await takeOver(prefix, "stale", b!);
      const owner = await redis.get(`${prefix}:lease:t`);

      const ended = await end(a!).then(
        () => "resolved",
        (error: unknown) => error,
      );

      // The job is still b's, its run's to end: neither finished, nor out of its thread, nor one
      // attempt less.
      expect(await redis.exists(`${prefix}:done:stale`, `${prefix}:parked:stale`)).toBe(0);
      expect(await redis.lrange(`${prefix}:thread:t`, 0, -1)).toEqual(["stale", "stale-next"]);
      expect(await redis.get(`${prefix}:lease:t`)).toBe(owner);
      expect(await redis.hget(`${prefix}:attempts`, "stale")).toBe("2");
      expect(await redis.hexists(`${prefix}:retry-at`, "stale")).toBe(0);
      expect(await redis.zscore(`${prefix}:share:7`, "stale")).toBe("inf");
      expect(taken.lease!.aborted).toBe(false);
      expect(stale!.lease!.reason).toBeInstanceOf(JobLeaseLostError);
      // Not an error for the runner to log as an end it could not record.
      expect(ended).toBe("resolved");
      // b's run ends it, and the thread goes on.
      await b!.fail("stale", "GitHub 502", Date.now());
      const again = await b!.claimNext();
      expect(again).toMatchObject({ id: "stale", attempts: 3 });
      await b!.complete("stale");
      const next = await b!.claimNext();
      expect(next?.id).toBe("stale-next");
      await b!.complete("stale-next");
    },
    20_000,
  );

  it("still records the end of a claim whose lease ran out when no one took the job meanwhile", async () => {
    const {
      prefix,
      queues: [a],
    } = await instances(1);
    await a!.enqueue(job("lapsed", "t"));
    await a!.enqueue(job("lapsed-next", "t"));
    expect((await a!.claimNext())?.id).toBe("lapsed");
    await redis.del(`${prefix}:lease:t`);
    await a!.complete("lapsed");
    expect(await redis.exists(`${prefix}:done:lapsed`)).toBe(1);
    expect((await a!.claimNext())?.id).toBe("lapsed-next");
    await a!.complete("lapsed-next");
  });
});

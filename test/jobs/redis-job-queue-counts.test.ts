import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import type { NewJob } from "../../src/jobs/job-queue.js";
import { RedisJobQueue } from "../../src/jobs/redis-job-queue.js";
import { deleteKeys, requireRedis, TEST_REDIS_URL } from "../helpers/shared-services.js";

const available = await requireRedis("the Redis job queue's retention and run counts");

function job(id: string, thread: string): NewJob {
  return {
    id,
    kind: "work",
    event: "issues.edited",
    thread,
    repository: "acme/widgets",
    payload: { id },
  };
}

describe.runIf(available)("the Redis job queue's retention and run counts", () => {
  const prefixes: string[] = [];
  const queues: RedisJobQueue[] = [];
  async function open(prefix: string, retentionMs: number) {
    const queue = await RedisJobQueue.open({
      url: TEST_REDIS_URL,
      prefix,
      maxQueued: 100,
      retentionMs,
      leaseMs: 5_000,
      clock: systemClock,
      log: pino({ level: "silent" }),
    });
    queues.push(queue);
    return queue;
  }
  function newPrefix() {
    const prefix = `talos-test-counts-${randomUUID()}`;
    prefixes.push(prefix);
    return prefix;
  }
  afterAll(async () => {
    await Promise.allSettled(queues.map((q) => q.close()));
    for (const p of prefixes) await deleteKeys(p);
  });

  it("accepts deliveries, and records their end, with a TALOS_LEDGER_RETENTION_HOURS the config accepts (1.1)", async () => {
    // As create-services.ts computes it: TALOS_LEDGER_RETENTION_HOURS * 3_600_000.
    const retentionMs = 1.1 * 3_600_000;
    const prefix = newPrefix();
    const a = await open(prefix, retentionMs);
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const enqueued = await a
        .enqueue(job("fractional", "t"))
        .catch((error: Error) => error.message);
      // Whatever the answer, the job is in BullMQ and its thread, and runs.
      const claimed = await a.claimNext();
      const completed = await a.complete("fractional").then(
        () => "ok",
        (error: Error) => error.message,
      );
      expect({
        enqueued,
        claimed: claimed?.id,
        completed,
        done: await redis.exists(`${prefix}:done:fractional`),
      }).toEqual({
        enqueued: { status: "accepted" },
        claimed: "fractional",
        completed: "ok",
        done: 1,
      });
    } finally {
      redis.disconnect();
    }
  });

  it("lists a parked job with the runs it started, not the claims that found it not yet its turn", async () => {
    const prefix = newPrefix();
    const a = await open(prefix, 3_600_000);
    await a.enqueue(job("ahead", "t"));
    await a.enqueue(job("behind", "t"));
    expect((await a.claimNext())?.id).toBe("ahead");
    // `behind` is not yet its turn: put aside, not run.
    expect(await a.claimNext()).toBeUndefined();
    await a.complete("ahead");
    const run = await a.claimNext();
    expect(run).toMatchObject({ id: "behind", attempts: 1 });
    await a.fail("behind", "malformed payload", undefined);
    const { jobs } = await a.snapshot();
    // `talos jobs` prints "(N attempt(s))" from this: it ran once.
    expect(jobs.find((j) => j.id === "behind")).toMatchObject({
      parked: { error: "malformed payload" },
      attempts: 1,
    });
  });
});

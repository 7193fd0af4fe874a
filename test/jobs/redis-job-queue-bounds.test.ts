import { randomUUID } from "node:crypto";
import { Job as BullJob, Queue } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, describe, expect, it, vi } from "vitest";
import { type Clock, systemClock } from "../../src/clock.js";
import type { EnqueueResult, Job, NewJob } from "../../src/jobs/job-queue.js";
import { JobRunner } from "../../src/jobs/job-runner.js";
import { RedisJobQueue } from "../../src/jobs/redis-job-queue.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { deleteKeys, requireRedis, TEST_REDIS_URL } from "../helpers/shared-services.js";

const available = await requireRedis("the Redis job queue's bound tests");

function job(id: string, thread: string, installation?: number): NewJob {
  return {
    id,
    kind: "work",
    event: "issues.edited",
    thread,
    repository: "acme/widgets",
    installation,
    payload: { id },
  };
}

/** Waits until `condition` holds: as long as it takes (the test's own timeout ends a hang). */
async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * A job as the queue stored it before escaping ids: under its delivery id (`x:y:z`), in thread
 * `t`, accepted `acceptedMs` long.
 */
async function storeLegacyJob(prefix: string, id: string, acceptedMs: number): Promise<void> {
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const redis = new Redis(TEST_REDIS_URL);
  try {
    const legacy = new Queue("jobs", { prefix, connection });
    await legacy.add("work", job(id, "t"), { jobId: id, attempts: 1 });
    await legacy.close();
    await redis.rpush(`${prefix}:thread:t`, id);
    await redis.set(`${prefix}:accepted:${id}`, "an-earlier-instance", "PX", acceptedMs);
  } finally {
    connection.disconnect();
    redis.disconnect();
  }
}

describe.runIf(available)("the Redis job queue's bound, job ids, retries and renewals", () => {
  const prefixes: string[] = [];
  const queues: RedisJobQueue[] = [];
  const redis = new Redis(TEST_REDIS_URL);

  /** Instances sharing one queue, as several servers on one Redis do; each may have its clock. */
  async function instances(
    count: number,
    options: {
      maxQueued?: number;
      installationShare?: number;
      leaseMs?: number;
      clocks?: Clock[];
      retentionMs?: number;
    } = {},
  ) {
    const prefix = `talos-test-${randomUUID()}`;
    prefixes.push(prefix);
    const opened = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        RedisJobQueue.open({
          url: TEST_REDIS_URL,
          prefix,
          maxQueued: options.maxQueued ?? 100,
          installationShare: options.installationShare,
          retentionMs: options.retentionMs ?? 3_600_000,
          leaseMs: options.leaseMs ?? 5_000,
          clock: options.clocks?.[i] ?? systemClock,
          log: pino({ level: "silent" }),
        }),
      ),
    );
    queues.push(...opened);
    return { prefix, queues: opened as [RedisJobQueue, ...RedisJobQueue[]] };
  }

  afterAll(async () => {
    await Promise.allSettled(queues.map((queue) => queue.close()));
    for (const prefix of prefixes) await deleteKeys(prefix);
    redis.disconnect();
  });

  describe("its bound", () => {
    it("refuses a delivery over its bound that comes while another instance's last one is being added, with its reason and metric", async () => {
      const {
        queues: [a, b],
      } = await instances(2, { maxQueued: 1 });
      const metrics = createMetrics();
      const runner = new JobRunner<object>({
        queue: b!,
        concurrency: 1,
        maxAttempts: 5,
        clock: systemClock,
        log: pino({ level: "silent" }),
        metrics,
      });
      // b's delivery comes once a's has found the last place free, and before a has added it.
      const add = Queue.prototype.add;
      let during: EnqueueResult | undefined;
      const adding = vi.spyOn(Queue.prototype, "add").mockImplementationOnce(async function (
        this: Queue,
        ...args
      ) {
        during = await runner.submit(job("second", "t2"), {});
        return add.apply(this, args);
      });
      try {
        expect(await a.enqueue(job("first", "t1"))).toEqual({ status: "accepted" });
      } finally {
        adding.mockRestore();
      }
      expect(during).toEqual({ status: "refused", reason: "queue-full" });
      expect(await a.count()).toBe(1);
      expect((await a.snapshot()).refused).toMatchObject([{ id: "second", reason: "queue-full" }]);
      expect(
        (await metrics.jobsRefused.get()).values.map((v) => [v.labels.reason, v.value]),
      ).toEqual([["queue-full", 1]]);
      expect((await b!.claimNext())?.id).toBe("first");
      expect(await b!.claimNext()).toBeUndefined();
    });

    it("accepts no more than its bound of deliveries that come at once to several instances", async () => {
      const { queues: all } = await instances(4, { maxQueued: 5 });
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          all[i % all.length]!.enqueue(job(`burst-${i}`, `t${i}`)),
        ),
      );
      expect(results.filter((r) => r.status === "accepted")).toHaveLength(5);
      expect(results.filter((r) => r.status === "refused")).toHaveLength(11);
      expect(await all[0].count()).toBe(5);
      expect((await all[0].snapshot()).refused).toHaveLength(11);
    });

    it("counts a parked job against the bound until its retention ends, as the local journal does", async () => {
      const {
        queues: [a, b],
      } = await instances(2, { maxQueued: 2, retentionMs: 1_500 });
      expect(await a.enqueue(job("doomed", "t1"))).toEqual({ status: "accepted" });
      expect((await a.claimNext())?.id).toBe("doomed");
      await a.fail("doomed", "malformed webhook payload", undefined);
      expect((await a.snapshot()).jobs).toMatchObject([{ id: "doomed", parked: {} }]);
      expect(await b!.count()).toBe(1);
      // Its payload is still held in Redis: it takes a place (it took none, and parked jobs grew
      // Redis without bound for as long as they were kept).
      expect(await b!.enqueue(job("one", "t2"))).toEqual({ status: "accepted" });
      expect(await b!.enqueue(job("two", "t3"))).toEqual({
        status: "refused",
        reason: "queue-full",
      });
      expect((await b!.snapshot()).refused).toMatchObject([{ id: "two" }]);
      // Past its retention it counts no more, though nothing has trimmed it yet.
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      expect(await b!.count()).toBe(1);
      // Nor is it listed by `talos jobs`, nor the refusal from before (BullMQ drops a failed job
      // past its age only as another fails; the refusals are a list of the last 1,000).
      expect(await b!.snapshot()).toMatchObject({ jobs: [{ id: "one" }], refused: [] });
      expect(await b!.enqueue(job("two", "t3"))).toEqual({ status: "accepted" });
    });

    it("gives one installation only its share of the bound on every instance, a parked job holding its place until its retention ends", async () => {
      const {
        queues: [a, b],
      } = await instances(2, { maxQueued: 10, installationShare: 0.2, retentionMs: 1_500 });
      expect(await a.enqueue(job("i1", "t1", 1))).toEqual({ status: "accepted" });
      expect(await b!.enqueue(job("i2", "t2", 1))).toEqual({ status: "accepted" });
      expect(await a.enqueue(job("i3", "t3", 1))).toEqual({
        status: "refused",
        reason: "installation-full",
      });
      expect(await b!.enqueue(job("o1", "u1", 2))).toEqual({ status: "accepted" });
      // A finished job gives its place back.
      expect((await a.claimNext())?.id).toBe("i1");
      await a.complete("i1");
      expect(await b!.enqueue(job("i3", "t3", 1))).toEqual({ status: "accepted" });
      // A parked one keeps it until its retention ends, as it counts against the bound.
      expect((await a.claimNext())?.id).toBe("i2");
      await a.fail("i2", "malformed webhook payload", undefined);
      expect((await b!.enqueue(job("i4", "t4", 1))).status).toBe("refused");
      // Listed within the retention (past it, `talos jobs` lists them no more).
      expect((await a.snapshot()).refused.map((r) => [r.id, r.reason])).toEqual([
        ["i4", "installation-full"],
        ["i3", "installation-full"],
      ]);
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      expect(await b!.enqueue(job("i4", "t4", 1))).toEqual({ status: "accepted" });
    });

    it("accepts no more than an installation's share of its deliveries that come at once to several instances", async () => {
      const { queues: all } = await instances(4, { maxQueued: 10, installationShare: 0.3 });
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          all[i % all.length]!.enqueue(job(`burst-${i}`, `t${i}`, 7)),
        ),
      );
      expect(results.filter((r) => r.status === "accepted")).toHaveLength(3);
      expect(results.filter((r) => r.status === "refused")).toHaveLength(9);
      expect(await all[0].enqueue(job("elsewhere", "u", 8))).toEqual({ status: "accepted" });
    });

    it("gives back the place of a job removed without ending (by hand) when its installation's share looks full", async () => {
      const {
        prefix,
        queues: [a],
      } = await instances(1, { maxQueued: 10, installationShare: 0.1 });
      // A share of one place, which the job removed by hand would hold for good.
      expect(await a.enqueue(job("removed", "t1", 1))).toEqual({ status: "accepted" });
      const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
      const byHand = new Queue("jobs", { prefix, connection });
      try {
        await byHand.remove("removed");
      } finally {
        await byHand.close();
        connection.disconnect();
      }
      expect(await a.enqueue(job("next", "t2", 1))).toEqual({ status: "accepted" });
    });

    it("keeps a parked job's place in its installation's share when a copy of its delivery is being added elsewhere as it parks", async () => {
      const {
        prefix,
        queues: [a, b],
      } = await instances(2, { maxQueued: 10, installationShare: 0.1 });
      // Installation 1's share is one job.
      expect(await a.enqueue(job("x", "t1", 1))).toEqual({ status: "accepted" });
      expect((await a.claimNext())?.id).toBe("x");
      // A copy of x reaches b while x runs on a (a load balancer's retry, GitHub's redelivery),
      // and x parks between b's reservation and the end of its enqueue.
      const add = Queue.prototype.add;
      const adding = vi.spyOn(Queue.prototype, "add").mockImplementationOnce(async function (
        this: Queue,
        ...args
      ) {
        await a.fail("x", "malformed webhook payload", undefined);
        return add.apply(this, args);
      });
      try {
        expect(await b!.enqueue(job("x", "t1", 1))).toEqual({ status: "duplicate" });
      } finally {
        adding.mockRestore();
      }
      expect((await a.snapshot()).jobs).toMatchObject([{ id: "x", parked: {} }]);
      // Parked, x holds the one place until its retention ends (the copy's end had dropped it).
      expect(await redis.zscore(`${prefix}:share:1`, "x")).not.toBeNull();
      expect(await a.enqueue(job("y", "t2", 1))).toEqual({
        status: "refused",
        reason: "installation-full",
      });
    });

    it("counts a job added whose join then failed against its installation's share, as it runs", async () => {
      const {
        prefix,
        queues: [a],
      } = await instances(1, { maxQueued: 10, installationShare: 0.1 });
      // Added to BullMQ, then JOIN fails (as a Redis timeout or failover would): its thread's
      // key is made a string, which JOIN's RPUSH refuses.
      await redis.set(`${prefix}:thread:t1`, "not a list");
      await expect(a.enqueue(job("x", "t1", 1))).rejects.toThrow();
      await redis.del(`${prefix}:thread:t1`);
      // x waits in BullMQ: its claim puts it in its thread. It counts against the bound, and
      // holds its installation's one place too (its reservation's end had given that back).
      expect(await a.count()).toBe(1);
      expect(await a.enqueue(job("y", "t2", 1))).toEqual({
        status: "refused",
        reason: "installation-full",
      });
      expect((await a.claimNext())?.id).toBe("x");
      await a.complete("x");
      expect(await a.enqueue(job("y", "t2", 1))).toEqual({ status: "accepted" });
    });

    it("takes a copy of a delivery it holds as a duplicate when full, not as one more job", async () => {
      const {
        queues: [a, b],
      } = await instances(2, { maxQueued: 1 });
      expect(await a.enqueue(job("held", "t"))).toEqual({ status: "accepted" });
      expect(await b!.enqueue(job("held", "t"))).toEqual({ status: "duplicate" });
      expect(await b!.enqueue(job("other", "u"))).toEqual({
        status: "refused",
        reason: "queue-full",
      });
      expect((await a.snapshot()).refused.map((r) => r.id)).toEqual(["other"]);
    });

    it("gives its place back when the add fails", async () => {
      const {
        queues: [a],
      } = await instances(1, { maxQueued: 1 });
      const adding = vi
        .spyOn(Queue.prototype, "add")
        .mockRejectedValueOnce(new Error("Connection is closed."));
      try {
        await expect(a.enqueue(job("not-added", "t"))).rejects.toThrow("Connection is closed.");
      } finally {
        adding.mockRestore();
      }
      expect(await a.enqueue(job("added", "t"))).toEqual({ status: "accepted" });
      expect(await a.count()).toBe(1);
    });

    it("never removes a copy another instance has just accepted when it adds a finished delivery anew", async () => {
      // a's copy of the delivery comes while b is adding it anew (b removes the finished job, then
      // adds): a must not be told `accepted` for a job b's removal then takes away.
      let waitedOnA!: () => void;
      const aWaits = new Promise<void>((resolve) => (waitedOnA = resolve));
      const aClock: Clock = {
        now: () => Date.now(),
        sleep: (ms, signal) => {
          waitedOnA();
          return systemClock.sleep(ms, signal);
        },
      };
      const {
        prefix,
        queues: [a, b],
      } = await instances(2, { clocks: [aClock, systemClock] });
      const id = "finished-long-ago";
      await a.enqueue(job(id, "t"));
      expect((await a.claimNext())?.id).toBe(id);
      await a.complete(id);
      // Its retention ran out; BullMQ still holds the finished job.
      await redis.del(`${prefix}:done:${id}`, `${prefix}:accepted:${id}`);
      const remove = Queue.prototype.remove;
      const add = Queue.prototype.add;
      let copy: Promise<EnqueueResult> | undefined;
      let removed = false;
      let failed = false;
      const removing = vi.spyOn(Queue.prototype, "remove").mockImplementationOnce(async function (
        this: Queue,
        ...args
      ) {
        copy = a.enqueue(job(id, "t"));
        // a's copy is either added and acknowledged, or waits for b's add.
        await Promise.race([copy, aWaits]);
        removed = true;
        return remove.apply(this, args);
      });
      // b's own add then fails (Redis went away, or b died).
      const adding = vi.spyOn(Queue.prototype, "add").mockImplementation(async function (
        this: Queue,
        ...args
      ) {
        if (removed && !failed) {
          failed = true;
          throw new Error("Connection is closed.");
        }
        return add.apply(this, args);
      });
      try {
        await expect(b!.enqueue(job(id, "t"))).rejects.toThrow("Connection is closed.");
        expect(await copy).toEqual({ status: "accepted" });
      } finally {
        removing.mockRestore();
        adding.mockRestore();
      }
      expect(await a.claimNext()).toMatchObject({ id, attempts: 1 });
      await a.complete(id);
    });
  });

  describe("its job ids", () => {
    // Integers and ids with `:` BullMQ refuses; `meta`, `events`, `id` and `stalled-check` are the
    // names of the queue's own keys; an empty id gets an id BullMQ makes up; the rest look like
    // what an escape could make of the others.
    const odd = [
      "12345",
      "-7",
      "a:b",
      "a:b:c",
      "",
      "meta",
      "events",
      "id",
      "stalled-check",
      "lone \uD800 surrogate",
      "lone \uDC00 surrogate",
      "100%:x",
      "~12345",
      "~a%3Ab",
      "~meta",
      "~",
      "~~",
    ];

    it("runs deliveries whose ids BullMQ cannot take as job ids, each as a job of its own, and skips their copies", async () => {
      const {
        queues: [a, b],
      } = await instances(2);
      for (const [i, id] of odd.entries())
        expect(await a.enqueue(job(id, `t${i}`)), JSON.stringify(id)).toEqual({
          status: "accepted",
        });
      expect(await a.count()).toBe(odd.length);
      const claimed: string[] = [];
      for (let next = await b!.claimNext(); next; next = await b!.claimNext()) {
        expect(next).toMatchObject({ attempts: 1, payload: { id: next.id } });
        claimed.push(next.id);
        await b!.complete(next.id);
      }
      expect(claimed.sort()).toEqual([...odd].sort());
      expect(await a.count()).toBe(0);
      for (const [i, id] of odd.entries()) {
        expect(await a.has(id), JSON.stringify(id)).toBe(true);
        expect(await a.enqueue(job(id, `t${i}`)), JSON.stringify(id)).toEqual({
          status: "duplicate",
        });
      }
      expect(await b!.claimNext()).toBeUndefined();
    });

    it("retries, charges, parks and retries again by hand a job whose delivery id is escaped", async () => {
      const {
        queues: [a, b],
      } = await instances(2);
      await a.enqueue(job("12:34", "t"));
      expect(await a.claimNext()).toMatchObject({ id: "12:34", attempts: 1 });
      await a.spend("12:34", 300);
      await a.fail("12:34", "GitHub 502", Date.now());
      let again: Job | undefined;
      await until(async () => (again = await b!.claimNext()) !== undefined);
      expect(again).toMatchObject({ id: "12:34", attempts: 2, spentTokens: 300 });
      await b!.fail("12:34", "malformed payload", undefined);
      expect(await a.has("12:34")).toBe(true);
      expect(await a.enqueue(job("12:34", "t"))).toEqual({ status: "duplicate" });
      expect((await a.snapshot()).jobs).toMatchObject([
        { id: "12:34", parked: { error: "malformed payload" } },
      ]);
      expect(await a.retryParked("12:34")).toBe(true);
      let retried: Job | undefined;
      await until(async () => (retried = await a.claimNext()) !== undefined);
      expect(retried).toMatchObject({ id: "12:34", attempts: 1 });
      expect(retried?.spentTokens).toBeUndefined();
      await a.complete("12:34");
      expect((await a.snapshot()).jobs).toEqual([]);
    });

    it("keeps running and knowing a job stored under the id BullMQ took before (one with two `:`)", async () => {
      const {
        prefix,
        queues: [a],
      } = await instances(1);
      const id = "x:y:z";
      await storeLegacyJob(prefix, id, 3_600_000);
      expect(await a.has(id)).toBe(true);
      expect(await a.enqueue(job(id, "t"))).toEqual({ status: "duplicate" });
      expect(await a.count()).toBe(1);
      expect(await a.claimNext()).toMatchObject({ id, attempts: 1 });
      await a.spend(id, 40);
      await a.fail(id, "malformed payload", undefined);
      expect(await a.enqueue(job(id, "t"))).toEqual({ status: "duplicate" });
      expect(await a.retryParked(id)).toBe(true);
      expect(await a.claimNext()).toMatchObject({ id, attempts: 1 });
      await a.complete(id);
      expect(await a.has(id)).toBe(true);
      expect(await a.enqueue(job(id, "t"))).toEqual({ status: "duplicate" });
      expect(await a.claimNext()).toBeUndefined();
      expect(await a.count()).toBe(0);
    });
  });

  it("records a step of a legacy-id job's run whose lease was lost with that job, which its end clears", async () => {
    const {
      prefix,
      queues: [a, b],
    } = await instances(2, { leaseMs: 1_500, retentionMs: 1_000 });
    const id = "x:y:z";
    await storeLegacyJob(prefix, id, 1_000);
    const claimed = await a.claimNext();
    expect(claimed).toMatchObject({ id });
    // The run's lease is lost (a long pause, say), just after it finished its triage.
    const lost = new Promise((resolve) => claimed!.lease!.addEventListener("abort", resolve));
    await redis.del(`${prefix}:lease:t`);
    await lost;
    await a.stepDone(id, "triage");
    // With the job it ran (it went to the escaped id "~x%3Ay%3Az", which no job had and no end
    // cleared, and a redelivery past the retention, a new job of that id, found it as its own).
    expect(await redis.hgetall(`${prefix}:steps`)).toEqual({ [id]: "triage" });
    let next: Job | undefined;
    await until(async () => (next = await b!.claimNext()) !== undefined);
    expect(next).toMatchObject({ id, stepsDone: ["triage"] });
    await b!.complete(id);
    expect(await redis.hgetall(`${prefix}:steps`)).toEqual({});
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await b!.enqueue(job(id, "t2"))).toEqual({ status: "accepted" });
    let again: Job | undefined;
    await until(async () => (again = await b!.claimNext()) !== undefined);
    expect(again).toMatchObject({ id });
    expect(again?.stepsDone).toBeUndefined();
  });

  it("waits for a failed job's retry time when the error came between recording the failure and delaying the job", async () => {
    const {
      prefix,
      queues: [a, b],
    } = await instances(2, { leaseMs: 1_500 });
    const id = "retry-in-an-hour";
    await a.enqueue(job(id, "t"));
    expect((await a.claimNext())?.id).toBe(id);
    // GitHub's rate limit says an hour; Redis goes away just as the job is to be delayed.
    const retryAt = Date.now() + 3_600_000;
    const delaying = vi
      .spyOn(BullJob.prototype, "moveToDelayed")
      .mockRejectedValueOnce(new Error("Connection is closed."));
    try {
      await expect(a.fail(id, "GitHub 403: rate limit", retryAt)).rejects.toThrow(
        "Connection is closed.",
      );
    } finally {
      delaying.mockRestore();
    }
    // Its lock runs out (no one renews it): BullMQ's stalled-job check hands it back to wait.
    await redis.del(`${prefix}:jobs:${id}:lock`);
    await until(async () => (await redis.lpos(`${prefix}:jobs:wait`, id)) !== null);
    expect(await b!.claimNext()).toBeUndefined();
    // Delayed until its retry time (BullMQ's score is the time, times 4096, plus an order).
    const score = Number(await redis.zscore(`${prefix}:jobs:delayed`, id));
    expect(Math.floor(score / 4096)).toBe(retryAt);
    expect(await a.claimNext()).toBeUndefined();
  });

  describe("its renewals", () => {
    it("does not renew its thread's lease once the job's lock is lost", async () => {
      const {
        prefix,
        queues: [a],
      } = await instances(1, { leaseMs: 1_500 });
      await a.enqueue(job("lock-lost", "t"));
      const claimed = await a.claimNext();
      const lost = new Promise((resolve) => claimed!.lease!.addEventListener("abort", resolve));
      // BullMQ no longer holds the job for this instance; the lease is marked to tell a renewal.
      await redis
        .multi()
        .del(`${prefix}:jobs:lock-lost:lock`)
        .pexpire(`${prefix}:lease:t`, 600_000)
        .exec();
      await lost;
      expect(await redis.pttl(`${prefix}:lease:t`)).toBeGreaterThan(1_500);
    });

    it("does not renew the job's lock once its thread's lease is lost", async () => {
      const {
        prefix,
        queues: [a],
      } = await instances(1, { leaseMs: 1_500 });
      await a.enqueue(job("lease-lost", "t"));
      const claimed = await a.claimNext();
      const lost = new Promise((resolve) => claimed!.lease!.addEventListener("abort", resolve));
      await redis
        .multi()
        .set(`${prefix}:lease:t`, "another-instance:its-claim", "PX", 600_000)
        .pexpire(`${prefix}:jobs:lease-lost:lock`, 600_000)
        .exec();
      await lost;
      expect(await redis.pttl(`${prefix}:jobs:lease-lost:lock`)).toBeGreaterThan(1_500);
    });
  });
});

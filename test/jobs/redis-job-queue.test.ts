import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Job as BullJob } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, describe, expect, it, vi } from "vitest";
import { systemClock } from "../../src/clock.js";
import { MAX_RETRY_WAIT_MS, type Job, type NewJob } from "../../src/jobs/job-queue.js";
import { JobRunner } from "../../src/jobs/job-runner.js";
import { JobLeaseLostError, RedisJobQueue } from "../../src/jobs/redis-job-queue.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import {
  deleteKeys,
  requireRedis,
  startCuttableProxy,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";
import { buildDist, ROOT } from "../helpers/server-process.js";
import { makeDataDir } from "../helpers/test-app.js";

const available = await requireRedis("the Redis job queue's tests");

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

describe.runIf(available)("the Redis job queue (BullMQ)", () => {
  const prefixes: string[] = [];
  const queues: RedisJobQueue[] = [];

  /** Instances sharing one queue, as several servers on one Redis do (each may have its URL). */
  async function instances(
    urls: string[],
    options: { maxQueued?: number; leaseMs?: number; retentionMs?: number } = {},
  ) {
    const prefix = `talos-test-${randomUUID()}`;
    prefixes.push(prefix);
    const opened = await Promise.all(
      urls.map((url) =>
        RedisJobQueue.open({
          url,
          prefix,
          maxQueued: options.maxQueued ?? 100,
          retentionMs: options.retentionMs ?? 3_600_000,
          leaseMs: options.leaseMs ?? 5_000,
          clock: systemClock,
          log: pino({ level: "silent" }),
        }),
      ),
    );
    queues.push(...opened);
    return opened;
  }
  const on = (count: number) => Array.from({ length: count }, () => TEST_REDIS_URL);

  /** Claims until a job comes, for up to `ms` (jobs not yet their turn come back a second later). */
  async function claimWithin(queue: RedisJobQueue, ms = 4_000) {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const claimed = await queue.claimNext();
      if (claimed) return claimed;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return undefined;
  }

  afterAll(async () => {
    await Promise.allSettled(queues.map((queue) => queue.close()));
    for (const prefix of prefixes) await deleteKeys(prefix);
  });

  // The local journal runs a retry whose time is further off than MAX_RETRY_WAIT_MS at once (set
  // by a clock since stepped back); CLAIM had honoured any, holding the job and every later job
  // of its issue for the difference: a day, for one recorded while the clock was a day ahead.
  it("runs a retry whose time is further off than MAX_RETRY_WAIT_MS at once, and its thread goes on", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("skewed", "t"));
    await a!.enqueue(job("after-it", "t"));
    expect((await a!.claimNext())?.id).toBe("skewed");
    const retryAt = Date.now() + 24 * 3_600_000 + 30_000;
    expect(retryAt - Date.now()).toBeGreaterThan(MAX_RETRY_WAIT_MS);
    await a!.fail("skewed", "GitHub 502", retryAt);

    expect((await claimWithin(b!))?.id).toBe("skewed");
    await b!.complete("skewed");
    expect((await claimWithin(b!))?.id).toBe("after-it");
    await b!.complete("after-it");
  }, 20_000);

  it("makes one job of a delivery that every instance receives at once, and skips it once done", async () => {
    const [a, b, c] = await instances(on(3));
    const results = await Promise.all([a!, b!, c!].map((q) => q.enqueue(job("delivery-1", "t1"))));
    expect(results.map((r) => r.status).sort()).toEqual(["accepted", "duplicate", "duplicate"]);
    const claimed = await a!.claimNext();
    expect(claimed).toMatchObject({ id: "delivery-1", attempts: 1, payload: { id: "delivery-1" } });
    expect(await b!.claimNext()).toBeUndefined();
    expect(await c!.claimNext()).toBeUndefined();
    await a!.complete("delivery-1");
    // Known to every instance, finished (a redelivery asked for at start would be a duplicate).
    expect(await c!.has("delivery-1")).toBe(true);
    expect(await c!.has("delivery-2")).toBe(false);
    // A redelivery, to any instance, after the job ran.
    expect(await c!.enqueue(job("delivery-1", "t1"))).toEqual({ status: "duplicate" });
    expect(await b!.claimNext()).toBeUndefined();
    expect(await a!.count()).toBe(0);
  });

  it.each([
    ["parked", (q: RedisJobQueue, id: string) => q.fail(id, "malformed payload", undefined)],
    ["done", (q: RedisJobQueue, id: string) => q.complete(id)],
  ])(
    "runs a delivery %s then redelivered past the retention (which BullMQ still holds), and its thread goes on",
    async (_, finish) => {
      // A retention of a second stands for a TALOS_LEDGER_RETENTION_HOURS shorter than the days
      // GitHub offers "Redeliver" for.
      const [a, b] = await instances(on(2), { retentionMs: 1_000 });
      const id = `finished-${randomUUID()}`;
      await a!.enqueue(job(id, "t-redelivered"));
      expect((await a!.claimNext())?.id).toBe(id);
      await finish(a!, id);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // A new delivery now, accepted: it runs, then the thread's next job.
      expect(await b!.enqueue(job(id, "t-redelivered"))).toEqual({ status: "accepted" });
      await b!.enqueue(job("after-it", "t-redelivered"));
      const again = await claimWithin(a!);
      expect(again).toMatchObject({ id, attempts: 1 });
      await a!.complete(id);
      expect((await claimWithin(a!))?.id).toBe("after-it");
    },
  );

  it("runs one thread's jobs one at a time, in arrival order, across instances; other threads meanwhile", async () => {
    const [a, b] = await instances(on(2));
    for (const [id, thread] of [
      ["one-1", "one"],
      ["one-2", "one"],
      ["two-1", "two"],
    ] as const)
      expect(await a!.enqueue(job(id, thread))).toEqual({ status: "accepted" });
    const first = await a!.claimNext();
    expect(first?.id).toBe("one-1");
    // b may not run one-2 while one-1 runs: it gets the other thread's job.
    const second = await claimWithin(b!);
    expect(second?.id).toBe("two-1");
    expect(await b!.claimNext()).toBeUndefined();
    await a!.complete("one-1");
    const third = await claimWithin(b!);
    expect(third?.id).toBe("one-2");
    await b!.complete("two-1");
    await b!.complete("one-2");
    expect(await a!.count()).toBe(0);
  });

  it("runs a thread's next job at once when the job before it ends while another instance's claim finds it not yet its turn", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("before", "t"));
    await a!.enqueue(job("next", "t"));
    expect((await a!.claimNext())?.id).toBe("before");
    // b's claim finds `next` not yet its turn, and puts it aside to wait; `before` ends on a in
    // between, and a's wake-up finds `next` still claimed, not yet waiting.
    const moveToDelayed = BullJob.prototype.moveToDelayed;
    const putAside = vi
      .spyOn(BullJob.prototype, "moveToDelayed")
      .mockImplementationOnce(async function (this: BullJob, ...args) {
        await a!.complete("before");
        return moveToDelayed.apply(this, args);
      });
    try {
      // The next claim, on either instance, runs it: not after the 10 s a job put aside waits.
      const onB = await b!.claimNext();
      const claimed = onB ?? (await a!.claimNext());
      expect(putAside).toHaveBeenCalledTimes(1);
      expect(claimed).toMatchObject({ id: "next", attempts: 1 });
      await (onB ? b! : a!).complete("next");
    } finally {
      putAside.mockRestore();
    }
  });

  it("retries a failed job at its time, counting attempts; a parked job is listed and frees its thread", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("flaky", "t"));
    await a!.enqueue(job("after", "t"));
    expect((await a!.claimNext())?.attempts).toBe(1);
    await a!.fail("flaky", "GitHub 502", Date.now() + 300);
    // The thread waits for its first job's retry: `after` does not jump the queue.
    const retried = await claimWithin(b!);
    expect(retried).toMatchObject({ id: "flaky", attempts: 2 });
    await b!.fail("flaky", "malformed payload", undefined);
    const next = await claimWithin(a!);
    expect(next?.id).toBe("after");
    await a!.complete("after");
    const { jobs } = await a!.snapshot();
    expect(jobs).toMatchObject([{ id: "flaky", parked: { error: "malformed payload" } }]);
  });

  it("counts a run GitHub refused for a rate limit apart from the attempts, on every instance, until the job ends", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("limited", "t"));
    expect((await a!.claimNext())?.rateLimitedRuns).toBeUndefined();
    await a!.fail("limited", "403 secondary rate limit", Date.now(), true);
    expect(await claimWithin(b!)).toMatchObject({ attempts: 1, rateLimitedRuns: 1 });
    await b!.fail("limited", "403 secondary rate limit", Date.now(), true);
    expect(await claimWithin(a!)).toMatchObject({ attempts: 1, rateLimitedRuns: 2 });
    // Handed back without an end, as when its instance dies: that run counts as an attempt.
    await a!.close();
    expect(await claimWithin(b!)).toMatchObject({ attempts: 2, rateLimitedRuns: 2 });
    await b!.fail("limited", "GitHub 502", Date.now());
    expect(await claimWithin(b!)).toMatchObject({ attempts: 3, rateLimitedRuns: 2 });
    await b!.complete("limited");
    const redis = new Redis(TEST_REDIS_URL);
    try {
      expect(await redis.hgetall(`${prefixes.at(-1)}:rate-limited`)).toEqual({});
    } finally {
      redis.disconnect();
    }
  });

  it("keeps the tokens a job's runs spent for its retry on another instance, until the job ends", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("spender", "t"));
    const first = await a!.claimNext();
    expect(first?.spentTokens).toBeUndefined();
    await a!.spend("spender", 600);
    await a!.spend("spender", 0.5);
    await a!.fail("spender", "GitHub 502", Date.now());
    expect(await claimWithin(b!)).toMatchObject({ id: "spender", attempts: 2, spentTokens: 601 });
    // Handed back without an end, as when its instance dies: the next run still has it.
    await b!.spend("spender", 99);
    await b!.close();
    expect(await claimWithin(a!)).toMatchObject({ attempts: 3, spentTokens: 700 });
    await a!.complete("spender");
    // A late charge (a run whose lease was lost) leaves nothing behind once the job has ended.
    await a!.spend("spender", 50);
    const redis = new Redis(TEST_REDIS_URL);
    try {
      expect(await redis.hgetall(`${prefixes.at(-1)}:spent`)).toEqual({});
    } finally {
      redis.disconnect();
    }
  });

  it("keeps the steps a job's runs finished for its retry on another instance, until the job ends", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("stepper", "t"));
    expect((await a!.claimNext())?.stepsDone).toBeUndefined();
    await a!.stepDone("stepper", "triage");
    await a!.stepDone("stepper", "triage");
    await a!.fail("stepper", "embeddings: 503", Date.now());
    expect(await claimWithin(b!)).toMatchObject({ id: "stepper", stepsDone: ["triage"] });
    await b!.stepDone("stepper", "summary");
    await b!.close();
    expect(await claimWithin(a!)).toMatchObject({ stepsDone: ["triage", "summary"] });
    await a!.complete("stepper");
    // A late one (a run whose lease was lost) leaves nothing behind once the job has ended.
    await a!.stepDone("stepper", "late");
    const redis = new Redis(TEST_REDIS_URL);
    try {
      expect(await redis.hgetall(`${prefixes.at(-1)}:steps`)).toEqual({});
    } finally {
      redis.disconnect();
    }
  });

  it("hands a job back at close, and another instance runs it", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("held", "t"));
    expect((await a!.claimNext())?.id).toBe("held");
    await a!.close();
    const taken = await claimWithin(b!);
    expect(taken).toMatchObject({ id: "held", attempts: 2 });
    await b!.complete("held");
  });

  it("fences the writes of a job it hands back at close, before another instance can take it", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("handed-back", "t"));
    const held = await a!.claimNext();
    expect(held?.lease?.aborted).toBe(false);
    // The shutdown's grace ran out: the handler still runs, and may still write.
    await a!.close();
    expect(held!.lease!.reason).toBeInstanceOf(JobLeaseLostError);
    const taken = await claimWithin(b!);
    expect(taken).toMatchObject({ id: "handed-back", attempts: 2 });
    expect(taken!.lease!.aborted).toBe(false);
    await b!.complete("handed-back");
  });

  it("takes a redelivery of a parked delivery as a duplicate, and its thread goes on", async () => {
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("parked-redelivered", "t"));
    expect((await a!.claimNext())?.id).toBe("parked-redelivered");
    await a!.fail("parked-redelivered", "malformed payload", undefined);
    expect(await b!.has("parked-redelivered")).toBe(true);
    // GitHub's "Redeliver" on the parked delivery, or a slower instance's copy of it.
    expect(await b!.enqueue(job("parked-redelivered", "t"))).toEqual({ status: "duplicate" });
    await b!.enqueue(job("after-parked", "t"));
    // Within a claim or two, not after the 10 s a job not yet its thread's turn waits.
    expect((await claimWithin(a!, 3_000))?.id).toBe("after-parked");
    await a!.complete("after-parked");
    const { jobs } = await a!.snapshot();
    expect(jobs).toMatchObject([
      { id: "parked-redelivered", parked: { error: "malformed payload" } },
    ]);
  });

  it("does not take a thread back from its own earlier claim while that claim's lease stands", async () => {
    const [a] = await instances(on(1), { leaseMs: 2_000 });
    const prefix = prefixes.at(-1)!;
    const redis = new Redis(TEST_REDIS_URL);
    await a!.enqueue(job("still-held", "t"));
    const first = await a!.claimNext();
    // BullMQ loses the job's lock (its stalled check puts the job back), while the thread's lease
    // in Redis is still the first claim's: its run may still be writing.
    await redis.del(`${prefix}:jobs:still-held:lock`);
    await expect.poll(() => first!.lease!.aborted, { timeout: 2_000 }).toBe(true);
    await redis.pexpire(`${prefix}:lease:t`, 60_000);
    expect(await claimWithin(a!, 4_000)).toBeUndefined();
    await redis.del(`${prefix}:lease:t`);
    expect(await claimWithin(a!)).toMatchObject({ id: "still-held", attempts: 2 });
    await a!.complete("still-held");
    redis.disconnect();
  });

  it("keeps a run that lost its lease from ending its job's next run on the same instance", async () => {
    const [a] = await instances(on(1), { leaseMs: 1_500 });
    const prefix = prefixes.at(-1)!;
    const redis = new Redis(TEST_REDIS_URL);
    const runner = new JobRunner<Job>({
      queue: a!,
      concurrency: 2,
      maxAttempts: 5,
      clock: systemClock,
      log: pino({ level: "silent" }),
      metrics: createMetrics(),
    });
    const runs: Array<{ job: Job; end: { resolve: () => void; reject: (e: Error) => void } }> = [];
    runner.register(
      "work",
      (claimed) =>
        new Promise<void>((resolve, reject) =>
          runs.push({ job: claimed, end: { resolve, reject } }),
        ),
    );
    await a!.enqueue(job("outlived", "t"));
    await a!.enqueue(job("outlived-next", "t"));
    runner.start(async (claimed) => claimed);
    await expect.poll(() => runs.length).toBe(1);
    const [first] = runs;
    // As after a Redis outage longer than the lease, while the model answers: the first run
    // goes on, fenced, and the job comes back to this same instance.
    await redis.set(`${prefix}:lease:t`, "outage", "PX", 1_000);
    await expect.poll(() => first!.job.lease!.aborted, { timeout: 2_000 }).toBe(true);
    await expect.poll(() => runs.length, { timeout: 10_000 }).toBe(2);
    const second = runs[1]!;
    expect(second.job).toMatchObject({ id: "outlived", attempts: 2 });
    // The first run's next write is refused, and it ends.
    const firstEnded = runner.waitFor("outlived").catch(() => undefined);
    first!.end.reject(new JobLeaseLostError("lease lost"));
    await firstEnded;
    // Time for a wrong end to show: the job handed back and claimed a third time.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(second.job.lease!.aborted).toBe(false);
    expect(await redis.pttl(`${prefix}:lease:t`)).toBeGreaterThan(0);
    expect(runs).toHaveLength(2);
    // The second run still counts as running.
    expect(await runner.stop(0)).toBe(1);
    second.end.resolve();
    await runner.idle();
    expect(await redis.exists(`${prefix}:done:outlived`)).toBe(1);
    redis.disconnect();
  }, 20_000);

  it("gives the job of an instance cut off from Redis to another once its lease runs out; the cut-off one refuses deliveries", async () => {
    const port = Number(new URL(TEST_REDIS_URL).port || 6379);
    const proxy = await startCuttableProxy({ host: "127.0.0.1", port });
    try {
      const [cutOff, survivor] = await instances([proxy.url, TEST_REDIS_URL], { leaseMs: 1_500 });
      await cutOff!.enqueue(job("orphan", "t"));
      await cutOff!.enqueue(job("orphan-next", "t"));
      const orphan = await cutOff!.claimNext();
      expect(orphan?.id).toBe("orphan");
      let lostAt: number | undefined;
      orphan!.lease!.addEventListener("abort", () => (lostAt = Date.now()));
      expect(cutOff!.available()).toBe(true);
      proxy.cut();
      await expect.poll(() => cutOff!.available()).toBe(false);
      await expect(cutOff!.enqueue(job("during-outage", "u"))).rejects.toThrow();
      // Its lease lapses; the survivor's stalled-job check puts the job back, and it runs there,
      // still before the next job of its thread.
      const taken = await claimWithin(survivor!, 10_000);
      const takenAt = Date.now();
      expect(taken).toMatchObject({ id: "orphan", attempts: 2 });
      // The cut-off instance gave the job up first (its writes are refused from then on).
      expect(orphan!.lease!.reason).toBeInstanceOf(JobLeaseLostError);
      expect(lostAt).toBeLessThanOrEqual(takenAt);
      expect(taken!.lease!.aborted).toBe(false);
      expect(await survivor!.claimNext()).toBeUndefined();
      await survivor!.complete("orphan");
      expect((await claimWithin(survivor!))?.id).toBe("orphan-next");
      await survivor!.complete("orphan-next");
    } finally {
      await proxy.close();
    }
  });

  it("fails a delivery and a claim within seconds when Redis takes commands and does not answer", async () => {
    // A partition with no reset, a hung server: the connection stays up, so the delivery is
    // not refused at the door; its enqueue had never settled, its webhook request held open,
    // and the runner's claims hung with it (found by a review).
    const port = Number(new URL(TEST_REDIS_URL).port || 6379);
    const proxy = await startCuttableProxy({ host: "127.0.0.1", port });
    try {
      const [stalled] = await instances([proxy.url]);
      await stalled!.enqueue(job("before", "t"));
      proxy.stall();
      // Each fails on its own (before, both hung until the test's timeout).
      await expect(stalled!.enqueue(job("during", "u"))).rejects.toThrow(/timed out/i);
      await expect(stalled!.claimNext()).rejects.toThrow(/timed out/i);
    } finally {
      await proxy.close();
    }
  }, 30_000);

  it("stops a job's writes once less of its lease is left than GitHub may take to answer a write already sent", async () => {
    // The claim's clock reads `start`; by the time the lease is held, 49 s of the 60 s have
    // passed (a busy event loop, say): 11 s is left, less than the margin, so the run must stop
    // writing at once. (With a 5 s margin it went on writing for 6 s more, and a write sent then
    // could still be at GitHub when the next instance looked for its reply.)
    const start = Date.now();
    let reads = 0;
    const clock = { ...systemClock, now: () => (reads++ === 0 ? start : start + 49_000) };
    const prefix = `talos-test-${randomUUID()}`;
    prefixes.push(prefix);
    const queue = await RedisJobQueue.open({
      url: TEST_REDIS_URL,
      prefix,
      maxQueued: 100,
      retentionMs: 3_600_000,
      leaseMs: 60_000,
      clock,
      log: pino({ level: "silent" }),
    });
    queues.push(queue);
    await queue.enqueue(job("late", "t"));
    const claimed = await queue.claimNext();
    expect(claimed?.id).toBe("late");
    await expect.poll(() => claimed!.lease!.aborted, { timeout: 2_000 }).toBe(true);
    expect(claimed!.lease!.reason).toBeInstanceOf(JobLeaseLostError);
  });

  it("gives a job up at once when another instance holds its lease, and records nothing of its end", async () => {
    const [a] = await instances(on(1), { leaseMs: 1_500 });
    await a!.enqueue(job("taken-over", "t"));
    const claimed = await a!.claimNext();
    expect(claimed?.lease?.aborted).toBe(false);
    // As after an outage longer than the lease: the thread is another instance's now.
    const prefix = prefixes.at(-1)!;
    const redis = new Redis(TEST_REDIS_URL);
    await redis.set(`${prefix}:lease:t`, "another-instance:taken-over", "PX", 60_000);
    // The next renewal (every third of the lease) finds it.
    await expect.poll(() => claimed!.lease!.aborted, { timeout: 2_000 }).toBe(true);
    expect(claimed!.lease!.reason).toBeInstanceOf(JobLeaseLostError);
    await a!.complete("taken-over");
    // Not recorded as done, and the thread's lease left to its holder.
    expect(await redis.exists(`${prefix}:done:taken-over`)).toBe(0);
    expect(await redis.get(`${prefix}:lease:t`)).toBe("another-instance:taken-over");
    await redis.del(`${prefix}:lease:t`);
    redis.disconnect();
  });

  it("is what `npx talos jobs` lists with REDIS_URL, and the command ends once it has", async () => {
    buildDist();
    const [a] = await instances(on(1), { maxQueued: 2 });
    await a!.enqueue(job("listed-parked", "p"));
    await a!.claimNext();
    await a!.fail("listed-parked", "malformed webhook payload", undefined);
    // A parked job counts against the bound, as a waiting one does.
    expect((await a!.enqueue(job("listed-waiting", "w"))).status).toBe("accepted");
    expect((await a!.enqueue(job("listed-refused", "r"))).status).toBe("refused");
    const prefix = prefixes.at(-1)!;
    // A process of its own: a connection left open would keep it from ending.
    const result = spawnSync(process.execPath, [join(ROOT, "bin/talos.js"), "jobs", "--json"], {
      cwd: makeDataDir(),
      env: { PATH: process.env.PATH ?? "", REDIS_URL: TEST_REDIS_URL, TALOS_REDIS_PREFIX: prefix },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      repositories: [
        {
          repository: "acme/widgets",
          waiting: 1,
          parked: [
            expect.objectContaining({
              delivery: "listed-parked",
              error: "malformed webhook payload",
            }),
          ],
          refused: 1,
        },
      ],
    });
  }, 60_000);

  it("makes a parked job wait again with `npx talos jobs retry`, and an instance runs it as a first attempt", async () => {
    buildDist();
    const [a, b] = await instances(on(2));
    await a!.enqueue(job("to-retry", "r"));
    await a!.claimNext();
    await a!.spend("to-retry", 400);
    await a!.fail("to-retry", "TypeError: x is undefined", undefined);
    await a!.enqueue(job("still-waiting", "w"));
    const prefix = prefixes.at(-1)!;
    const talos = (...args: string[]) =>
      spawnSync(process.execPath, [join(ROOT, "bin/talos.js"), "jobs", "retry", ...args], {
        cwd: makeDataDir(),
        env: {
          PATH: process.env.PATH ?? "",
          REDIS_URL: TEST_REDIS_URL,
          TALOS_REDIS_PREFIX: prefix,
        },
        encoding: "utf8",
        timeout: 20_000,
      });
    // Only a parked job: a waiting one is refused, and nothing changes.
    const refused = talos("still-waiting", "to-retry");
    expect(refused.status).toBe(2);
    expect(refused.stderr).toBe(
      "talos jobs: no parked job has delivery still-waiting; `talos jobs` lists those parked\n",
    );
    const result = talos("to-retry");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      "Retried acme/widgets issues.edited (delivery to-retry): an instance runs it within seconds.\n",
    );
    expect(await b!.has("to-retry")).toBe(true);
    const claimed = new Map<string, Job>();
    for (let i = 0; i < 2; i++) {
      const next = await claimWithin(b!);
      if (next) claimed.set(next.id, next);
    }
    // Its earlier run and its tokens are forgotten.
    expect(claimed.get("to-retry")).toMatchObject({ attempts: 1 });
    expect(claimed.get("to-retry")?.spentTokens ?? 0).toBe(0);
    await b!.complete("to-retry");
    const { jobs } = await b!.snapshot();
    expect(jobs.filter((j) => j.parked)).toEqual([]);
  }, 60_000);

  it("refuses deliveries over its bound, and lists them", async () => {
    const [a] = await instances(on(1), { maxQueued: 2 });
    expect((await a!.enqueue(job("q1", "t1"))).status).toBe("accepted");
    expect((await a!.enqueue(job("q2", "t2"))).status).toBe("accepted");
    expect(await a!.enqueue(job("q3", "t3"))).toEqual({ status: "refused", reason: "queue-full" });
    const { refused } = await a!.snapshot();
    expect(refused).toMatchObject([{ id: "q3", reason: "queue-full", repository: "acme/widgets" }]);
  });

  it("takes a retention of a fraction of an hour (TALOS_LEDGER_RETENTION_HOURS=1.1)", async () => {
    // As create-services.ts computes it: not a whole number of milliseconds, which Redis's PX
    // refused, failing every delivery's record and every job's end.
    const [queue] = await instances(on(1), { retentionMs: 1.1 * 3_600_000 });
    expect(await queue!.enqueue(job("fractional", "t"))).toEqual({ status: "accepted" });
    expect((await queue!.claimNext())?.id).toBe("fractional");
    await queue!.complete("fractional");
    expect(await queue!.has("fractional")).toBe(true);
    expect(await queue!.claimNext()).toBeUndefined();
  });

  it("lists a parked job with the runs it started, not the claims that found it not yet its turn", async () => {
    const [queue] = await instances(on(1));
    await queue!.enqueue(job("ahead", "t"));
    await queue!.enqueue(job("behind", "t"));
    expect((await queue!.claimNext())?.id).toBe("ahead");
    // `behind` is not yet its turn: put aside, not run.
    expect(await queue!.claimNext()).toBeUndefined();
    await queue!.complete("ahead");
    expect(await claimWithin(queue!)).toMatchObject({ id: "behind", attempts: 1 });
    await queue!.fail("behind", "malformed payload", undefined);
    const { jobs } = await queue!.snapshot();
    // `talos jobs` prints "(N attempt(s))" from this: it ran once.
    expect(jobs.find((j) => j.id === "behind")).toMatchObject({
      parked: { error: "malformed payload" },
      attempts: 1,
    });
  });
});

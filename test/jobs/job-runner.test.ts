import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { RequestError } from "@octokit/request-error";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import type { Job, NewJob } from "../../src/jobs/job-queue.js";
import {
  classifyJobFailure,
  JobRunner,
  MAX_RATE_LIMITED_RUNS,
  PermanentJobError,
  retryAfterMs,
  retryDelayMs,
} from "../../src/jobs/job-runner.js";
import { parseEnv } from "../../src/config.js";
import { createServices } from "../../src/create-services.js";
import { MalformedPayloadError } from "../../src/handlers/read-payload.js";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { setupJobRunner } from "../helpers/job-runner-setup.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

function job(id: string, thread: string): NewJob {
  return { id, kind: "work", event: "issues.edited", thread, payload: { id } };
}

const setup = setupJobRunner;

/** Waits (a few ms at a time) for a condition that journal writes on disk will make true. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 2));
}

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe("the job runner", () => {
  it("runs a thread's jobs one at a time in arrival order, within the concurrency", async () => {
    const { runner, journal, metrics } = await setup({ concurrency: 2 });
    const queued = async () => (await metrics.jobsQueued.get()).values[0]?.value;
    const events: string[] = [];
    const gates = new Map<string, ReturnType<typeof deferred>>();
    let running = 0;
    let most = 0;
    runner.register("work", async (id) => {
      running++;
      most = Math.max(most, running);
      events.push(`start ${id}`);
      const gate = deferred();
      gates.set(id, gate);
      await gate.promise;
      events.push(`end ${id}`);
      running--;
    });
    runner.start(async (j: Job) => j.id);
    for (const [id, thread] of [
      ["a1", "a"],
      ["a2", "a"],
      ["b1", "b"],
      ["c1", "c"],
    ] as const)
      await runner.submit(job(id, thread), id);
    await until(() => events.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual(["start a1", "start b1"]); // a2 waits for a1, c1 for a free slot
    expect(await queued()).toBe(4);
    for (const id of ["a1", "b1", "a2", "c1"]) {
      await until(() => gates.has(id));
      gates.get(id)?.resolve();
    }
    await runner.idle();
    expect(events.indexOf("start a2")).toBeGreaterThan(events.indexOf("end a1"));
    expect(most).toBe(2);
    expect(journal.list()).toEqual([]);
    // The gauge is set once the journal has counted, a turn after the last job ended.
    await new Promise((r) => setTimeout(r, 5));
    expect(await queued()).toBe(0);
  });

  it("leaves a job whose lease was lost to whoever holds it now: its run's end is not recorded, nor logged as a failure", async () => {
    const { runner, journal, logs, metrics } = await setup();
    // A shared queue's first claim comes with a lease, which goes while the job runs.
    const lease = new AbortController();
    const claimNext = journal.claimNext.bind(journal);
    let claims = 0;
    journal.claimNext = async () => {
      const claimed = await claimNext();
      return claimed && (claims++ === 0 ? { ...claimed, lease: lease.signal } : claimed);
    };
    const ended: string[] = [];
    const fail = journal.fail.bind(journal);
    journal.fail = async (id, error, retryAt) => {
      ended.push(`fail ${id}`);
      return fail(id, error, retryAt);
    };
    const complete = journal.complete.bind(journal);
    journal.complete = async (id) => {
      ended.push(`complete ${id}`);
      return complete(id);
    };
    let runs = 0;
    runner.register("work", async () => {
      runs++;
      // As a write refused once the lease went (see fenceWrites).
      lease.abort(new Error("lease lost"));
      throw lease.signal.reason;
    });
    runner.start(async (j) => j.id);
    await runner.submit(job("taken", "a"), "taken");
    await runner.idle();
    // The queue knows the job by its id only: ending it would end the claim of the run that
    // holds it now (with Redis, perhaps on this same instance).
    expect(ended).toEqual([]);
    expect(runs).toBe(1);
    expect(logs.lines().map((l) => l.msg)).toContain(
      "job left: this instance lost its lease, and another runs it",
    );
    expect(logs.lines().filter((l) => (l.level as number) >= 50)).toEqual([]);
    const outcomes = (await metrics.jobs.get()).values.map((v) => [v.labels.outcome, v.value]);
    expect(outcomes).toEqual([["lost", 1]]);
  });

  it("retries a failure after a backoff, then parks it after the last attempt", async () => {
    const { runner, journal, clock, logs, metrics } = await setup({ maxAttempts: 3 });
    let runs = 0;
    runner.register("work", async () => {
      runs++;
      throw new RequestError("Bad Gateway", 502, {
        request: { method: "GET", url: "https://api.github.com/x", headers: {} },
      });
    });
    runner.start(async (j) => j.id);
    await runner.submit(job("flaky", "a"), "flaky");
    await runner.idle();
    expect(runs).toBe(1);
    await clock.advance(retryDelayMs(1));
    await runner.idle();
    expect(runs).toBe(2);
    await clock.advance(retryDelayMs(2));
    await runner.idle();
    expect(runs).toBe(3);
    await clock.advance(60 * 60_000);
    await runner.idle();
    expect(runs).toBe(3);
    expect(journal.list()[0]?.parked?.error).toBe("Bad Gateway");
    expect(logs.lines().filter((l) => l.msg === "job failed; will retry")).toHaveLength(2);
    const outcomes = (await metrics.jobs.get()).values.map((v) => [v.labels.outcome, v.value]);
    expect(outcomes).toEqual(
      expect.arrayContaining([
        ["retry", 2],
        ["parked", 1],
      ]),
    );
  });

  it("gives each run of a job what its earlier runs spent, recorded before the run's end", async () => {
    const { runner, journal, clock, logs } = await setup({ maxAttempts: 3 });
    const seen: number[] = [];
    runner.register("work", async (_id, run) => {
      seen.push(run.spentTokens);
      run.spend(400);
      run.spend(100);
      throw new RequestError("Bad Gateway", 502, {
        request: { method: "POST", url: "https://api.github.com/x", headers: {} },
      });
    });
    runner.start(async (j) => j.id);
    await runner.submit(job("spender", "a"), "spender");
    await runner.idle();
    expect(journal.list()[0]?.spentTokens).toBe(500);
    await clock.advance(retryDelayMs(1));
    await runner.idle();
    await clock.advance(retryDelayMs(2));
    await runner.idle();
    expect(seen).toEqual([0, 500, 1_000]);
    expect(journal.list()[0]).toMatchObject({
      spentTokens: 1_500,
      parked: { error: "Bad Gateway" },
    });
    expect(
      logs.lines().filter((l) => l.level === 50 && l.msg !== "job failed; will retry"),
    ).toEqual([expect.objectContaining({ msg: "job failed; parked (see `talos jobs`)" })]);
  });

  it("parks, without running it, a job that crashed the process on every attempt", async () => {
    const first = await setup({ maxAttempts: 2 });
    await first.journal.enqueue(job("poison", "a"));
    await first.journal.close();
    // Two starts without an end: two crashes.
    appendFileSync(first.file, '{"op":"start","id":"poison"}\n{"op":"start","id":"poison"}\n');
    const second = await setup({ maxAttempts: 2, file: first.file });
    let ran = false;
    second.runner.register("work", async () => void (ran = true));
    second.runner.start(async (j) => j.id);
    await second.runner.idle();
    expect(ran).toBe(false);
    expect(second.journal.list()[0]?.parked?.error).toBe("started 2 times without finishing");
  });

  it("runs jobs one at a time after two crashes in a row, so that only the job crashing the process is parked", async () => {
    const file = join(makeDataDir(), "journal.log");
    const started: string[] = [];
    for (let life = 1; life <= 7; life++) {
      const { runner, journal } = await setup({ concurrency: 8, maxAttempts: 5, file });
      let crashed = false;
      // X brings the process down as it runs; Y is slow (a long review), and outlives each life.
      runner.register("work", async (_context, run) => {
        started.push(`${life}:${run.id}`);
        if (run.id === "X") crashed = true;
        await new Promise(() => undefined);
      });
      if (life === 1) for (const id of ["X", "Y"]) await runner.submit(job(id, id), id);
      runner.start(async (j) => j.id);
      await until(() => crashed || Boolean(journal.list().find((j) => j.id === "X")?.parked));
      // Time for any other job the runner would start beside it; then the process dies, writing
      // nothing more.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { journal } = await setup({ file });
    const [x, y] = journal.list();

    // Both ran in the first two lives; from the third, X alone, until it was parked; then Y.
    expect(started).toEqual(["1:X", "1:Y", "2:X", "2:Y", "3:X", "4:X", "5:X", "6:Y", "7:Y"]);
    expect(x).toMatchObject({ id: "X", parked: { error: "started 5 times without finishing" } });
    expect(y).toMatchObject({ id: "Y", attempts: 4 });
    expect(y!.parked).toBeUndefined();
  });

  it("on stop, waits out the grace period and leaves an unfinished job journaled", async () => {
    const first = await setup();
    const never = deferred();
    let started = false;
    first.runner.register("work", () => {
      started = true;
      return never.promise;
    });
    first.runner.start(async (j) => j.id);
    await first.runner.submit(job("slow", "a"), "slow");
    await until(() => started);
    expect(await first.runner.stop(20)).toBe(1);
    expect(await first.runner.submit(job("late", "b"), "late")).toEqual({
      status: "refused",
      reason: "stopping",
    });
    await first.journal.close();
    const second = await setup({ file: first.file });
    const ran: string[] = [];
    second.runner.register("work", async (id) => void ran.push(id));
    second.runner.start(async (j) => `resumed ${j.id}`);
    await second.runner.idle();
    expect(ran).toEqual(["resumed slow"]);
  });

  it.each([
    // The retry comes due while the only slot is taken.
    ["every slot is busy", 1, false],
    // What the journal says after two crashes in a row: one job at a time, though slots are free.
    ["jobs run one at a time after crashes", 4, true],
  ])(
    "does not spin while %s and a retry is due: the running job's end starts it",
    async (_, concurrency, isolated) => {
      const { runner, journal, clock } = await setup({ concurrency });
      const ran: string[] = [];
      const gate = deferred();
      runner.register("work", async (id) => {
        ran.push(id);
        if (id === "slow") return gate.promise;
        if (ran.length === 1)
          throw new RequestError("Bad Gateway", 502, {
            request: { method: "GET", url: "https://api.github.com/x", headers: {} },
          });
      });
      runner.start(async (j) => j.id);
      await runner.submit(job("flaky", "b"), "flaky");
      await runner.idle();
      await runner.submit(job("slow", "a"), "slow");
      await until(() => ran.includes("slow"));
      if (isolated) journal.needsIsolation = () => true;
      const sleep = vi.spyOn(clock, "sleep");
      await clock.advance(retryDelayMs(1));
      // Each turn of the timers: a wake-up that claims nothing must not set another for at once
      // (a real timer would fire it in 1 ms, and again, for as long as the slow job runs; a clock
      // whose sleep returns at once, for ever).
      for (let i = 0; i < 5; i++) await clock.advance(0);
      expect(sleep.mock.calls.filter(([ms]) => ms <= 0)).toEqual([]);
      gate.resolve();
      await until(() => ran.length === 3);
      await runner.idle();
      expect(ran).toEqual(["flaky", "slow", "flaky"]);
    },
  );

  it("does not spin when a due retry cannot be claimed (a full disk): it tries again later", async () => {
    const { runner, journal, clock, logs } = await setup();
    let runs = 0;
    runner.register("work", async () => {
      if (runs++ === 0)
        throw new RequestError("Bad Gateway", 502, {
          request: { method: "GET", url: "https://api.github.com/x", headers: {} },
        });
    });
    runner.start(async (j) => j.id);
    await runner.submit(job("flaky", "a"), "flaky");
    await runner.idle();
    const claimNext = journal.claimNext.bind(journal);
    let full = true;
    journal.claimNext = async () => {
      if (full)
        throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
      return claimNext();
    };
    await clock.advance(retryDelayMs(1));
    await runner.idle();
    for (let i = 0; i < 5; i++) {
      await clock.advance(0);
      await runner.idle();
    }
    const failures = () =>
      logs.lines().filter((l) => l.msg === "cannot claim jobs from the journal; retrying");
    expect(failures()).toHaveLength(1);
    full = false;
    await clock.advance(5_000);
    await runner.idle();
    expect(runs).toBe(2);
    expect(journal.list()).toEqual([]);
  });

  it("on stop during a claim, gives the job so claimed its grace period before returning", async () => {
    const { runner, journal } = await setup();
    const claimed = deferred();
    const claimNext = journal.claimNext.bind(journal);
    let held = true;
    journal.claimNext = async () => {
      // SIGTERM arrives while the start is being journaled.
      if (held) await claimed.promise;
      held = false;
      return claimNext();
    };
    const finish = deferred();
    let started = false;
    let finished = false;
    runner.register("work", async () => {
      started = true;
      await finish.promise;
      finished = true;
    });
    runner.start(async (j) => j.id);
    await runner.submit(job("claimed", "a"), "claimed");
    let stopped = false;
    const stopping = runner.stop(3_600_000).then((left) => {
      stopped = true;
      return left;
    });
    claimed.resolve();
    await until(() => started || stopped);
    // The caller closes the journal and the memory once stop returns: not under a running job.
    expect(stopped).toBe(false);
    finish.resolve();
    expect(await stopping).toBe(0);
    expect(finished).toBe(true);
    expect(journal.list()).toEqual([]);
  });

  it("tells failures apart: gone, suspended, permanent and worth another try", () => {
    const request = { method: "GET" as const, url: "https://api.github.com/x", headers: {} };
    const wrapped = (cause: unknown) => new Error("handler failed", { cause });
    expect(classifyJobFailure(wrapped(new RequestError("Not Found", 404, { request })))).toBe(
      "gone",
    );
    expect(classifyJobFailure(new RequestError("Gone", 410, { request }))).toBe("gone");
    expect(classifyJobFailure(wrapped(new MemoryDeletedError("deleted")))).toBe("gone");
    expect(classifyJobFailure(wrapped(new MalformedPayloadError("bad")))).toBe("park");
    expect(classifyJobFailure(new PermanentJobError("no"))).toBe("park");
    expect(classifyJobFailure(new RequestError("Validation Failed", 422, { request }))).toBe(
      "park",
    );
    expect(
      classifyJobFailure(
        new RequestError("You have exceeded a secondary rate limit", 403, { request }),
      ),
    ).toBe("retry");
    expect(
      classifyJobFailure(
        wrapped(new RequestError("This installation has been suspended", 403, { request })),
      ),
    ).toBe("suspended");
    // GitHub Enterprise's older wording of a secondary limit: its retry-after is what tells.
    const abuse = new RequestError("You have triggered an abuse detection mechanism", 403, {
      request,
      response: { status: 403, url: request.url, headers: { "retry-after": "120" }, data: {} },
    });
    expect(classifyJobFailure(wrapped(abuse))).toBe("retry");
    expect(retryAfterMs(wrapped(abuse), 0)).toBe(120_000);
    expect(classifyJobFailure(new RequestError("Forbidden", 403, { request }))).toBe("park");
    // GitHub's content-creation limit: a 422 whose errors say it "was submitted too quickly".
    const tooQuickly = new RequestError(
      'Validation Failed: {"resource":"IssueComment","message":"was submitted too quickly"}',
      422,
      { request },
    );
    expect(classifyJobFailure(wrapped(tooQuickly))).toBe("retry");
    expect(retryAfterMs(wrapped(tooQuickly), 0)).toBeUndefined();
    expect(classifyJobFailure(new RequestError("Too Many", 429, { request }))).toBe("retry");
    // Credentials refused pass too (an app JWT from a clock stepped ahead, a key being rotated,
    // a token that expired as it was sent): tried again up to TALOS_JOB_MAX_ATTEMPTS, then
    // parked. Parked at once, every job of that moment had waited for someone to retry it.
    const badCredentials = new RequestError("Bad credentials", 401, { request });
    expect(classifyJobFailure(wrapped(badCredentials))).toBe("retry");
    expect(classifyJobFailure(new RequestError("Request Timeout", 408, { request }))).toBe("retry");
    expect(classifyJobFailure(new RequestError("Bad Gateway", 502, { request }))).toBe("retry");
    expect(classifyJobFailure(new Error("socket hang up"))).toBe("retry");
    expect([1, 2, 3, 10].map(retryDelayMs)).toEqual([30_000, 60_000, 120_000, 1_800_000]);
  });
});

describe("a job GitHub keeps refusing for a rate limit", () => {
  const request = {
    method: "POST" as const,
    url: "https://api.github.com/repos/o/r/issues/1/comments",
    headers: {},
  };
  /** GitHub's secondary rate limit: a 403 naming it, with a `retry-after` of a minute. */
  const secondaryLimit = () =>
    new RequestError("You have exceeded a secondary rate limit. Please wait a few minutes.", 403, {
      request,
      response: { status: 403, url: request.url, headers: { "retry-after": "60" }, data: {} },
    });

  it("uses up no attempt for runs GitHub refused for a rate limit, and runs until one goes through", async () => {
    const { runner, journal, clock } = await setup({ maxAttempts: 3 });
    // GitHub is busy for a few minutes (a burst of issues, a backfill): more runs are refused
    // than the job has attempts, then one goes through.
    let runs = 0;
    const seen: Array<{ attempts: number; rateLimitedRuns: number | undefined }> = [];
    runner.register("work", async () => {
      const held = journal.list().find((j) => j.id === "d1")!;
      seen.push({ attempts: held.attempts, rateLimitedRuns: held.rateLimitedRuns });
      if (++runs <= 4) throw new Error("reply failed", { cause: secondaryLimit() });
    });
    runner.start(async (j) => j.id);
    await runner.submit(job("d1", "t"), "ctx");
    await runner.idle();
    for (let i = 0; i < 6 && runs < 5; i++) {
      await clock.advance(31 * 60_000);
      await runner.idle();
    }
    expect(runs).toBe(5);
    // Finished, not parked after its third rate-limited run.
    expect(journal.list()).toEqual([]);
    // Each run is its first attempt: the refused ones were counted apart.
    expect(seen).toEqual([
      { attempts: 1, rateLimitedRuns: undefined },
      { attempts: 1, rateLimitedRuns: 1 },
      { attempts: 1, rateLimitedRuns: 2 },
      { attempts: 1, rateLimitedRuns: 3 },
      { attempts: 1, rateLimitedRuns: 4 },
    ]);
  });

  it("is parked after MAX_RATE_LIMITED_RUNS runs when GitHub refuses every one", async () => {
    const { runner, journal, clock } = await setup({ maxAttempts: 3 });
    let runs = 0;
    runner.register("work", async () => {
      runs++;
      throw secondaryLimit();
    });
    runner.start(async (j) => j.id);
    await runner.submit(job("d1", "t"), "ctx");
    await runner.idle();
    for (let i = 0; i < MAX_RATE_LIMITED_RUNS + 5; i++) {
      await clock.advance(31 * 60_000);
      await runner.idle();
    }
    expect(runs).toBe(MAX_RATE_LIMITED_RUNS);
    expect(journal.list()[0]?.parked?.error).toMatch(/secondary rate limit/);
  });
});

describe("the job runner's wake-ups for retries", () => {
  it("sleeps until a thread's first job is due, not a later one held behind it", async () => {
    const logs = await captureLogs("warn");
    const clock = createFakeClock();
    const journal = await JobJournal.open({
      file: join(makeDataDir(), "journal.log"),
      maxQueued: 100,
      retentionMs: 3_600_000,
      maxFinished: 100,
      clock,
      log: logs.log,
    });
    onTestFinished(() => journal.close());
    // Thread t: A parked, B fails (retry in 30 s); A, retried by hand (`talos jobs retry`), keeps
    // its place before B, runs and fails (retry in 60 s).
    await journal.enqueue(job("A", "t"));
    await journal.enqueue(job("B", "t"));
    expect((await journal.claimNext())?.id).toBe("A");
    await journal.fail("A", "malformed", undefined);
    expect((await journal.claimNext())?.id).toBe("B");
    await journal.fail("B", "GitHub 502", clock.now() + 30_000);
    expect(await journal.retryParked("A")).toBe(true);
    expect((await journal.claimNext())?.id).toBe("A");
    await journal.fail("A", "GitHub 502", clock.now() + 60_000);
    // B's time has come; A's, which B waits behind, has not.
    clock.advance(31_000);

    const runner = new JobRunner<string>({
      queue: journal,
      concurrency: 4,
      maxAttempts: 5,
      clock,
      log: logs.log,
      metrics: createMetrics(),
    });
    const ran: string[] = [];
    runner.register("work", async (id) => void ran.push(id));
    runner.start(async (j) => j.id);
    // Bounded: a runner that spins never runs A (its sleeps of 0 ms do not move the clock).
    const deadline = Date.now() + 10_000;
    while (ran.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await runner.stop(0);
    // It slept until A's retry, then ran A and B in order; it had woken at once, again and again.
    expect(clock.sleeps.filter((ms) => ms === 0).length).toBeLessThan(10);
    expect(ran).toEqual(["A", "B"]);
  });
});

describe("the services' job runner", () => {
  it("keeps no secret in a failure's message, which talos jobs shows", async () => {
    const key = "sk-proj-Secret1234567890abcdefXYZ";
    const env = parseEnv({
      TALOS_DATA_DIR: makeDataDir(),
      TALOS_JOB_MAX_ATTEMPTS: "1",
      OPENAI_API_KEY: key,
    });
    const { log } = await captureLogs("warn");
    const services = await createServices({ env, log, model: undefined });
    try {
      services.jobs.register("work", async () => {
        // As a server might quote the request's key back in its error text.
        throw new Error(`401 Incorrect API key provided: ${key}`);
      });
      services.jobs.start(async () => {
        throw new Error("no context for a resumed job in this test");
      });
      await services.jobs.submit(job("leaky", "a"), {} as never);
      await services.jobs.idle();
      const parked = services.journal!.list()[0]?.parked?.error;
      expect(parked).toMatch(/^401 Incorrect API key provided: /);
      expect(parked).not.toContain(key);
    } finally {
      await services.close();
    }
  });
});

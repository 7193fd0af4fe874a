import type { Logger } from "pino";
import { causesOf } from "../causes-of.js";
import type { Clock } from "../clock.js";
import { isRateLimited, rateLimitWaitMs, retryAfterHeaderMs } from "../github/octokit.js";
import type { Metrics } from "../metrics/create-metrics.js";
import {
  MAX_RETRY_WAIT_MS,
  type EnqueueResult,
  type Job,
  type JobQueue,
  type NewJob,
} from "./job-queue.js";

export interface JobRunnerOptions {
  queue: JobQueue;
  /** Jobs running at once, all threads together (`TALOS_CONCURRENCY`). */
  concurrency: number;
  /**
   * Runs a job may start, crashes included, before it is parked (`TALOS_JOB_MAX_ATTEMPTS`); runs
   * GitHub refused for a rate limit are bounded apart (MAX_RATE_LIMITED_RUNS).
   */
  maxAttempts: number;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /**
   * Removes secrets from a failure's message before the queue keeps it, where `talos jobs` shows
   * it: a server's error text may quote a key (the log scrubs its own copy).
   */
  scrub?: (text: string) => string;
  /**
   * A job dropped because its installation is suspended: its event is not followed, and the
   * unsuspension is to catch it up (a failure here is logged; the job is dropped all the same).
   */
  suspended?: (job: Job) => Promise<void>;
}

/** What a handler knows of its job's run besides its context. */
export interface JobRun {
  /** The job's id (its delivery's), the same in each of its runs. */
  readonly id: string;
  /** Model tokens the job's earlier runs spent: its cap covers all its runs together. */
  readonly spentTokens: number;
  /** Records model tokens this run spent, with the job, for its next run should this one fail. */
  spend(tokens: number): void;
  /** Steps the job's earlier runs finished (see `stepDone`). */
  readonly stepsDone: ReadonlySet<string>;
  /**
   * Records, with the job, that this run finished `step`, so that a retry skips it: for work
   * whose end leaves nothing on GitHub to look for. Resolves once recorded; a failure to record
   * is logged, and a retry does the step again.
   */
  stepDone(step: string): Promise<void>;
}

export type JobHandler<C> = (context: C, run: JobRun) => Promise<void>;

/** What to do with a job whose run threw. */
export type FailureKind = "retry" | "park" | "gone" | "suspended";

/**
 * Runs journaled jobs: one at a time per thread, at most `concurrency` together, each failure
 * retried with backoff until `maxAttempts` (or, refused by GitHub for a rate limit, until
 * MAX_RATE_LIMITED_RUNS), then parked. `C` is what a handler needs (Probot's
 * context); a job accepted by this process keeps the one it came with, and a job resumed after a
 * restart gets a new one from `contextOf`.
 */
export class JobRunner<C> {
  readonly #options: JobRunnerOptions;
  readonly #handlers = new Map<string, JobHandler<C>>();
  readonly #contexts = new Map<string, C>();
  /** By run, not by job: a run that lost its lease may still run beside its job's next run. */
  readonly #running = new Set<Promise<void>>();
  #contextOf: ((job: Job) => Promise<C>) | undefined;
  #stopping = false;
  #pumping = false;
  /** The pump's claims under way: a job they claim after stop() is called runs all the same. */
  #claiming: Promise<void> | undefined;
  #pumpAgain = false;
  #wakeAt: number | undefined;
  /** Aborted by stop(): the waits for a retry's time or a claim's retry end, timers and all. */
  readonly #stopped = new AbortController();
  #idleWaiters: Array<() => void> = [];
  readonly #watchers = new Map<string, Array<(error: unknown) => void>>();

  constructor(options: JobRunnerOptions) {
    this.#options = options;
  }

  register(kind: string, handler: JobHandler<C>): void {
    if (this.#handlers.has(kind)) throw new Error(`a job handler for ${kind} is registered twice`);
    this.#handlers.set(kind, handler);
  }

  /** Starts running jobs, those a restart left in the journal first. */
  start(contextOf: (job: Job) => Promise<C>): void {
    this.#contextOf = contextOf;
    // What a restart found (parked jobs included): the gauge read 0 until a delivery came.
    this.#countQueued();
    void this.#options.queue.snapshot().then(
      ({ jobs }) => {
        const waiting = jobs.filter((job) => !job.parked).length;
        if (waiting > 0) this.#options.log.info({ jobs: waiting }, "resuming journaled jobs");
      },
      () => undefined,
    );
    this.#pump();
  }

  /** Journals a delivery (durably) and schedules it; resolves before the job runs. */
  async submit(job: NewJob, context: C): Promise<EnqueueResult> {
    let result: EnqueueResult;
    try {
      result = this.#stopping
        ? { status: "refused", reason: "stopping" }
        : await this.#options.queue.enqueue(job);
    } catch (error) {
      // A journal that cannot take it (a full disk, a read-only directory, Redis down): refused
      // too, and counted with the others.
      this.#options.metrics.jobsRefused.inc({ reason: "error" });
      throw error;
    }
    if (result.status === "refused")
      this.#options.metrics.jobsRefused.inc({ reason: result.reason });
    if (result.status !== "accepted") return result;
    if (!this.#options.queue.shared) this.#contexts.set(job.id, context);
    this.#countQueued();
    this.#pump();
    return result;
  }

  /**
   * Makes a parked job wait again and runs it when a slot is free (`talos jobs retry` beside
   * this server); false when it is not parked. Throws while this runner is stopping: answered
   * false, the command had said the job was not parked, and left it so.
   */
  async retryParked(id: string): Promise<boolean> {
    if (this.#stopping)
      throw new Error(
        "the server is stopping, so nothing was retried: run `talos jobs retry` again once it has stopped or started again",
      );
    if (!(await this.#options.queue.retryParked(id))) return false;
    this.#countQueued();
    this.#pump();
    return true;
  }

  /**
   * Settles when the job's next run ends: resolves when it finished, rejects with its error when
   * it failed (it may still be retried). For `talos replay` and tests.
   */
  waitFor(id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const watchers = this.#watchers.get(id) ?? [];
      watchers.push((error) => (error === undefined ? resolve() : reject(error)));
      this.#watchers.set(id, watchers);
    });
  }

  /** Resolves once no job runs and none may run now (jobs waiting for a retry do not count). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops starting jobs and waits up to `graceMs` for the running ones. Whatever is unfinished
   * then stays in the journal and resumes at the next start. Resolves with how many were left.
   */
  async stop(graceMs: number): Promise<number> {
    this.#stopping = true;
    // A wait for a retry an hour away kept a CLI command (`talos replay`) running that long.
    this.#stopped.abort();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise((resolve) => (timer = setTimeout(resolve, graceMs)));
    // A claim under way (its start being journaled) starts its job once it returns: wait for it,
    // or that job would run unwaited-for while the caller closes the journal and memory under it.
    await Promise.race([this.#claiming, grace]);
    const running = [...this.#running];
    if (running.length > 0) {
      this.#options.log.info({ jobs: running.length, graceMs }, "waiting for running jobs");
      await Promise.race([Promise.allSettled(running), grace]);
    }
    clearTimeout(timer);
    return this.#running.size;
  }

  #isIdle(): boolean {
    return this.#running.size === 0 && !this.#pumping;
  }

  #settleIdle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #pump(): void {
    if (!this.#contextOf || this.#stopping) return this.#settleIdle();
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    let failed = false;
    const claiming = this.#claimAll()
      .catch((error: unknown) => {
        // The journal cannot record a start (a full disk): try again in a while, not only when
        // the next delivery arrives.
        failed = true;
        this.#options.log.error({ err: error }, "cannot claim jobs from the journal; retrying");
        void this.#options.clock
          .sleep(CLAIM_RETRY_MS, this.#stopped.signal)
          .then(() => this.#pump());
      })
      .finally(() => {
        if (this.#claiming === claiming) this.#claiming = undefined;
        this.#pumping = false;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.#pump();
        } else {
          // Not after a failed claim: a retry already due would wake the pump at once, fail
          // again, and so on without pause; the retry above comes in a while.
          if (!failed) this.#scheduleWake();
          this.#settleIdle();
        }
      });
    this.#claiming = claiming;
  }

  async #claimAll(): Promise<void> {
    while (!this.#stopping && this.#running.size < this.#options.concurrency) {
      // One at a time while a job may be crashing the process: see JobQueue.needsIsolation.
      if (this.#running.size > 0 && this.#options.queue.needsIsolation?.()) return;
      this.#pumpAgain = false;
      const job = await this.#options.queue.claimNext();
      if (!job) return;
      const run: Promise<void> = this.#run(job).finally(() => {
        this.#running.delete(run);
        this.#contexts.delete(job.id);
        this.#countQueued();
        this.#pump();
      });
      this.#running.add(run);
    }
  }

  #countQueued(): void {
    this.#options.queue.count().then(
      (count) => this.#options.metrics.jobsQueued.set(count),
      () => undefined,
    );
  }

  /** One timer for the earliest retry, so that delayed jobs run when their time comes. */
  #scheduleWake(): void {
    // Every slot taken: a run's end looks again. A retry already due would otherwise wake the pump
    // at once, which finds no slot and sets the wake again, spinning until a slot frees.
    if (this.#running.size >= this.#options.concurrency) return;
    const at = this.#options.queue.nextRetryAt();
    if (at === undefined || this.#stopping || (this.#wakeAt !== undefined && this.#wakeAt <= at))
      return;
    const wait = Math.max(0, at - this.#options.clock.now());
    // Due, yet the claim just passed it over while a job runs (its thread busy, or jobs run one
    // at a time after crashes): that run's end pumps again. Waking now would find the same, at
    // once, for as long as the run lasts (with a clock whose sleep returns at once, for ever).
    if (wait === 0 && this.#running.size > 0) return;
    this.#wakeAt = at;
    void this.#options.clock.sleep(wait, this.#stopped.signal).then(() => {
      if (this.#wakeAt === at) this.#wakeAt = undefined;
      this.#pump();
    });
  }

  #notify(id: string, error: unknown): void {
    const watchers = this.#watchers.get(id);
    this.#watchers.delete(id);
    for (const watcher of watchers ?? []) watcher(error);
  }

  async #run(job: Job): Promise<void> {
    const { queue, log: baseLog, metrics, maxAttempts, clock } = this.#options;
    const log = baseLog.child({
      delivery: job.id,
      event: job.event,
      installation: job.installation,
      repository: job.repository,
      attempt: job.attempts,
    });
    if (job.attempts > maxAttempts) {
      // Started that many times without finishing: it crashes the process, or never ends.
      const error = `started ${job.attempts - 1} times without finishing`;
      log.error({ error }, "job parked");
      metrics.jobs.inc({ kind: job.kind, outcome: "parked" });
      return this.#record(log, job, () => queue.fail(job.id, error, undefined));
    }
    const started = clock.now();
    // Which instance ran what, when several share the queue.
    log.debug("job started");
    let failure: { error: unknown } | undefined;
    const spending = new Set<Promise<void>>();
    const run: JobRun = {
      id: job.id,
      spentTokens: job.spentTokens ?? 0,
      spend: (tokens) => {
        const recorded: Promise<void> = queue
          .spend(job.id, tokens)
          .catch((error: unknown) =>
            log.error(
              { err: error, tokens },
              "tokens spent not recorded with the job: a retry may spend them again",
            ),
          )
          .finally(() => spending.delete(recorded));
        spending.add(recorded);
      },
      stepsDone: new Set(job.stepsDone),
      stepDone: (step) =>
        queue
          .stepDone(job.id, step)
          .catch((error: unknown) =>
            log.error(
              { err: error, step },
              "step not recorded with the job: a retry does it again",
            ),
          ),
    };
    try {
      const handler = this.#handlers.get(job.kind);
      if (!handler) throw new PermanentJobError(`no handler for jobs of kind ${job.kind}`);
      const contextOf = this.#contextOf;
      const context = this.#contexts.get(job.id) ?? (await contextOf!(job));
      await handler(context, run);
    } catch (error) {
      failure = { error };
    }
    // Recorded before the run's end, which a retry's claim may follow at once.
    await Promise.all(spending);
    try {
      if (!failure) {
        await this.#record(log, job, () => queue.complete(job.id));
        log.info({ ms: clock.now() - started }, "job finished");
        metrics.jobs.inc({ kind: job.kind, outcome: "done" });
        this.#notify(job.id, undefined);
        return;
      }
      const { error } = failure;
      this.#notify(job.id, error);
      const { kind, message, waitMs, rateLimited } = this.#readFailure(log, error);
      // A run GitHub refused for a rate limit is no failure of the job's (a burst of secondary
      // limits refuses every run for minutes): it uses up no attempt, and only a bound of its own
      // parks a job GitHub refuses every time.
      const retries =
        kind === "retry" &&
        (rateLimited
          ? (job.rateLimitedRuns ?? 0) + 1 < MAX_RATE_LIMITED_RUNS
          : job.attempts < maxAttempts);
      if (job.lease?.aborted) {
        // Its writes were refused from then on; the queue records nothing of this run's end.
        log.warn({ err: error }, "job left: this instance lost its lease, and another runs it");
        metrics.jobs.inc({ kind: job.kind, outcome: "lost" });
        return;
      }
      if (kind === "gone" || kind === "suspended") {
        const why =
          kind === "gone"
            ? "what it was about is gone from GitHub"
            : "its installation is suspended";
        log.info({ err: error }, `job dropped: ${why}`);
        if (kind === "suspended")
          await this.#options
            .suspended?.(job)
            .catch((markError: unknown) =>
              log.error({ err: markError }, "cannot mark the installation suspended"),
            );
        await this.#record(log, job, () => queue.complete(job.id));
      } else if (retries) {
        // GitHub's rate limits say when to come back: sooner is refused again. Backed off over
        // all its runs: a job GitHub keeps refusing comes back less and less often.
        const runs = job.attempts + (job.rateLimitedRuns ?? 0);
        const delay = Math.max(retryDelayMs(runs), waitMs ?? 0);
        const retryAt = clock.now() + delay;
        log.error(
          { err: error, retryAt: new Date(retryAt).toISOString() },
          "job failed; will retry",
        );
        await this.#record(log, job, () => queue.fail(job.id, message, retryAt, rateLimited));
      } else {
        log.error({ err: error }, "job failed; parked (see `talos jobs`)");
        await this.#record(log, job, () => queue.fail(job.id, message, undefined));
      }
      const outcome =
        kind === "gone" || kind === "suspended" ? "gone" : retries ? "retry" : "parked";
      metrics.jobs.inc({ kind: job.kind, outcome });
    } finally {
      metrics.jobDuration.observe({ kind: job.kind }, (clock.now() - started) / 1_000);
    }
  }

  /**
   * What a failed run's error says: how to treat it, its message (scrubbed), and how long GitHub
   * asked to wait. An error that throws when read (a getter, a `toString`) is a failure to
   * retry: reading it had rejected the run, unhandled, and ended the process.
   */
  #readFailure(
    log: Logger,
    error: unknown,
  ): { kind: FailureKind; message: string; waitMs: number | undefined; rateLimited: boolean } {
    const scrub = this.#options.scrub ?? ((text: string) => text);
    try {
      return {
        kind: classifyJobFailure(error),
        message: scrub(error instanceof Error ? error.message : String(error)),
        waitMs: retryAfterMs(error, this.#options.clock.now()),
        rateLimited: isRateLimitFailure(error),
      };
    } catch (readError) {
      log.warn({ err: readError }, "the job's error could not be read; it is retried");
      return {
        kind: "retry",
        message: "an error that could not be read",
        waitMs: undefined,
        rateLimited: false,
      };
    }
  }

  /**
   * Journals how a run ended. When the disk refuses (full, read-only), the job keeps the state
   * this process gave it in memory, and the journal's last word on it (started) makes the next
   * start run it again; the run itself is over, and nothing else depends on the write.
   */
  async #record(log: Logger, job: Job, write: () => Promise<void>): Promise<void> {
    // The queue knows a job's claim by its id only. A run whose lease was lost has no claim left
    // (another instance, or a later claim on this one, holds the job now): ending it by the id
    // would end that other run's claim while it runs.
    if (job.lease?.aborted) return;
    try {
      await write();
    } catch (error) {
      log.error({ err: error }, "cannot journal how the job ended; the next start runs it again");
    }
  }
}

const CLAIM_RETRY_MS = 5_000;
/**
 * Runs GitHub may refuse for a rate limit before the job is parked: about a day of its backoff
 * (30 minutes at most between runs), far past any burst of limits or an hour's spent primary one.
 */
export const MAX_RATE_LIMITED_RUNS = 50;

/** A failure that another attempt cannot fix. */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
}

/**
 * 404 and 410 mean the issue or repository went away (deleted, transferred) while the job
 * waited, as does a memory deleted with its repository: nothing is left to do. A suspended
 * installation's jobs are dropped too: its owner (or the app's) stopped Talos acting there, and
 * GitHub sends no events meanwhile, so none of them can be resumed in order at the unsuspension;
 * a reply to a command days later would surprise more than help. Other client errors and
 * malformed payloads fail the same way every time. Everything else (GitHub 5xx, rate limits,
 * the network, the model) may pass.
 * https://docs.github.com/en/apps/maintaining-github-apps/suspending-a-github-app-installation
 */
export function classifyJobFailure(error: unknown): FailureKind {
  // 401 included: credentials refused for a while (an app JWT signed by a clock stepped ahead,
  // a key being rotated, a token that expired as it was sent) had parked every job of that
  // moment for good; refused for good, the job is parked after TALOS_JOB_MAX_ATTEMPTS. The model
  // server's 401 passes too (an OPENAI_API_KEY rotated before its successor is deployed): a
  // command has already been told what to check (runCommand), and an automatic job is parked.
  for (const cause of causesOf(error)) {
    if (cause instanceof PermanentJobError || cause.name === "MalformedPayloadError") return "park";
    // The repository's memory was deleted with the repository while the job waited.
    if (cause.name === "MemoryDeletedError") return "gone";
    const status = (cause as { status?: unknown }).status;
    // GitHub's only: the model's or the embedder's 404 (a retired TALOS_MODEL, a wrong
    // OPENAI_BASE_URL path) had dropped the job as if its issue were deleted; it is parked.
    if ((status === 404 || status === 410) && isGitHubAnswer(cause)) return "gone";
    if (status === 403 && isSuspended(cause)) return "suspended";
    if (typeof status === "number" && status >= 400 && status < 500 && !PASSING.has(status))
      return isRateLimited(cause) ? "retry" : "park";
  }
  return "retry";
}

/** Octokit's error for an answer of GitHub's (its RequestError, which names the request). */
function isGitHubAnswer(error: Error): boolean {
  const request = (error as { request?: { url?: unknown } }).request;
  return error.name === "HttpError" && typeof request?.url === "string";
}

/** Client errors that may pass: a timeout, credentials refused, a rate limit. */
const PASSING = new Set([401, 408, 429]);

/** GitHub's 403 to a suspended installation (its token, and any request made with one). */
function isSuspended(error: Error): boolean {
  return /installation has been suspended/i.test(error.message.slice(0, 500));
}

/**
 * How long GitHub asked to wait before trying again, if it did: a rate limit's wait, read as
 * every other caller reads it (rateLimitWaitMs), or another answer's `retry-after` (a 503).
 * Retrying sooner meets the limit again, and GitHub may ban an integration that keeps doing so.
 * https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
 */
export function retryAfterMs(error: unknown, now: number): number | undefined {
  for (const cause of githubAnswersOf(error)) {
    const wait = rateLimitWaitMs(cause, now) ?? retryAfterHeaderMs(cause, now);
    if (wait !== undefined) return Math.min(wait, MAX_RETRY_WAIT_MS);
  }
  return undefined;
}

/** GitHub refused the run for a rate limit (its answer, or one of the failure's causes). */
export function isRateLimitFailure(error: unknown): boolean {
  return githubAnswersOf(error).some(isRateLimited);
}

/**
 * The failure's causes that are GitHub's answers (Octokit's errors carry the response): a
 * model's or an embedding server's 429 was waited out by LangChain already, names no GitHub
 * wait, and is a failure like any other.
 */
function githubAnswersOf(error: unknown): Error[] {
  return causesOf(error).filter(
    (cause) => (cause as { response?: unknown }).response !== undefined,
  );
}

/** 30 s, 1 min, 2 min, … up to 30 min. */
export function retryDelayMs(attempts: number): number {
  return Math.min(30_000 * 2 ** Math.max(0, attempts - 1), 30 * 60_000);
}

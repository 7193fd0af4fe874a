/**
 * The queue of accepted webhook deliveries: a journal on local disk (job-journal.ts), or with
 * `REDIS_URL` a queue every instance shares (redis-job-queue.ts).
 */
/**
 * The longest a retry waits: GitHub's primary rate limit resets within the hour (the backoff
 * itself stops at 30 minutes). A retry time further off than this was set by a clock since
 * stepped back (an NTP correction, a restored snapshot), and is due now.
 */
export const MAX_RETRY_WAIT_MS = 61 * 60_000;

export interface NewJob {
  /** The delivery id (`X-GitHub-Delivery`): a redelivery of the same event is the same job. */
  id: string;
  /** Which registered handler runs it. */
  kind: string;
  /** The event's name with its action, e.g. `issues.opened`. */
  event: string;
  /** Jobs with the same thread run one at a time, in arrival order. */
  thread: string;
  /** `owner/repo`, for display (`talos jobs`) and logs. */
  repository?: string | undefined;
  installation?: number | undefined;
  payload: unknown;
}

export interface Job extends NewJob {
  acceptedAt: number;
  /**
   * Runs started so far, counting runs a crash interrupted, but not those GitHub refused for a
   * rate limit (see `rateLimitedRuns`).
   */
  attempts: number;
  /**
   * Runs that ended refused by GitHub for a rate limit: no failure of the job's, so counted
   * apart from its attempts, against a larger bound of their own (see the runner).
   */
  rateLimitedRuns?: number | undefined;
  /**
   * Model tokens its earlier runs spent, recorded as each call was charged (`spend`), crashed
   * runs' included: the job's cap (`TALOS_AGENT_MAX_TOKENS`) covers all its runs together.
   */
  spentTokens?: number | undefined;
  /**
   * The steps its earlier runs finished (`stepDone`) whose end leaves no trace to look for: a
   * triage that found no label to apply, say. A retry does not do them again.
   */
  stepsDone?: string[] | undefined;
  /** A failed job waits until then before its next attempt. */
  retryAt?: number | undefined;
  /** Set once the job has failed for good; it is kept for `talos jobs`, never run again. */
  parked?: { at: number; error: string } | undefined;
  /**
   * Runs started since its last recorded outcome (a failure, a parking): the one under way, and
   * before it those a crash (or a stop past its grace) cut short. The local journal's only.
   */
  unsettledRuns?: number | undefined;
  /**
   * A shared queue's claimed job: aborted when this instance can no longer be sure it holds the
   * job (its lease went unrenewed, as through a Redis outage). Another instance may run it then,
   * so this one must stop writing to GitHub.
   */
  lease?: AbortSignal | undefined;
}

export type EnqueueResult =
  { status: "accepted" } | { status: "duplicate" } | { status: "refused"; reason: RefusalReason };

/**
 * Why a delivery was refused: the queue's bound (`TALOS_JOB_QUEUE_MAX`), its installation's
 * share of it (`TALOS_JOB_QUEUE_INSTALLATION_SHARE`), or the server stopping.
 */
export type RefusalReason = "queue-full" | "installation-full" | "stopping";

/**
 * What one installation may hold of a bound (`TALOS_JOB_QUEUE_INSTALLATION_SHARE`): one
 * installation whose jobs all park, or a flood in one repository, fills only its own share, not
 * the queue every installation's deliveries need.
 */
export function installationShareOf(bound: number, share: number): number {
  // 100 × 0.29 is 28.999999999999996 in floating point: 29 places were meant.
  return Math.max(1, Math.floor(bound * share + 1e-9));
}

export interface RefusedJob {
  id: string;
  event: string;
  repository?: string | undefined;
  reason: string;
  at: number;
}

export interface QueueSnapshot {
  /** Jobs waiting or running, and parked ones, oldest first. */
  jobs: Job[];
  /**
   * Deliveries refused lately because the queue was full. Those refused as the server stops are
   * not kept: the next start asks GitHub for them again (redeliver-missed.ts).
   */
  refused: RefusedJob[];
}

export interface JobQueue {
  /**
   * Shared by several instances: a job may run on another than the one that accepted it, so
   * the runner keeps no per-delivery context for it.
   */
  readonly shared: boolean;
  /** Durable once it resolves with `accepted`: the job survives a crash from then on. */
  enqueue(job: NewJob): Promise<EnqueueResult>;
  /**
   * The oldest job that may run now: the first waiting job of a thread with no running job,
   * whose retry time has come. Its attempt is counted durably before it is returned.
   */
  claimNext(): Promise<Job | undefined>;
  complete(id: string): Promise<void>;
  /**
   * Adds model tokens to what the job has spent, as each call is charged rather than when the run
   * ends, so that a run killed midway (SIGKILL, a dead instance) still leaves its spending to the
   * next one. Kept with the job until it finishes or is parked.
   */
  spend(id: string, tokens: number): Promise<void>;
  /** Records that the job's run finished `step`, for its next runs (see `Job.stepsDone`). */
  stepDone(id: string, step: string): Promise<void>;
  /**
   * Schedules another attempt at `retryAt`, or parks the job when `retryAt` is undefined. A run
   * `rateLimited` (GitHub refused it for a rate limit) is taken off the job's attempts and
   * counted in its `rateLimitedRuns` instead.
   */
  fail(
    id: string,
    error: string,
    retryAt: number | undefined,
    rateLimited?: boolean,
  ): Promise<void>;
  /**
   * Makes a parked job wait again, as if just accepted (`talos jobs retry`, once its cause is
   * fixed): its attempts, rate-limited runs, spent tokens, steps done and error are forgotten.
   * False when it is not parked.
   */
  retryParked(id: string): Promise<boolean>;
  /** When to look for runnable jobs again, if any may become runnable (a retry's time). */
  nextRetryAt(): number | undefined;
  /**
   * Whether the delivery was accepted (waiting, running, parked or finished, within what the
   * queue remembers): a copy of it would be a duplicate.
   */
  has(id: string): Promise<boolean>;
  /** Jobs counted against the queue's bound (`TALOS_JOB_QUEUE_MAX`). */
  count(): Promise<number>;
  /** For `talos jobs`. */
  snapshot(): Promise<QueueSnapshot>;
  /** False when deliveries cannot be accepted now (a shared queue's server is away). */
  available(): boolean;
  /**
   * True while a job has been cut short by a crash twice or more in a row: one of those running
   * beside it each time may be what crashes the process. The runner then runs one job at a
   * time, so that only the job that crashes it counts starts towards its parking, not those
   * that happened to run beside it. Absent: never (a shared queue's leases say nothing of it).
   */
  needsIsolation?(): boolean;
  close(): Promise<void>;
}

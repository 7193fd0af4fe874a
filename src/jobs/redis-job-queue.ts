import { randomUUID } from "node:crypto";
import { Queue, Worker, type Job as BullJob } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type {
  EnqueueResult,
  Job,
  JobQueue,
  NewJob,
  QueueSnapshot,
  RefusedJob,
} from "./job-queue.js";

export interface RedisJobQueueOptions {
  /** `REDIS_URL`. */
  url: string;
  /** Prefix of every key (`TALOS_REDIS_PREFIX`): instances sharing one prefix share the queue. */
  prefix: string;
  /** Jobs waiting, running or delayed; more are refused. */
  maxQueued: number;
  /** How long a finished delivery is remembered, so that a redelivery is skipped. */
  retentionMs: number;
  /**
   * How long a claimed job and its thread stay this instance's without renewal
   * (`TALOS_JOB_LEASE_MS`): a dead instance's jobs go to another after that.
   */
  leaseMs: number;
  clock: Clock;
  log: Logger;
  /** Only look (`talos jobs`): no stalled-job checks, no claims. */
  inspectOnly?: boolean;
}

/** A job this instance claimed, with what renews and releases it. */
interface Claimed {
  bull: BullJob;
  token: string;
  /** The thread lease's holder: this claim's own, so that no other claim passes for it. */
  owner: string;
  thread: string;
  timer: NodeJS.Timeout;
  /** Aborted once this instance cannot be sure it still holds the job (see `Job.lease`). */
  lease: AbortController;
  /** Fires when the lease, as last renewed, is about to run out. */
  expiry: NodeJS.Timeout | undefined;
}

/** A job's lease ran out, or another instance took it: its writes are refused from then on. */
export class JobLeaseLostError extends Error {
  override name = "JobLeaseLostError";
}

// Only the head of a thread's list may run, and only while it holds the thread's lease: jobs
// of one issue run one at a time, in arrival order, whichever instance holds them. Heads whose
// job is gone or finished (a crash between two writes, a redelivery of a finished job that
// joined again, or one BullMQ has finished whose marks are gone) are dropped; a job missing from its thread's list (a crash between the add and
// JOIN) joins its end. A lease still held is never taken over, even by the instance holding it:
// the run of an earlier claim may still be writing.
// Returns the attempt number with the tokens the job's runs have spent so far, or -1 (not the
// thread's turn), -2 (the thread is held), -3 (done already: a crash came between recording it
// and telling the queue), -4 (parked already, alike).
const CLAIM = `
local list, lease, attempts, spent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, owner, ms, jobPrefix, donePrefix, parkedPrefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('EXISTS', donePrefix .. id) == 1 then return -3 end
if redis.call('EXISTS', parkedPrefix .. id) == 1 then return -4 end
while true do
  local head = redis.call('LINDEX', list, 0)
  if (not head) or head == id then break end
  if redis.call('EXISTS', jobPrefix .. head) == 0
    or redis.call('HEXISTS', jobPrefix .. head, 'finishedOn') == 1
    or redis.call('EXISTS', donePrefix .. head, parkedPrefix .. head) > 0 then
    redis.call('LPOP', list)
  else
    break
  end
end
if not redis.call('LPOS', list, id) then redis.call('RPUSH', list, id) end
if redis.call('LINDEX', list, 0) ~= id then return -1 end
if redis.call('EXISTS', lease) == 1 then return -2 end
redis.call('SET', lease, owner, 'PX', ms)
return {redis.call('HINCRBY', attempts, id, 1), tonumber(redis.call('HGET', spent, id) or '0')}
`;

// Ends a claim: the lease goes if it is still this claim's; a finished job (done, or parked)
// leaves its thread and is remembered for the retention time, a parked one with its error.
// Returns the thread's next job.
const RELEASE = `
local list, lease, attempts, done, parked, spent = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, owner, outcome, retention, error = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', lease) == owner then redis.call('DEL', lease) end
if outcome ~= 'retry' then
  redis.call('LREM', list, 1, id)
  redis.call('HDEL', attempts, id)
  redis.call('HDEL', spent, id)
end
if outcome == 'done' then redis.call('SET', done, '1', 'PX', retention) end
if outcome == 'parked' then redis.call('SET', parked, error, 'PX', retention) end
return redis.call('LINDEX', list, 0)
`;

// A job joins its thread's list when it is accepted: the thread's order is the order in which
// instances acknowledged its deliveries. A finished job does not join again (a redelivery that
// came after the enqueue's own check): it would hold its thread's head.
const JOIN = `
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
return 1
`;

// Adds to the model tokens a job has spent, unless it has finished (a late charge of a run that
// lost its lease would otherwise leave its count behind for good).
const SPEND = `
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
`;

// Whether a job put aside may run now: it heads its thread, and no one holds the thread.
const TURN = `
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
return 0
`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

type Scripts = Redis & {
  talosClaim(...args: Array<string | number>): Promise<number | [number, number]>;
  talosRelease(...args: Array<string | number>): Promise<string | null>;
  talosRenew(...args: Array<string | number>): Promise<number>;
  talosJoin(...args: Array<string | number>): Promise<number>;
  talosTurn(...args: Array<string | number>): Promise<number>;
  talosSpend(...args: Array<string | number>): Promise<number>;
};

// A job not its thread's turn waits this long; the job before it wakes it when it ends, so this
// only bounds the wait when that wake-up is lost (a crash between the two).
const NOT_YET_MS = 10_000;
// A job whose thread another instance holds is looked at again after this: that instance may
// have died, and its lease then runs out.
const HELD_MS = 1_000;
// Other instances' deliveries, and delayed retries, are looked for this often.
const POLL_MS = 1_000;
const MAX_REFUSED = 1_000;
// This long before its lease would run out, a job stops writing (see #hold): GitHub ends a
// request within 10 s of receiving it, so a write sent until then is done, or never happens,
// before another instance can take the job over and look for its marker; 2 s more for the
// request's way there and the clocks' drift. (5 s let a write sent late still be creating its
// comment at GitHub when the next run looked for it, and posted its own.)
const LEASE_MARGIN_MS = 12_000;
const MAX_ERROR = 500;

/**
 * The job queue shared by every instance through Redis (`REDIS_URL`), on BullMQ: the delivery id
 * is the job id, so a delivery received by any number of instances is one job; a job whose
 * instance died is found stalled when its lock expires and runs elsewhere; every instance is a
 * worker. Jobs of one thread run one at a time, in arrival order, under a lease on the thread
 * renewed while the job runs. Claims use BullMQ's manual processing (`getNextJob`), so that the
 * job runner is the same as with the embedded journal.
 */
export class RedisJobQueue implements JobQueue {
  readonly shared = true;
  readonly #options: RedisJobQueueOptions;
  readonly #redis: Scripts;
  readonly #queue: Queue;
  readonly #worker: Worker;
  readonly #instance = randomUUID();
  readonly #claimed = new Map<string, Claimed>();
  readonly #connections: Redis[] = [];
  #closed = false;
  #outageLogged = false;
  /** Says why a connection failed (ioredis's own rejection only says it closed). */
  #lastError: Error | undefined;

  private constructor(options: RedisJobQueueOptions) {
    this.#options = options;
    // BullMQ leaves connections it is given open at its close: these are closed here.
    const connection = (extra: RedisOptions) => {
      const client = new Redis(options.url, {
        maxRetriesPerRequest: null,
        lazyConnect: false,
        ...extra,
      });
      this.#connections.push(client);
      return client;
    };
    // Commands fail at once while Redis is away (the delivery is then refused, not held).
    this.#redis = connection({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      lazyConnect: true,
    }) as Scripts;
    this.#redis.defineCommand("talosClaim", { numberOfKeys: 4, lua: CLAIM });
    this.#redis.defineCommand("talosRelease", { numberOfKeys: 6, lua: RELEASE });
    this.#redis.defineCommand("talosRenew", { numberOfKeys: 1, lua: RENEW });
    this.#redis.defineCommand("talosJoin", { numberOfKeys: 3, lua: JOIN });
    this.#redis.defineCommand("talosTurn", { numberOfKeys: 2, lua: TURN });
    this.#redis.defineCommand("talosSpend", { numberOfKeys: 3, lua: SPEND });
    this.#redis.on("error", (error: Error) => {
      this.#lastError = error;
      this.#logOutage(error);
    });
    this.#redis.on("close", () => {
      if (!this.#closed) this.#logOutage(new Error("the connection to Redis closed"));
    });
    const shared = {
      prefix: options.prefix,
      connection: connection({ enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
    };
    this.#queue = new Queue("jobs", shared);
    this.#queue.on("error", (error: Error) => this.#logOutage(error));
    this.#worker = new Worker("jobs", null, {
      prefix: options.prefix,
      connection: connection({}),
      autorun: false,
      lockDuration: options.leaseMs,
      // A job that stalls is put back to wait each time; the runner parks it after
      // TALOS_JOB_MAX_ATTEMPTS starts, which it counts itself.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      stalledInterval: Math.max(1_000, Math.floor(options.leaseMs / 2)),
    });
    this.#worker.on("error", (error: Error) => this.#logOutage(error));
  }

  static async open(options: RedisJobQueueOptions): Promise<RedisJobQueue> {
    const queue = new RedisJobQueue(options);
    await queue.#redis.connect().catch(async (error: unknown) => {
      const reason = queue.#lastError ?? (error as Error);
      await queue.close();
      throw new Error(`REDIS_URL: Redis does not answer (${reason.message})`, { cause: error });
    });
    if (!options.inspectOnly) await queue.#worker.startStalledCheckTimer();
    return queue;
  }

  /** False while Redis is unreachable: new deliveries are then refused with 503. */
  available(): boolean {
    return !this.#closed && this.#redis.status === "ready";
  }

  async has(id: string): Promise<boolean> {
    return (
      (await this.#redis.exists(this.#doneKey(id), this.#parkedKey(id), this.#acceptedKey(id))) > 0
    );
  }

  async enqueue(job: NewJob): Promise<EnqueueResult> {
    const { maxQueued, retentionMs } = this.#options;
    if (this.#closed) return this.#refuse(job, "stopping");
    // A parked delivery counts as finished too: GitHub's "Redeliver" on it, or a slower
    // instance's copy of it, would otherwise put it back at its thread's head for good.
    if (await this.#redis.exists(this.#doneKey(job.id), this.#parkedKey(job.id)))
      return { status: "duplicate" };
    if ((await this.count()) >= maxQueued) return this.#refuse(job, "queue-full");
    // Past the retention its `done:` or `parked:` mark is gone, and the delivery is a new one (as
    // in the local journal): GitHub's "Redeliver" of a job parked the day before, say. BullMQ may
    // still hold the finished job (it removes old ones only as others finish), and then the add
    // did nothing: accepted, never run, and heading its thread for good.
    const state = await this.#queue.getJobState(job.id);
    if (state === "completed" || state === "failed") await this.#queue.remove(job.id);
    // Idempotent: an id the queue holds is not added again, whoever adds it.
    await this.#queue.add(job.kind, job, {
      jobId: job.id,
      attempts: 1,
      removeOnComplete: { age: 3_600 },
      removeOnFail: { age: Math.ceil(retentionMs / 1_000) },
    });
    await this.#redis.talosJoin(
      this.#threadKey(job.thread),
      this.#doneKey(job.id),
      this.#parkedKey(job.id),
      job.id,
    );
    // The first instance to get here after its add acknowledges it as accepted; the others as a
    // duplicate. A crash between the add and this leaves the job queued (and the claim puts it in
    // its thread): a redelivery says so.
    const first = await this.#redis.set(
      this.#acceptedKey(job.id),
      this.#instance,
      "PX",
      retentionMs,
      "NX",
    );
    return first === "OK" ? { status: "accepted" } : { status: "duplicate" };
  }

  async claimNext(): Promise<Job | undefined> {
    const { prefix, leaseMs } = this.#options;
    for (;;) {
      if (this.#closed) return undefined;
      const token = randomUUID();
      const bull = (await this.#worker.getNextJob(token, { block: false })) as BullJob | undefined;
      if (!bull?.id) return undefined;
      const data = bull.data as NewJob;
      const owner = `${this.#instance}:${token}`;
      // The lease runs from when the claim was sent, not from when its answer came.
      const sentAt = this.#options.clock.now();
      const claim = await this.#redis.talosClaim(
        this.#threadKey(data.thread),
        this.#leaseKey(data.thread),
        `${prefix}:attempts`,
        // Kept beside the attempts, whichever instance ran them: a retry here starts from them.
        this.#spentKey(),
        bull.id,
        owner,
        leaseMs,
        `${prefix}:jobs:`,
        `${prefix}:done:`,
        `${prefix}:parked:`,
      );
      const [attempt, spent] = typeof claim === "number" ? [claim, 0] : claim;
      if (attempt === -3) {
        await bull.moveToCompleted(undefined, token, false);
        continue;
      }
      if (attempt === -4) {
        const error = (await this.#redis.get(this.#parkedKey(bull.id))) ?? "parked";
        await bull.moveToFailed(new Error(error), token, false);
        continue;
      }
      if (attempt < 0) {
        // Not its turn: back to wait a while; its place in its thread is kept.
        const wait = attempt === -1 ? NOT_YET_MS : HELD_MS;
        await bull.moveToDelayed(this.#options.clock.now() + wait, token);
        // The job before it may have ended since the claim looked, its wake-up finding this one
        // still claimed, not yet put aside, and leaving it: it would wait out the delay. Looked
        // at again now that it is put aside: of the two, whichever looks last sees the other.
        if (
          await this.#redis.talosTurn(
            this.#threadKey(data.thread),
            this.#leaseKey(data.thread),
            bull.id,
          )
        )
          await this.#wake(bull.id);
        continue;
      }
      const claimed: Claimed = {
        bull,
        token,
        owner,
        thread: data.thread,
        timer: setInterval(() => void this.#renew(claimed), leaseMs / 3),
        lease: new AbortController(),
        expiry: undefined,
      };
      claimed.timer.unref();
      this.#hold(claimed, sentAt);
      // The earlier claim's lease ran out in Redis before its timer here said so (a busy event
      // loop): its run must stop writing before this one starts.
      const earlier = this.#claimed.get(bull.id);
      if (earlier) this.#lose(earlier, "its lease ran out and the job was claimed again");
      this.#claimed.set(bull.id, claimed);
      return {
        ...data,
        acceptedAt: bull.timestamp,
        attempts: attempt,
        ...(spent > 0 ? { spentTokens: spent } : {}),
        lease: claimed.lease.signal,
      };
    }
  }

  async complete(id: string): Promise<void> {
    await this.#finish(id, "done", async (claimed) => {
      await claimed.bull.moveToCompleted(undefined, claimed.token, false);
    });
  }

  async spend(id: string, tokens: number): Promise<void> {
    if (!(tokens > 0)) return;
    await this.#redis.talosSpend(
      this.#spentKey(),
      this.#doneKey(id),
      this.#parkedKey(id),
      id,
      Math.ceil(tokens),
    );
  }

  async fail(id: string, error: string, retryAt: number | undefined): Promise<void> {
    const message = error.slice(0, MAX_ERROR);
    if (retryAt === undefined)
      await this.#finish(
        id,
        "parked",
        async (claimed) => {
          await claimed.bull.moveToFailed(new Error(message), claimed.token, false);
        },
        message,
      );
    else
      await this.#finish(id, "retry", async (claimed) => {
        await claimed.bull.moveToDelayed(retryAt, claimed.token);
      });
  }

  async retryParked(id: string): Promise<boolean> {
    const bull = await this.#queue.getJob(id);
    if (!bull || !(await bull.isFailed())) return false;
    // The mark goes first: a job waiting with it would be taken for parked again at its claim
    // (-4). Its attempts and tokens went with its park; the claim puts it back in its thread.
    await this.#redis.del(this.#parkedKey(id));
    await bull.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  }

  /** Other instances' jobs and retries due are found by looking again this often. */
  nextRetryAt(): number | undefined {
    return this.#closed ? undefined : this.#options.clock.now() + POLL_MS;
  }

  async count(): Promise<number> {
    const counts = await this.#queue.getJobCounts("wait", "active", "delayed", "prioritized");
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  async snapshot(): Promise<QueueSnapshot> {
    const toJob = (bull: BullJob, parked?: string): Job => ({
      ...(bull.data as NewJob),
      acceptedAt: bull.timestamp,
      attempts: bull.attemptsStarted,
      ...(parked === undefined ? {} : { parked: { at: bull.finishedOn ?? 0, error: parked } }),
    });
    const live = await this.#queue.getJobs(["active", "wait", "delayed", "prioritized"]);
    const failed = await this.#queue.getJobs(["failed"]);
    const refused = (await this.#redis.lrange(`${this.#options.prefix}:refused`, 0, -1)).map(
      (line) => JSON.parse(line) as RefusedJob,
    );
    return {
      jobs: [
        ...live.map((bull) => toJob(bull)),
        ...failed.map((bull) => toJob(bull, bull.failedReason)),
      ].sort((a, b) => a.acceptedAt - b.acceptedAt),
      refused,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Jobs still held (a shutdown's grace ran out) go back to wait for another instance now,
    // rather than when their lease would run out. Their runs may go on until the process ends:
    // their writes are refused first, as another instance may take the jobs within a second.
    await Promise.allSettled(
      [...this.#claimed.values()].map(async (claimed) => {
        this.#lose(claimed, "this instance is stopping and handed the job back");
        await this.#release(claimed, "retry", async () => {
          await claimed.bull.moveToDelayed(this.#options.clock.now(), claimed.token);
        });
      }),
    );
    await this.#worker.close(true).catch(() => undefined);
    await this.#queue.close().catch(() => undefined);
    for (const client of this.#connections) client.disconnect();
  }

  async #finish(
    id: string,
    outcome: "done" | "parked" | "retry",
    move: (claimed: Claimed) => Promise<void>,
    error?: string,
  ): Promise<void> {
    // Only the job's live claim is kept: a lost one left at its loss (see #lose), and whoever
    // holds the job now (another instance, or a later claim here) finishes it.
    const claimed = this.#claimed.get(id);
    if (!claimed) return;
    this.#forget(claimed);
    await this.#release(claimed, outcome, move, error);
  }

  async #release(
    claimed: Claimed,
    outcome: "done" | "parked" | "retry",
    move: (claimed: Claimed) => Promise<void>,
    error = "",
  ): Promise<void> {
    const id = claimed.bull.id!;
    // Recorded before the queue is told: a crash between the two finds the job finished (-3, -4).
    const next = await this.#redis.talosRelease(
      this.#threadKey(claimed.thread),
      this.#leaseKey(claimed.thread),
      `${this.#options.prefix}:attempts`,
      this.#doneKey(id),
      this.#parkedKey(id),
      this.#spentKey(),
      id,
      claimed.owner,
      outcome,
      this.#options.retentionMs,
      error,
    );
    await move(claimed);
    // The thread's next job was put aside until its turn: its turn is now.
    if (next && next !== id) await this.#wake(next);
  }

  /** Stops renewing a claim, and drops it from the live ones if it is still there. */
  #forget(claimed: Claimed): void {
    if (this.#claimed.get(claimed.bull.id!) === claimed) this.#claimed.delete(claimed.bull.id!);
    clearInterval(claimed.timer);
    clearTimeout(claimed.expiry);
  }

  async #wake(id: string): Promise<void> {
    try {
      const job = await this.#queue.getJob(id);
      if (job && (await job.isDelayed())) await job.promote();
    } catch {
      // Taken meanwhile, or no longer delayed: either way it is on its way.
    }
  }

  async #renew(claimed: Claimed): Promise<void> {
    const { bull, token, owner, thread, lease } = claimed;
    const { leaseMs, clock, log } = this.#options;
    if (lease.signal.aborted) return;
    const sentAt = clock.now();
    try {
      const locked = await bull.extendLock(token, leaseMs);
      const leased = await this.#redis.talosRenew(this.#leaseKey(thread), owner, leaseMs);
      // Finished or lost meanwhile: nothing is held any more.
      if (this.#claimed.get(bull.id!) !== claimed) return;
      if (locked !== 1 || leased !== 1)
        return this.#lose(claimed, "its lease ran out and another instance may hold it");
      this.#hold(claimed, sentAt);
    } catch (error) {
      log.warn(
        { err: error, delivery: bull.id },
        "job lease not renewed: if Redis stays away until the lease runs out (TALOS_JOB_LEASE_MS), the job's GitHub writes stop and another instance runs it",
      );
    }
  }

  /**
   * The lease holds until `sentAt` + the lease, as Redis counts it; the job stops writing a
   * margin before that, for a request already on its way and the clocks' drift. A lease shorter
   * than four margins (tests use them) keeps a quarter of itself instead.
   */
  #hold(claimed: Claimed, sentAt: number): void {
    const { leaseMs, clock } = this.#options;
    const margin = Math.min(leaseMs / 4, LEASE_MARGIN_MS);
    clearTimeout(claimed.expiry);
    claimed.expiry = setTimeout(
      () => this.#lose(claimed, "its lease was not renewed in time"),
      Math.max(0, sentAt + leaseMs - margin - clock.now()),
    );
    claimed.expiry.unref();
  }

  #lose(claimed: Claimed, why: string): void {
    if (claimed.lease.signal.aborted) return;
    // A lost claim has nothing left to finish: a later claim of its job, here, is another run's.
    this.#forget(claimed);
    this.#options.log.warn(
      { delivery: claimed.bull.id },
      `job lease lost (${why}): its GitHub writes are refused from now on, and another instance runs it`,
    );
    claimed.lease.abort(
      new JobLeaseLostError(
        `delivery ${claimed.bull.id}: this instance lost the job's lease (${why})`,
      ),
    );
  }

  async #refuse(job: NewJob, reason: "queue-full" | "stopping"): Promise<EnqueueResult> {
    const refused: RefusedJob = {
      id: job.id,
      event: job.event,
      repository: job.repository,
      reason,
      at: this.#options.clock.now(),
    };
    if (!this.#closed) {
      const key = `${this.#options.prefix}:refused`;
      await this.#redis
        .multi()
        .lpush(key, JSON.stringify(refused))
        .ltrim(key, 0, MAX_REFUSED - 1)
        .exec();
    }
    return { status: "refused", reason };
  }

  /** Model tokens spent by each job's runs so far, by job id (see `JobQueue.spend`). */
  #spentKey(): string {
    return `${this.#options.prefix}:spent`;
  }

  #threadKey(thread: string): string {
    return `${this.#options.prefix}:thread:${thread}`;
  }

  #leaseKey(thread: string): string {
    return `${this.#options.prefix}:lease:${thread}`;
  }

  #doneKey(id: string): string {
    return `${this.#options.prefix}:done:${id}`;
  }

  /** A parked job's error, kept as long as `done` is. */
  #parkedKey(id: string): string {
    return `${this.#options.prefix}:parked:${id}`;
  }

  #acceptedKey(id: string): string {
    return `${this.#options.prefix}:accepted:${id}`;
  }

  #logOutage(error: Error): void {
    // ioredis reports each failed reconnection; one line per outage is enough.
    if (this.#outageLogged) return;
    this.#outageLogged = true;
    this.#options.log.error(
      { err: error },
      "Redis unreachable: new deliveries are refused with 503 until it answers",
    );
    this.#redis.once("ready", () => {
      this.#outageLogged = false;
      this.#options.log.info("Redis answers again: deliveries are accepted");
    });
  }
}

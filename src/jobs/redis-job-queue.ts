import { randomUUID } from "node:crypto";
import { Queue, Worker, type Job as BullJob } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import {
  installationShareOf,
  MAX_RETRY_WAIT_MS,
  type EnqueueResult,
  type Job,
  type JobQueue,
  type NewJob,
  type QueueSnapshot,
  type RefusalReason,
  type RefusedJob,
} from "./job-queue.js";

export interface RedisJobQueueOptions {
  /** `REDIS_URL`. */
  url: string;
  /** Prefix of every key (`TALOS_REDIS_PREFIX`): instances sharing one prefix share the queue. */
  prefix: string;
  /** Jobs waiting, running or delayed; more are refused. */
  maxQueued: number;
  /** The part of it one installation's jobs may take (0 to 1; 1 when absent): see RESERVE. */
  installationShare?: number | undefined;
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
  /** The delivery id, by which the runner names the job (the BullMQ job's id may differ). */
  id: string;
  bull: BullJob;
  token: string;
  /** The thread lease's holder: this claim's own, so that no other claim passes for it. */
  owner: string;
  thread: string;
  installation: number | undefined;
  timer: NodeJS.Timeout;
  /** Aborted once this instance cannot be sure it still holds the job (see `Job.lease`). */
  lease: AbortController;
  /** Fires when the lease, as last renewed, is about to run out. */
  expiry: NodeJS.Timeout | undefined;
  /**
   * Runs the job has started, this one included (Talos's count, not BullMQ's claims), less those
   * GitHub refused for a rate limit.
   */
  attempts: number;
}

/** A job's lease ran out, or another instance took it: its writes are refused from then on. */
export class JobLeaseLostError extends Error {
  override name = "JobLeaseLostError";
}

// Only the head of a thread's list may run, and only while it holds the thread's lease: jobs
// of one issue run one at a time, in arrival order, whichever instance holds them. Heads whose
// job is gone or finished (a crash between two writes, a redelivery of a finished job that
// joined again, or one BullMQ has finished whose marks are gone) are dropped; a job missing from its thread's list (a crash between the add and
// JOIN) joins its end, and its installation's share (see RESERVE). A lease still held is never taken over, even by the instance holding it:
// the run of an earlier claim may still be writing.
//
// A job whose retry time (recorded with its failure, see RELEASE) has not come is put back to
// wait until then, however it came back: BullMQ's delay is set only after the failure is recorded,
// and an error or a crash between the two left the job to run again as soon as its lock ran out.
// Returns the attempt number with the tokens the job's runs have spent so far, the steps they
// finished (newline-separated) and the runs GitHub refused for a rate limit, or -1 (not the thread's turn), -2 (the thread is held), -3 (done
// already: a crash came between recording it and telling the queue), -4 (parked already, alike),
// or -5 with the retry time. A retry time further off than any retry waits (MAX_RETRY_WAIT_MS)
// was set by a clock since stepped back, or another instance's ahead: it is due, as in the
// journal, rather than holding the job and every later one of its thread for the difference.
const CLAIM = `
local list, lease, attempts, spent, retryAt, steps, share, limited = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local id, owner, ms, jobPrefix, donePrefix, parkedPrefix, now, maxWait = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if redis.call('EXISTS', donePrefix .. id) == 1 then return -3 end
if redis.call('EXISTS', parkedPrefix .. id) == 1 then return -4 end
local at = tonumber(redis.call('HGET', retryAt, id) or '0')
if at > tonumber(now) and at <= tonumber(now) + tonumber(maxWait) then return {-5, at} end
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
if not redis.call('LPOS', list, id) then
  redis.call('RPUSH', list, id)
  redis.call('ZADD', share, 'inf', id)
end
if redis.call('LINDEX', list, 0) ~= id then return -1 end
if redis.call('EXISTS', lease) == 1 then return -2 end
redis.call('SET', lease, owner, 'PX', ms)
redis.call('HDEL', retryAt, id)
return {redis.call('HINCRBY', attempts, id, 1), tonumber(redis.call('HGET', spent, id) or '0'),
  redis.call('HGET', steps, id) or '', tonumber(redis.call('HGET', limited, id) or '0')}
`;

// Ends a claim: the lease goes if it is still this claim's; a finished job (done, or parked)
// leaves its thread and is remembered for the retention time, a parked one with its error; a job
// to retry keeps its retry time (empty: at once), which its claims wait for. Its place in its
// installation's share (see RESERVE) goes with it when done; parked, it holds it as long as it
// counts against the bound. A run GitHub refused for a rate limit (ARGV[7]) gives back the attempt
// its claim counted, and is counted apart.
//
// A claim whose thread another claim holds records nothing (-1): its lease ran out in Redis before
// its instance's timer said so (a paused process, an event loop stalled past the margin), and the
// job is another run's now. Its end had been recorded over that run's: the job finished or
// parked, out of its thread, while the run holding it went on, or an attempt that run's claim
// counted given back. A lease gone with no holder is still this claim's end to record: the job
// ran whole, and a later claim finds it finished rather than running it again.
// Returns the thread's next job.
const RELEASE = `
local list, lease, attempts, done, parked, spent, retryAt, steps, share, limited = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local id, owner, outcome, retention, error, at, rateLimited = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local holder = redis.call('GET', lease)
if holder and holder ~= owner then return -1 end
if holder then redis.call('DEL', lease) end
if outcome == 'retry' then
  if at ~= '' then redis.call('HSET', retryAt, id, at) end
  if rateLimited == '1' and tonumber(redis.call('HGET', attempts, id) or '0') > 0 then
    redis.call('HINCRBY', attempts, id, -1)
    redis.call('HINCRBY', limited, id, 1)
  end
else
  redis.call('LREM', list, 1, id)
  redis.call('HDEL', attempts, id)
  redis.call('HDEL', limited, id)
  redis.call('HDEL', spent, id)
  redis.call('HDEL', retryAt, id)
  redis.call('HDEL', steps, id)
end
if outcome == 'done' then
  redis.call('SET', done, '1', 'PX', retention)
  redis.call('ZREM', share, id)
end
if outcome == 'parked' then
  redis.call('SET', parked, error, 'PX', retention)
  local time = redis.call('TIME')
  redis.call('ZADD', share, tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(retention), id)
end
return redis.call('LINDEX', list, 0)
`;

// A job joins its thread's list when it is accepted: the thread's order is the order in which
// instances acknowledged its deliveries. A finished job does not join again (a redelivery that
// came after the enqueue's own check): it would hold its thread's head. A job joining holds its
// place in its installation's share (see RESERVE) until it ends.
const JOIN = `
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[4], 'inf', ARGV[1])
return 1
`;

// Adds to the model tokens a job has spent, unless it has finished (a late charge of a run that
// lost its lease would otherwise leave its count behind for good).
const SPEND = `
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
`;

// Adds a step the job's run finished to those recorded (newline-separated), unless the job has
// finished, as SPEND does.
const STEP = `
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return 0 end
local kept = redis.call('HGET', KEYS[1], ARGV[1]) or ''
for step in string.gmatch(kept, '[^\\n]+') do
  if step == ARGV[2] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], kept == '' and ARGV[2] or (kept .. '\\n' .. ARGV[2]))
return 1
`;

// Whether a job put aside may run now: it heads its thread, and no one holds the thread.
const TURN = `
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
return 0
`;

// Ends an enqueue's reservation (see RESERVE): its place under the bound, and the place in its
// installation's share it took (ARGV[3], the score RESERVE gave it; empty when it took none),
// unless that place is another's by now: the job's own once it joined (or a parked copy's). An
// add that failed gives it back at once, not when the reservation would expire; a job added
// whose join failed (Redis gone between the two) keeps it, for as long as it lives.
const UNRESERVE = `
redis.call('ZREM', KEYS[1], ARGV[1])
local mine = tonumber(ARGV[3])
if mine and tonumber(redis.call('ZSCORE', KEYS[2], ARGV[2]) or '-1') == mine then
  local job = ARGV[4] .. ARGV[2]
  if redis.call('EXISTS', job) == 1 and redis.call('HEXISTS', job, 'finishedOn') == 0 then
    redis.call('ZADD', KEYS[2], 'inf', ARGV[2])
  else
    redis.call('ZREM', KEYS[2], ARGV[2])
  end
end
return 1
`;

// A reservation is its enqueue's token (a UUID, this long) followed by its job's id.
const RESERVATION_TOKEN_LENGTH = 36;

// How long a command may wait for Redis's answer: its scripts take milliseconds.
const COMMAND_TIMEOUT_MS = 5_000;

// Renews a claim: the job's BullMQ lock (as BullMQ's own extendLock does: the lock, and the job
// out of the stalled set) and its thread's lease, both or neither. Renewing one of them after the
// other was lost kept a job no one ran from running elsewhere for another lease: a thread whose
// job BullMQ had handed back was held, or a job whose thread was taken over stayed locked.
const RENEW = `
local lock, stalled, lease = KEYS[1], KEYS[2], KEYS[3]
local token, ms, id, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('GET', lock) ~= token or redis.call('GET', lease) ~= owner then return 0 end
redis.call('SET', lock, token, 'PX', ms)
redis.call('SREM', stalled, id)
redis.call('PEXPIRE', lease, ms)
return 1
`;

// Takes a place under the bound (TALOS_JOB_QUEUE_MAX) for a job about to be added, in one step
// with the count: a count and an add apart let deliveries received at once, by several instances
// or one, each find the last place free. A reservation stands until its add is done (then the job
// counts itself) or, should its instance die in between, until it expires. A job the queue holds
// already takes no place (a copy of its delivery). A delivery being added elsewhere right now is
// waited for (-1): its add may be removing a finished job of the same id to add it anew. Parked
// jobs count until their retention ends, as in the local journal: their payloads stay in Redis
// that long, and a flood of them would otherwise grow it without bound (BullMQ's failed set is
// scored by when each was parked, and trimmed of older ones only at the next park).
//
// An installation's share of the bound (TALOS_JOB_QUEUE_INSTALLATION_SHARE) is a sorted set of
// its jobs, each scored by when it stops counting: a reservation's expiry, then (JOIN) never
// while it lives, then (RELEASE) its parked retention's end, or gone once done. A member that
// would never expire yet whose job is gone (removed by hand, say) is dropped when the share looks
// full, before refusing, at most once in PRUNE_MS (a flood refused for its share would otherwise
// have Redis look at every member for each delivery). An installation holding nothing is never
// refused for its share. Jobs queued before shares existed join theirs when next claimed.
// Returns 0 (the queue is full), -1 (being added elsewhere), -2 (the installation's share is
// full), or a positive number once reserved: the score of the place it took in the share, for
// UNRESERVE, or 1 when it took none (a copy of a job the queue holds).
const RESERVE = `
local reserved, wait, active, delayed, prioritized, failed, share = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local member, id, bound, ms, jobPrefix, retention, shareBound, pruneMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', reserved, '-inf', now)
local function live(job)
  local key = jobPrefix .. job
  return redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'finishedOn') == 0
end
local pending, count = {}, 0
for _, other in ipairs(redis.call('ZRANGE', reserved, 0, -1)) do
  local job = string.sub(other, ${RESERVATION_TOKEN_LENGTH + 1})
  if job == id then return -1 end
  if not pending[job] and not live(job) then
    pending[job] = true
    count = count + 1
  end
end
if not live(id) then
  count = count + redis.call('LLEN', wait) + redis.call('LLEN', active)
    + redis.call('ZCARD', delayed) + redis.call('ZCARD', prioritized)
    + redis.call('ZCOUNT', failed, now - retention, '+inf')
  if count >= bound then return 0 end
  redis.call('ZREMRANGEBYSCORE', share, '-inf', now)
  local held = redis.call('ZSCORE', share, id)
  if not held and redis.call('ZCARD', share) >= shareBound then
    if redis.call('SET', share .. ':pruned', '1', 'NX', 'PX', pruneMs) then
      for _, job in ipairs(redis.call('ZRANGEBYSCORE', share, 'inf', 'inf')) do
        if not live(job) then redis.call('ZREM', share, job) end
      end
    end
    if redis.call('ZCARD', share) >= shareBound then return -2 end
  end
  if (not held) or tonumber(held) < now + ms then
    redis.call('ZADD', reserved, now + ms, member)
    redis.call('ZADD', share, now + ms, id)
    return now + ms
  end
end
redis.call('ZADD', reserved, now + ms, member)
return 1
`;

type Scripts = Redis & {
  talosClaim(...args: Array<string | number>): Promise<number | [number, number, string?, number?]>;
  /** The thread's next job, or -1 when another claim holds the thread (see RELEASE). */
  talosRelease(...args: Array<string | number>): Promise<string | null | -1>;
  talosRenew(...args: Array<string | number>): Promise<number>;
  talosReserve(...args: Array<string | number>): Promise<number>;
  talosJoin(...args: Array<string | number>): Promise<number>;
  talosUnreserve(...args: Array<string | number>): Promise<number>;
  talosTurn(...args: Array<string | number>): Promise<number>;
  talosSpend(...args: Array<string | number>): Promise<number>;
  talosStep(...args: Array<string | number>): Promise<number>;
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
// A reservation (see RESERVE) outlives the few commands of its enqueue, however slow; it only
// matters when its instance dies before its add, and then holds a place, and keeps a copy of its
// delivery waiting, this long at most. A copy received meanwhile looks again this often.
const RESERVATION_MS = 30_000;
// A full share is looked over for members whose job is gone at most this often (see RESERVE).
const PRUNE_MS = 10_000;
const RESERVED_ELSEWHERE_MS = 50;

// What escapes a delivery id that BullMQ cannot take as a job id (see jobIdOf).
const ESCAPE = "~";

/**
 * The BullMQ job id of a delivery, used for it in every key of this file too. A delivery id is
 * its own job id where BullMQ can take it as one: not an integer (BullMQ refuses those, its own
 * ids are), without `:` (its keys' separator; it refuses those too, unless there are two), not the
 * name of one of the queue's own keys (a delivery `meta` was accepted and never run, `events`
 * answered 500), and not empty (BullMQ then makes up an id, and the job's end was never
 * recorded). GitHub's GUIDs and `talos replay`'s ids are such: nothing stored for them changes.
 * Every other id is escaped, one to one: `~`, which no id kept as it is starts with, then the id
 * with `%` as `%25`, `:` as `%3A` and each UTF-16 surrogate as `%uXXXX` (Redis keeps text as
 * UTF-8, where a lone one is lost).
 */
function jobIdOf(delivery: string, reserved: ReadonlySet<string>): string {
  if (
    delivery !== "" &&
    !delivery.startsWith(ESCAPE) &&
    !/[:\uD800-\uDFFF]/.test(delivery) &&
    // BullMQ's own test (Job#validateOptions).
    `${parseInt(delivery, 10)}` !== delivery &&
    !reserved.has(delivery)
  )
    return delivery;
  return (
    ESCAPE +
    delivery.replace(/[%:\uD800-\uDFFF]/g, (c) =>
      c === "%" ? "%25" : c === ":" ? "%3A" : `%u${c.charCodeAt(0).toString(16).toUpperCase()}`,
    )
  );
}

/**
 * The job id a delivery had before jobIdOf, where BullMQ took it then and it is another now, and
 * where it can be told from every job id of now: one with two `:` (BullMQ's allowance for its old
 * repeatable jobs); no job id holds a `:` now. (An id starting with `~` cannot be told from an
 * escaped one; only a hand-made header carries one.)
 */
function legacyJobIdOf(delivery: string): string | undefined {
  return delivery.split(":").length === 3 ? delivery : undefined;
}

/**
 * The job queue shared by every instance through Redis (`REDIS_URL`), on BullMQ: the delivery id
 * is the job id (escaped where BullMQ cannot take it, see jobIdOf), so a delivery received by any
 * number of instances is one job; a job whose instance died is found stalled when its lock
 * expires and runs elsewhere; every instance is a worker. Jobs of one thread run one at a time,
 * in arrival order, under a lease on the thread renewed while the job runs. Claims use BullMQ's
 * manual processing (`getNextJob`), so that the job runner is the same as with the embedded
 * journal.
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
  /** The queue's own keys' names, which no job id may take. */
  readonly #reservedIds: ReadonlySet<string>;
  #closed = false;
  #outageLogged = false;
  /** Says why a connection failed (ioredis's own rejection only says it closed). */
  #lastError: Error | undefined;

  private constructor(options: RedisJobQueueOptions) {
    // Redis takes whole milliseconds only (`PX`): TALOS_LEDGER_RETENTION_HOURS=1.1 is not.
    this.#options = { ...options, retentionMs: Math.max(1, Math.ceil(options.retentionMs)) };
    // BullMQ leaves connections it is given open at its close: these are closed here.
    const connection = (extra: RedisOptions) => {
      const client = new Redis(options.url, {
        maxRetriesPerRequest: null,
        lazyConnect: false,
        // A Redis that took a command and does not answer (a partition with no reset, a stuck
        // server) fails it, as a budget's does: a delivery's enqueue had hung, its webhook
        // request and socket held open, and the runner's claims with it (found by a review).
        // None of these commands blocks (jobs are taken with `block: false`).
        commandTimeout: COMMAND_TIMEOUT_MS,
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
    this.#redis.defineCommand("talosClaim", { numberOfKeys: 8, lua: CLAIM });
    this.#redis.defineCommand("talosRelease", { numberOfKeys: 10, lua: RELEASE });
    this.#redis.defineCommand("talosRenew", { numberOfKeys: 3, lua: RENEW });
    this.#redis.defineCommand("talosReserve", { numberOfKeys: 7, lua: RESERVE });
    this.#redis.defineCommand("talosJoin", { numberOfKeys: 4, lua: JOIN });
    this.#redis.defineCommand("talosUnreserve", { numberOfKeys: 2, lua: UNRESERVE });
    this.#redis.defineCommand("talosTurn", { numberOfKeys: 2, lua: TURN });
    this.#redis.defineCommand("talosSpend", { numberOfKeys: 3, lua: SPEND });
    this.#redis.defineCommand("talosStep", { numberOfKeys: 3, lua: STEP });
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
    this.#reservedIds = new Set(Object.keys(this.#queue.keys));
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
    const keys = this.#storedIds(id).flatMap((jobId) => [
      this.#doneKey(jobId),
      this.#parkedKey(jobId),
      this.#acceptedKey(jobId),
    ]);
    return (await this.#redis.exists(...keys)) > 0;
  }

  async enqueue(job: NewJob): Promise<EnqueueResult> {
    const { maxQueued, installationShare = 1 } = this.#options;
    const id = this.#jobId(job.id);
    const reservation = `${randomUUID()}${id}`;
    // The place its reservation took in its installation's share, if any (see RESERVE).
    let place = "";
    for (;;) {
      if (this.#closed) return this.#refuse(job, "stopping");
      // A parked delivery counts as finished too: GitHub's "Redeliver" on it, or a slower
      // instance's copy of it, would otherwise put it back at its thread's head for good.
      if (await this.#isDuplicate(job.id)) return { status: "duplicate" };
      const reserved = await this.#redis.talosReserve(
        this.#reservationsKey(),
        this.#queue.toKey("wait"),
        this.#queue.toKey("active"),
        this.#queue.toKey("delayed"),
        this.#queue.toKey("prioritized"),
        this.#queue.toKey("failed"),
        this.#shareKey(job.installation),
        reservation,
        id,
        maxQueued,
        RESERVATION_MS,
        this.#queue.toKey(""),
        this.#options.retentionMs,
        installationShareOf(maxQueued, installationShare),
        PRUNE_MS,
      );
      if (reserved > 0) {
        place = reserved === 1 ? "" : String(reserved);
        break;
      }
      if (reserved === 0) return this.#refuse(job, "queue-full");
      if (reserved === -2) return this.#refuse(job, "installation-full");
      await this.#options.clock.sleep(RESERVED_ELSEWHERE_MS);
    }
    try {
      return await this.#add(job, id);
    } finally {
      // Left behind (Redis gone meanwhile), it expires; the job, added, no longer counts it.
      await this.#redis
        .talosUnreserve(
          this.#reservationsKey(),
          this.#shareKey(job.installation),
          reservation,
          id,
          place,
          this.#queue.toKey(""),
        )
        .catch(() => undefined);
    }
  }

  /** Adds a job under its reservation (see RESERVE): no copy of its delivery is added meanwhile. */
  async #add(job: NewJob, id: string): Promise<EnqueueResult> {
    const { retentionMs } = this.#options;
    // Past the retention its `done:` or `parked:` mark is gone, and the delivery is a new one (as
    // in the local journal): GitHub's "Redeliver" of a job parked the day before, say. BullMQ may
    // still hold the finished job (it removes old ones only as others finish), and then the add
    // did nothing: accepted, never run, and heading its thread for good. The reservation keeps
    // copies of the delivery from being added meanwhile: the job removed is the finished one
    // looked at, never a copy another instance has just accepted (and would have lost, had this
    // instance died before its own add).
    const state = await this.#queue.getJobState(id);
    if (state === "completed" || state === "failed") await this.#queue.remove(id);
    // Idempotent: an id the queue holds is not added again, whoever adds it.
    await this.#queue.add(job.kind, job, {
      jobId: id,
      attempts: 1,
      removeOnComplete: { age: 3_600 },
      removeOnFail: { age: Math.ceil(retentionMs / 1_000) },
    });
    await this.#redis.talosJoin(
      this.#threadKey(job.thread),
      this.#doneKey(id),
      this.#parkedKey(id),
      this.#shareKey(job.installation),
      id,
    );
    // The first instance to get here after its add acknowledges it as accepted; the others as a
    // duplicate. A crash between the add and this leaves the job queued (and the claim puts it in
    // its thread): a redelivery says so.
    const first = await this.#redis.set(
      this.#acceptedKey(id),
      this.#instance,
      "PX",
      retentionMs,
      "NX",
    );
    return first === "OK" ? { status: "accepted" } : { status: "duplicate" };
  }

  /**
   * Whether the delivery is done or parked, or known at all under the job id it had before
   * jobIdOf (see legacyJobIdOf): such a job is kept under that id until it ends, as its claims
   * use the id BullMQ holds.
   */
  async #isDuplicate(delivery: string): Promise<boolean> {
    const id = this.#jobId(delivery);
    const legacy = legacyJobIdOf(delivery);
    const keys = [this.#doneKey(id), this.#parkedKey(id)];
    if (legacy !== undefined && legacy !== id)
      keys.push(this.#doneKey(legacy), this.#parkedKey(legacy), this.#acceptedKey(legacy));
    return (await this.#redis.exists(...keys)) > 0;
  }

  async claimNext(): Promise<Job | undefined> {
    const { prefix, leaseMs } = this.#options;
    for (;;) {
      if (this.#closed) return undefined;
      const token = randomUUID();
      const bull = (await this.#worker.getNextJob(token, { block: false })) as BullJob | undefined;
      if (!bull?.id) return undefined;
      // Without the runs a park recorded (see fail): a job retried by hand starts afresh.
      const { data } = jobData(bull);
      const owner = `${this.#instance}:${token}`;
      // The lease runs from when the claim was sent, not from when its answer came.
      const sentAt = this.#options.clock.now();
      const claim = await this.#redis.talosClaim(
        this.#threadKey(data.thread),
        this.#leaseKey(data.thread),
        `${prefix}:attempts`,
        // Kept beside the attempts, whichever instance ran them: a retry here starts from them.
        this.#spentKey(),
        this.#retryAtKey(),
        this.#stepsKey(),
        this.#shareKey(data.installation),
        this.#rateLimitedKey(),
        bull.id,
        owner,
        leaseMs,
        `${prefix}:jobs:`,
        `${prefix}:done:`,
        `${prefix}:parked:`,
        // BullMQ's time, not the clock's: BullMQ delays a job, and finds it due, by the process's
        // own (Job#moveToDelayed). A retry it deems due and this found early would be put back,
        // due at once, and taken again, over and over, until the two agreed.
        Date.now(),
        MAX_RETRY_WAIT_MS,
      );
      const [attempt, spent, steps = "", rateLimited = 0] =
        typeof claim === "number" ? [claim, 0] : claim;
      if (attempt === -5) {
        // Its retry's time (the claim's second value then) has not come: back to wait until then.
        const retryAt = spent;
        await bull.moveToDelayed(retryAt, token);
        continue;
      }
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
        id: data.id,
        bull,
        token,
        owner,
        thread: data.thread,
        installation: data.installation,
        timer: setInterval(() => void this.#renew(claimed), leaseMs / 3),
        lease: new AbortController(),
        expiry: undefined,
        attempts: attempt,
      };
      claimed.timer.unref();
      this.#hold(claimed, sentAt);
      // The earlier claim's lease ran out in Redis before its timer here said so (a busy event
      // loop): its run must stop writing before this one starts.
      const earlier = this.#claimed.get(data.id);
      if (earlier) this.#lose(earlier, "its lease ran out and the job was claimed again");
      this.#claimed.set(data.id, claimed);
      return {
        ...data,
        acceptedAt: bull.timestamp,
        attempts: attempt,
        ...(spent > 0 ? { spentTokens: spent } : {}),
        ...(steps ? { stepsDone: steps.split("\n") } : {}),
        ...(rateLimited > 0 ? { rateLimitedRuns: rateLimited } : {}),
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
    await this.#addToJob("talosSpend", this.#spentKey(), id, Math.ceil(tokens));
  }

  async stepDone(id: string, step: string): Promise<void> {
    await this.#addToJob("talosStep", this.#stepsKey(), id, step.replace(/\n/g, " ").slice(0, 100));
  }

  /** Adds to what a job's runs recorded in `hash` (SPEND, STEP), unless the job has finished. */
  async #addToJob(
    script: "talosSpend" | "talosStep",
    hash: string,
    id: string,
    value: string | number,
  ): Promise<void> {
    const jobId = this.#claimed.get(id)?.bull.id ?? (await this.#storedId(id));
    if (jobId === undefined) return;
    await this.#redis[script](hash, this.#doneKey(jobId), this.#parkedKey(jobId), jobId, value);
  }

  async fail(
    id: string,
    error: string,
    asked: number | undefined,
    rateLimited = false,
  ): Promise<void> {
    const message = error.slice(0, MAX_ERROR);
    // Further off than any retry waits: set by a clock since stepped back; due now (as CLAIM
    // reads it too), not held for the difference.
    const now = Date.now();
    const retryAt = asked !== undefined && asked > now + MAX_RETRY_WAIT_MS ? now : asked;
    if (retryAt === undefined)
      await this.#finish(
        id,
        "parked",
        async (claimed) => {
          // Its runs, kept with it for `talos jobs`: the count in Redis goes with the park.
          await claimed.bull.updateData({
            ...(claimed.bull.data as NewJob),
            parkedAfter: claimed.attempts,
          });
          await claimed.bull.moveToFailed(new Error(message), claimed.token, false);
        },
        message,
      );
    else
      await this.#finish(
        id,
        "retry",
        async (claimed) => {
          await claimed.bull.moveToDelayed(retryAt, claimed.token);
        },
        undefined,
        retryAt,
        rateLimited,
      );
  }

  async retryParked(id: string): Promise<boolean> {
    let bull: BullJob | undefined;
    for (const jobId of this.#storedIds(id)) bull ??= await this.#queue.getJob(jobId);
    if (!bull?.id || !(await bull.isFailed())) return false;
    // The mark goes first: a job waiting with it would be taken for parked again at its claim
    // (-4). Its attempts and tokens went with its park; the claim puts it back in its thread.
    await this.#redis
      .multi()
      .del(this.#parkedKey(bull.id))
      .zadd(this.#shareKey((bull.data as NewJob).installation), "inf", bull.id)
      .exec();
    await bull.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  }

  /** Other instances' jobs and retries due are found by looking again this often. */
  nextRetryAt(): number | undefined {
    return this.#closed ? undefined : this.#options.clock.now() + POLL_MS;
  }

  async count(): Promise<number> {
    const counts = await this.#queue.getJobCounts("wait", "active", "delayed", "prioritized");
    // Parked ones within their retention, as RESERVE counts them.
    const parked = await this.#redis.zcount(
      this.#queue.toKey("failed"),
      (await this.#retainedSince()).toString(),
      "+inf",
    );
    return Object.values(counts).reduce((sum, n) => sum + n, parked);
  }

  /** The oldest time a parked job or a refusal is kept from, by Redis's clock, as RESERVE's. */
  async #retainedSince(): Promise<number> {
    const [seconds, micros] = await this.#redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - this.#options.retentionMs;
  }

  async snapshot(): Promise<QueueSnapshot> {
    const live = await this.#queue.getJobs(["active", "wait", "delayed", "prioritized"]);
    // BullMQ drops a failed job past its age only as another one fails, and the refusals are
    // a list of the last 1,000: those past the retention, which count() and has() no longer
    // see, are not listed either (the journal forgets both).
    const since = await this.#retainedSince();
    const failed = (await this.#queue.getJobs(["failed"])).filter(
      (bull) => (bull.finishedOn ?? 0) >= since,
    );
    // Runs started, as the claims count them: BullMQ's attemptsStarted also counts each claim
    // that found a job not yet its thread's turn, or its retry not yet due.
    const ids = live.flatMap((bull) => (bull.id ? [bull.id] : []));
    const counts =
      ids.length === 0 ? [] : await this.#redis.hmget(`${this.#options.prefix}:attempts`, ...ids);
    const runs = new Map(ids.map((id, i) => [id, Number(counts[i] ?? 0)]));
    const toJob = (bull: BullJob, parked?: string): Job => {
      const { data, parkedAfter } = jobData(bull);
      return {
        ...data,
        acceptedAt: bull.timestamp,
        attempts:
          parked === undefined
            ? (runs.get(bull.id ?? "") ?? 0)
            : (parkedAfter ?? bull.attemptsStarted),
        ...(parked === undefined ? {} : { parked: { at: bull.finishedOn ?? 0, error: parked } }),
      };
    };
    const refused = (await this.#redis.lrange(`${this.#options.prefix}:refused`, 0, -1))
      .map((line) => JSON.parse(line) as RefusedJob)
      .filter((refusal) => refusal.at >= since);
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
    retryAt?: number,
    rateLimited = false,
  ): Promise<void> {
    // Only the job's live claim is kept: a lost one left at its loss (see #lose), and whoever
    // holds the job now (another instance, or a later claim here) finishes it.
    const claimed = this.#claimed.get(id);
    if (!claimed) return;
    this.#forget(claimed);
    await this.#release(claimed, outcome, move, error, retryAt, rateLimited);
  }

  async #release(
    claimed: Claimed,
    outcome: "done" | "parked" | "retry",
    move: (claimed: Claimed) => Promise<void>,
    error = "",
    retryAt?: number,
    rateLimited = false,
  ): Promise<void> {
    const id = claimed.bull.id!;
    // Recorded before the queue is told: a crash or an error between the two finds the job
    // finished (-3, -4), or waiting for its retry's time (-5).
    const next = await this.#redis.talosRelease(
      this.#threadKey(claimed.thread),
      this.#leaseKey(claimed.thread),
      `${this.#options.prefix}:attempts`,
      this.#doneKey(id),
      this.#parkedKey(id),
      this.#spentKey(),
      this.#retryAtKey(),
      this.#stepsKey(),
      this.#shareKey(claimed.installation),
      this.#rateLimitedKey(),
      id,
      claimed.owner,
      outcome,
      this.#options.retentionMs,
      error,
      retryAt ?? "",
      rateLimited ? "1" : "",
    );
    // BullMQ's job is the other claim's too: moving it would fail, or end that claim's run.
    if (next === -1) return this.#lose(claimed, "another instance took the job over");
    await move(claimed);
    // The thread's next job was put aside until its turn: its turn is now.
    if (next && next !== id) await this.#wake(next);
  }

  /** Stops renewing a claim, and drops it from the live ones if it is still there. */
  #forget(claimed: Claimed): void {
    if (this.#claimed.get(claimed.id) === claimed) this.#claimed.delete(claimed.id);
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
      const renewed = await this.#redis.talosRenew(
        `${this.#queue.toKey(bull.id!)}:lock`,
        this.#queue.toKey("stalled"),
        this.#leaseKey(thread),
        token,
        leaseMs,
        bull.id!,
        owner,
      );
      // Finished or lost meanwhile: nothing is held any more.
      if (this.#claimed.get(claimed.id) !== claimed) return;
      if (renewed !== 1)
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

  async #refuse(job: NewJob, reason: RefusalReason): Promise<EnqueueResult> {
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

  #jobId(delivery: string): string {
    return jobIdOf(delivery, this.#reservedIds);
  }

  /**
   * The id a delivery's job is stored under (its earlier id, see legacyJobIdOf, or the mapping),
   * for a run whose claim is gone (its lease lost): what it records goes with that job. Under
   * the mapping alone it went to an id no job had, which no job's end cleared, and which a later
   * job of that id (a redelivery past the retention) found as its own.
   */
  async #storedId(delivery: string): Promise<string | undefined> {
    for (const id of this.#storedIds(delivery))
      if (await this.#redis.exists(this.#queue.toKey(id))) return id;
    return undefined;
  }

  /** The job ids a delivery may be kept under: its own, and its earlier one if it has one. */
  #storedIds(delivery: string): string[] {
    const id = this.#jobId(delivery);
    const legacy = legacyJobIdOf(delivery);
    return legacy === undefined || legacy === id ? [id] : [id, legacy];
  }

  /** Places reserved under the bound by enqueues under way (see RESERVE). */
  #reservationsKey(): string {
    return `${this.#options.prefix}:reserved`;
  }

  /** When each job to retry may run again, by job id (see CLAIM). */
  #retryAtKey(): string {
    return `${this.#options.prefix}:retry-at`;
  }

  /** The steps each job's runs finished, by job id (see `JobQueue.stepDone`). */
  #stepsKey(): string {
    return `${this.#options.prefix}:steps`;
  }

  /** Runs GitHub refused for a rate limit, by job id (see `Job.rateLimitedRuns`). */
  #rateLimitedKey(): string {
    return `${this.#options.prefix}:rate-limited`;
  }

  /** Model tokens spent by each job's runs so far, by job id (see `JobQueue.spend`). */
  #spentKey(): string {
    return `${this.#options.prefix}:spent`;
  }

  /** An installation's jobs counted against its share of the bound (see RESERVE). */
  #shareKey(installation: number | undefined): string {
    return `${this.#options.prefix}:share:${installation ?? ""}`;
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

/** A job's data, and the runs its park recorded (see `fail`), kept apart. */
function jobData(bull: BullJob): { data: NewJob; parkedAfter: number | undefined } {
  const { parkedAfter, ...data } = bull.data as NewJob & { parkedAfter?: number };
  return { data, parkedAfter };
}

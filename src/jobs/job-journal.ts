import { copyFile, mkdir, open, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { removeLeftoverTemporaries, writeFileAtomically } from "../write-file-atomically.js";
import {
  installationShareOf,
  MAX_RETRY_WAIT_MS,
  type EnqueueResult,
  type Job,
  type JobQueue,
  type NewJob,
  type QueueSnapshot,
  type RefusedJob,
} from "./job-queue.js";

const NEWLINE = 0x0a;
/**
 * Crashes in a row during a job's runs before jobs run one at a time. One is a deploy's stop past
 * its grace as often as a crash: running alone after it would slow every restart.
 */
const ISOLATE_AFTER_CRASHES = 2;
const READ_CHUNK_BYTES = 1 << 20;

export interface JobJournalOptions {
  /** `$TALOS_DATA_DIR/jobs/journal.log`; none keeps the journal in memory (`talos replay`). */
  file?: string;
  /** Jobs waiting, running or parked; more are refused. */
  maxQueued: number;
  /**
   * Their payloads' JSON together, in UTF-8 bytes (see weightOf): the jobs are held in RAM, and
   * a few large payloads (GitHub sends up to 25 MB) weigh more than thousands of small ones.
   * More are refused. Unbounded when absent.
   */
  maxQueuedBytes?: number | undefined;
  /**
   * The part of each bound one installation's jobs may take (0 to 1; 1 when absent): see
   * installationShareOf. An installation holding nothing is never refused for its share.
   */
  installationShare?: number | undefined;
  /** How long a finished delivery is remembered, so that a redelivery is skipped. */
  retentionMs: number;
  /** The most finished deliveries remembered, whatever their age. */
  maxFinished: number;
  clock: Clock;
  log: Logger;
  /** Read the file and never write it (`talos jobs`, beside a running server). */
  readOnly?: boolean;
}

/** One line of the journal. */
type JournalRecord =
  | ({ op: "add" } & Job)
  | { op: "start"; id: string }
  | { op: "spend"; id: string; tokens: number }
  | { op: "step"; id: string; step: string }
  | { op: "done"; id: string; at: number }
  | { op: "fail"; id: string; error: string; retryAt: number; rateLimited?: true }
  | { op: "park"; id: string; error: string; at: number }
  | { op: "retry"; id: string; at: number }
  | ({ op: "refuse" } & RefusedJob);

// A step's name is the code's own ("triage"); bounded all the same, as every record is.
const MAX_STEP = 100;

const lineOf = (record: JournalRecord): string => `${JSON.stringify(record)}\n`;

/**
 * What an add weighs against `maxQueuedBytes`: its payload's JSON in UTF-8 bytes, as written (a
 * CJK character is one UTF-16 unit and three bytes). Read off the line written, less the same
 * record without its payload (a few hundred bytes to serialize, not the payload again): the
 * job's state, which a rewrite puts in its line (attempts, a parked job's error), weighs nothing,
 * so a job weighs the same after restarts as when accepted.
 */
function weightOf(record: JournalRecord & { op: "add" }, line = lineOf(record)): number {
  // At least nothing: a job without a payload (none is) weighs less than one with `null`.
  return Math.max(
    0,
    Buffer.byteLength(line) - Buffer.byteLength(lineOf({ ...record, payload: null })),
  );
}

/** Whose share a job takes: its installation's, or that of jobs without one (`talos replay`). */
const installationKey = (job: NewJob): string => String(job.installation ?? "");

// Delivery ids are GUIDs; records are JSON, so any string is safe in the file, but not any size.
const isDeliveryId = (id: unknown): id is string =>
  typeof id === "string" && id.length > 0 && id.length <= 200;
const MAX_REFUSED = 1_000;
const MAX_ERROR = 500;

/**
 * The embedded job queue: an append-only file of JSON lines, each batch of appends written and
 * fdatasynced together (group commit), so a job is durable before its delivery is acknowledged
 * and every attempt is counted before it runs (a start or an end is written, not synced: a
 * crash keeps it, and a power cut costs at most a repeated, idempotent run). The file is rewritten atomically, keeping only
 * live jobs and the finished ids still retained, once it has grown to twice what it holds; a
 * rewrite that fails (a full disk) leaves the old file in use, and is tried again later.
 */
export class JobJournal implements JobQueue {
  readonly shared = false;
  readonly #options: JobJournalOptions;
  /** Waiting, running and parked jobs, in arrival order. */
  readonly #jobs = new Map<string, Job>();
  /** Each held job's size (see `maxQueuedBytes`), and their sum. */
  readonly #heldBytes = new Map<string, number>();
  #queuedBytes = 0;
  /** Held jobs and their sizes, by installation (see `installationShare`). */
  readonly #byInstallation = new Map<string, { jobs: number; bytes: number }>();
  /** Finished delivery ids, by finish time (oldest first). */
  readonly #finished = new Map<string, number>();
  readonly #refused: RefusedJob[] = [];
  /** Running jobs' threads, by job id: a thread is freed by the id even if its job is gone. */
  readonly #running = new Map<string, string>();
  readonly #busyThreads = new Set<string>();
  /** Jobs whose `add` is not durable yet: not accepted, so not to be run. */
  readonly #accepting = new Map<string, Promise<void>>();
  #handle: FileHandle | undefined;
  #linesInFile = 0;
  /** Bytes of whole records in the file: a failed append is cut back to this. */
  #bytesInFile = 0;
  /**
   * Appending to the handle is unsafe: the file may end in part of a record, or a rewrite may
   * have replaced the file the handle holds. Only a rewrite ends this.
   */
  #torn = false;
  /** After a failed compaction, the next is tried only once the file has this many lines. */
  #compactAfter = 0;
  /** The file holds lines it could not read, not yet copied aside (see `#startWriting`). */
  #uncopiedDamage = false;
  #pending: string[] = [];
  #waiters: Waiter[] = [];
  #writing: Promise<void> | undefined;
  #closed = false;

  /** Lines of the file that could not be read when it was opened (a partly written last one aside). */
  malformedLines = 0;
  /** Where the file as it was is kept, when it had such lines and was rewritten. */
  damagedCopy: string | undefined;

  private constructor(options: JobJournalOptions) {
    this.#options = options;
  }

  static async open(options: JobJournalOptions): Promise<JobJournal> {
    const journal = new JobJournal(options);
    if (options.file) {
      if (!options.readOnly) {
        await mkdir(dirname(options.file), { recursive: true });
        // The server holds the data directory: no other process writes the journal.
        await removeLeftoverTemporaries(options.file);
      }
      const read = await readJournal(options.file, options.log);
      journal.#replay(read.records);
      journal.malformedLines = read.malformed;
      if (options.readOnly) journal.#closed = true;
      else await journal.#startWriting(options.file, read);
    }
    return journal;
  }

  /**
   * Rewrites the file as read at start, or on a disk too full for that (as a compaction that
   * fails) appends to it as it is: the start had failed, and the journaled jobs waited for
   * someone to free space by hand, while a running server in that state only logs.
   */
  async #startWriting(file: string, read: JournalRead): Promise<void> {
    const { log, clock } = this.#options;
    const before = await stat(file).catch(() => undefined);
    try {
      // The rewrite drops what could not be read: the file as it was is kept for whoever looks
      // into it (a disk fault, a hand edit, a journal of another version). Without room for the
      // copy, the file is not rewritten: it keeps those lines itself.
      if (read.malformed > 0)
        this.damagedCopy = await keepDamaged(file, read.malformed, clock, log);
      await this.#rewrite();
    } catch (error) {
      const after = await stat(file).catch(() => undefined);
      // Only the file as read, still in place, is known to end where the read found: one a
      // rewrite renamed over it (its directory's fsync failed) is not appended to blind.
      if (!before || !after || before.ino !== after.ino || before.dev !== after.dev) throw error;
      const handle = await open(file, "a");
      try {
        // A last line a crash cut short would join the next record's line, which a replay skips.
        await handle.truncate(read.wholeBytes);
      } catch (cutError) {
        await handle.close();
        throw cutError;
      }
      this.#handle = handle;
      this.#linesInFile = read.lines;
      this.#bytesInFile = read.wholeBytes;
      this.#torn = false;
      this.#compactAfter = read.lines + 1_000;
      this.#uncopiedDamage = read.malformed > 0 && this.damagedCopy === undefined;
      log.warn({ err: error, file }, "cannot rewrite the job journal at start; appending to it");
    }
  }

  async has(id: string): Promise<boolean> {
    return this.#jobs.has(id) || this.#isFinished(id);
  }

  /**
   * Finished within the retention. An older id stays in memory and in the file until the next
   * rewrite drops it, but its redelivery is a new delivery already (as with `REDIS_URL`): it had
   * stayed a duplicate until a restart or a compaction, which may not come for days.
   */
  #isFinished(id: string): boolean {
    const at = this.#finished.get(id);
    return at !== undefined && at >= this.#options.clock.now() - this.#options.retentionMs;
  }

  async enqueue(job: NewJob): Promise<EnqueueResult> {
    // A parked job past the retention is forgotten when its delivery comes again, as it would be
    // when the queue is full or at a restart: it was a duplicate only until one of those.
    const known = this.#jobs.get(job.id);
    if (this.#isExpired(known)) this.#forget(job.id, known!);
    if (this.#jobs.has(job.id) || this.#isFinished(job.id)) {
      // A copy that arrives while the first is being written is acknowledged only once it is.
      await this.#accepting.get(job.id);
      return { status: "duplicate" };
    }
    if (!isDeliveryId(job.id)) throw new Error("the delivery id is empty or too long");
    // Parked jobs count against the bound: those past the retention go first, as a restart would
    // drop them, or a server that runs for weeks fills up with them and refuses every delivery.
    const now = this.#options.clock.now();
    const record: JournalRecord = { op: "add", ...job, acceptedAt: now, attempts: 0 };
    // Serialized once: the line written is the line weighed.
    const line = lineOf(record);
    const bytes = weightOf(record, line);
    if (this.#refusalOf(job, bytes)) this.#forgetExpired();
    const reason = this.#closed ? "stopping" : this.#refusalOf(job, bytes);
    if (reason) {
      const refused = { id: job.id, event: job.event, repository: job.repository, reason };
      const refusal: JournalRecord = { op: "refuse", ...refused, at: now };
      this.#apply(refusal);
      // Only a note for `talos jobs`: a disk that cannot take it (full) must not turn the refusal,
      // which the runner counts and the sender is told, into an error.
      if (!this.#closed)
        await this.#append(refusal).catch((error: unknown) =>
          this.#options.log.warn({ err: error, delivery: job.id }, "refusal not journaled"),
        );
      return { status: "refused", reason };
    }
    this.#apply(record, bytes);
    // Not durable, so not accepted: the sender sees a failure and can deliver it again. The job is
    // dropped as the write fails, before a rewrite could snapshot it (which would make it durable
    // after all) and before a redelivery could add it again (which a later delete would drop).
    const durable = this.#append(record, true, () => this.#drop(job.id), line);
    this.#accepting.set(job.id, durable);
    try {
      await durable;
    } finally {
      // Only this copy's: one sent again while this failed write was cut back may be being
      // written now, and is not accepted (so not to run) until its own write is.
      if (this.#accepting.get(job.id) === durable) this.#accepting.delete(job.id);
    }
    return { status: "accepted" };
  }

  /** Why a job of `bytes` would be refused now, if it would be (see the bounds' options). */
  #refusalOf(job: NewJob, bytes: number): "queue-full" | "installation-full" | undefined {
    const { maxQueued, maxQueuedBytes = Infinity, installationShare = 1 } = this.#options;
    if (this.#jobs.size >= maxQueued || this.#queuedBytes + bytes > maxQueuedBytes)
      return "queue-full";
    const held = this.#byInstallation.get(installationKey(job));
    if (
      held !== undefined &&
      (held.jobs >= installationShareOf(maxQueued, installationShare) ||
        held.bytes + bytes > maxQueuedBytes * installationShare)
    )
      return "installation-full";
    return undefined;
  }

  async claimNext(): Promise<Job | undefined> {
    const now = this.#options.clock.now();
    const seen = new Set<string>();
    for (const job of this.#jobs.values()) {
      if (job.parked || seen.has(job.thread)) continue;
      // Only the first waiting job of each thread may run: arrival order within a thread.
      seen.add(job.thread);
      // A job whose add is still being written may yet fail (a full disk); run now, it would run
      // although its sender was told it failed, and again when redelivered. It keeps its place
      // in its thread; the runner looks again once it is accepted.
      if (this.#accepting.has(job.id)) continue;
      if (this.#busyThreads.has(job.thread) || dueAt(job, now) > now) continue;
      this.#running.set(job.id, job.thread);
      this.#busyThreads.add(job.thread);
      const record: JournalRecord = { op: "start", id: job.id };
      this.#apply(record);
      try {
        // Written before the job runs, so a crash (which keeps what the kernel was given) still
        // counts the attempt; not fdatasynced: only a power cut could lose it, and one attempt.
        // Taken back if the write fails: the job did not run, and the runner claims again every
        // few seconds while the disk is full, which would count up to parking a job never run.
        await this.#append(record, false, () => {
          // All that applying the start counted: an unwritten start is no attempt, nor a run a
          // crash could have cut short (two of those would run every job one at a time).
          job.attempts--;
          job.unsettledRuns = (job.unsettledRuns ?? 1) - 1 || undefined;
        });
      } catch (error) {
        this.#release(job.id);
        throw error;
      }
      return job;
    }
    return undefined;
  }

  async complete(id: string): Promise<void> {
    // Released first, whatever became of the job: a thread left busy holds up its issue's later
    // jobs until a restart.
    this.#release(id);
    const job = this.#jobs.get(id);
    if (!job) return;
    const record: JournalRecord = { op: "done", id, at: this.#options.clock.now() };
    this.#apply(record);
    // Not fdatasynced either: were a power cut to lose it, the job would run again, and its
    // writes are idempotent.
    await this.#append(record, false);
  }

  async spend(id: string, tokens: number): Promise<void> {
    if (!this.#jobs.has(id) || !(tokens > 0)) return;
    const record: JournalRecord = { op: "spend", id, tokens };
    this.#apply(record);
    // Written as a start is, not fdatasynced: a crash keeps it, and the next run starts from it.
    await this.#append(record, false);
  }

  async stepDone(id: string, step: string): Promise<void> {
    if (!this.#jobs.has(id)) return;
    const record = { op: "step", id, step: step.slice(0, MAX_STEP) } as const;
    const had = this.#jobs.get(id)?.stepsDone;
    this.#apply(record);
    // As a spend: a crash keeps it; a power cut could cost one step done again. Not written (a
    // full disk), it is taken back: the next run, here or after a restart, does the step again.
    await this.#append(record, false, () => {
      const job = this.#jobs.get(id);
      if (job) job.stepsDone = had;
    });
  }

  async fail(
    id: string,
    error: string,
    retryAt: number | undefined,
    rateLimited = false,
  ): Promise<void> {
    this.#release(id);
    const job = this.#jobs.get(id);
    if (!job) return;
    const message = error.slice(0, MAX_ERROR);
    const record: JournalRecord =
      retryAt === undefined
        ? { op: "park", id, error: message, at: this.#options.clock.now() }
        : {
            op: "fail",
            id,
            error: message,
            retryAt,
            ...(rateLimited ? { rateLimited: true as const } : {}),
          };
    this.#apply(record);
    await this.#append(record, record.op === "park");
  }

  async retryParked(id: string): Promise<boolean> {
    if (!this.#jobs.get(id)?.parked) return false;
    const record: JournalRecord = { op: "retry", id, at: this.#options.clock.now() };
    this.#apply(record);
    await this.#append(record);
    return true;
  }

  needsIsolation(): boolean {
    for (const job of this.#jobs.values()) {
      // The run under way in this process is not one a crash cut short.
      const cut = (job.unsettledRuns ?? 0) - (this.#running.has(job.id) ? 1 : 0);
      if (!job.parked && cut >= ISOLATE_AFTER_CRASHES) return true;
    }
    return false;
  }

  nextRetryAt(): number | undefined {
    const now = this.#options.clock.now();
    let next: number | undefined;
    const seen = new Set<string>();
    for (const job of this.#jobs.values()) {
      // As claimNext: only the first waiting job of a thread can come due. A later one's retry
      // time, passed while the first waits for its own, would wake the runner for nothing, at
      // once and again, until then.
      if (job.parked || seen.has(job.thread)) continue;
      seen.add(job.thread);
      if (job.retryAt === undefined || this.#running.has(job.id)) continue;
      next = Math.min(next ?? Infinity, dueAt(job, now));
    }
    return next;
  }

  list(): Job[] {
    return [...this.#jobs.values()];
  }

  refused(): RefusedJob[] {
    return [...this.#refused];
  }

  async count(): Promise<number> {
    return this.#jobs.size;
  }

  async snapshot(): Promise<QueueSnapshot> {
    return { jobs: this.list(), refused: this.refused() };
  }

  /** A local file: a failure to write it shows as the delivery's error, not beforehand. */
  available(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#writing;
    await this.#handle?.close();
    this.#handle = undefined;
  }

  #release(id: string): void {
    const thread = this.#running.get(id);
    if (thread === undefined) return;
    this.#running.delete(id);
    this.#busyThreads.delete(thread);
  }

  /**
   * The state change a record stands for, the same on replay as when it is first written. An
   * add's size is measured here unless given (`enqueue` measured it for the bound).
   */
  #apply(record: JournalRecord, bytes?: number): void {
    switch (record.op) {
      case "add": {
        const job: Job & { op?: string } = { ...record };
        delete job.op;
        // A delivery is added again only once it was forgotten: a parked job past the retention,
        // which writes nothing (#forgetExpired), or a finished id past the retention or
        // `maxFinished`, whose `done` stays in the file until a rewrite succeeds. On replay the
        // later add is the job, whatever the clock says now: judged by it, a clock stepped back
        // made the forgotten job unexpired again, and an earlier `done` (a rewrite that failed
        // had forgotten it) dropped the acknowledged delivery accepted since. No duplicate runs
        // twice so: an add is appended only once enqueue accepted it, the id then neither held
        // nor finished in memory, which forgets a finished id only in those two ways (and a
        // rewrite never holds both a `done` and an `add` of one id: applying either undoes the
        // other).
        this.#drop(job.id);
        this.#finished.delete(job.id);
        this.#jobs.set(job.id, job);
        const size = bytes ?? weightOf(record);
        this.#heldBytes.set(job.id, size);
        this.#queuedBytes += size;
        const key = installationKey(job);
        const held = this.#byInstallation.get(key) ?? { jobs: 0, bytes: 0 };
        this.#byInstallation.set(key, { jobs: held.jobs + 1, bytes: held.bytes + size });
        break;
      }
      case "start": {
        const job = this.#jobs.get(record.id);
        if (job) {
          job.attempts++;
          job.unsettledRuns = (job.unsettledRuns ?? 0) + 1;
        }
        break;
      }
      case "spend": {
        const job = this.#jobs.get(record.id);
        if (job && Number.isFinite(record.tokens))
          job.spentTokens = (job.spentTokens ?? 0) + record.tokens;
        break;
      }
      case "step": {
        const job = this.#jobs.get(record.id);
        if (job && typeof record.step === "string" && !job.stepsDone?.includes(record.step))
          job.stepsDone = [...(job.stepsDone ?? []), record.step];
        break;
      }
      case "fail": {
        const job = this.#jobs.get(record.id);
        if (job) {
          job.retryAt = record.retryAt;
          job.unsettledRuns = undefined;
          // Its start counted an attempt; a run GitHub refused for a rate limit is none.
          if (record.rateLimited) {
            job.attempts = Math.max(0, job.attempts - 1);
            job.rateLimitedRuns = (job.rateLimitedRuns ?? 0) + 1;
          }
        }
        break;
      }
      case "park": {
        const job = this.#jobs.get(record.id);
        if (job) {
          job.parked = { at: record.at, error: record.error };
          job.unsettledRuns = undefined;
        }
        break;
      }
      case "retry": {
        // As if just accepted, in its place: its runs, their tokens and steps, and its error are
        // forgotten.
        const job = this.#jobs.get(record.id);
        if (job?.parked) {
          job.parked = undefined;
          job.attempts = 0;
          job.rateLimitedRuns = undefined;
          job.spentTokens = undefined;
          job.stepsDone = undefined;
          job.retryAt = undefined;
        }
        break;
      }
      case "done":
        this.#drop(record.id);
        this.#finished.delete(record.id);
        this.#finished.set(record.id, record.at);
        break;
      case "refuse": {
        const refused: RefusedJob & { op?: string } = { ...record };
        delete refused.op;
        this.#refused.push(refused);
        if (this.#refused.length > MAX_REFUSED) this.#refused.shift();
        break;
      }
    }
  }

  #replay(records: JournalRecord[]): void {
    for (const record of records) this.#apply(record);
    this.#forgetExpired();
  }

  /** Forgets a job, and its payload's weight against the bound. */
  #drop(id: string): void {
    const job = this.#jobs.get(id);
    if (!job) return;
    this.#jobs.delete(id);
    const size = this.#heldBytes.get(id) ?? 0;
    this.#queuedBytes -= size;
    this.#heldBytes.delete(id);
    const key = installationKey(job);
    const held = this.#byInstallation.get(key);
    if (!held || held.jobs <= 1) this.#byInstallation.delete(key);
    else this.#byInstallation.set(key, { jobs: held.jobs - 1, bytes: held.bytes - size });
  }

  /** Parked jobs are kept as long as finished ids, then forgotten with a line in the log. */
  #isExpired(job: Job | undefined): boolean {
    const oldest = this.#options.clock.now() - this.#options.retentionMs;
    return job?.parked !== undefined && job.parked.at < oldest;
  }

  #forget(id: string, job: Job): void {
    this.#options.log.warn({ delivery: id, event: job.event }, "parked job expired");
    this.#drop(id);
  }

  #forgetExpired(): void {
    for (const [id, job] of this.#jobs) if (this.#isExpired(job)) this.#forget(id, job);
    const oldest = this.#options.clock.now() - this.#options.retentionMs;
    while (this.#refused.length > 0 && (this.#refused[0]?.at ?? 0) < oldest) this.#refused.shift();
  }

  /** Each record a piece: joined, a journal of large payloads is more than one string holds. */
  #snapshot(): { pieces: Buffer[]; bytes: number } {
    const oldest = this.#options.clock.now() - this.#options.retentionMs;
    // Maps iterate in insertion order, which is finish order: the first entries are the oldest.
    for (const [id, at] of this.#finished) {
      if (at >= oldest && this.#finished.size <= this.#options.maxFinished) break;
      this.#finished.delete(id);
    }
    const records: JournalRecord[] = [
      ...[...this.#finished].map(([id, at]): JournalRecord => ({ op: "done", id, at })),
      ...this.#refused.map((refused): JournalRecord => ({ op: "refuse", ...refused })),
      ...[...this.#jobs.values()].map((job): JournalRecord => ({ op: "add", ...job })),
    ];
    const pieces = records.map((record) => Buffer.from(lineOf(record)));
    return { pieces, bytes: pieces.reduce((sum, piece) => sum + piece.length, 0) };
  }

  /**
   * Replaces the file with a snapshot; on failure the old file and handle are kept if whole. The
   * snapshot is taken before anything is awaited (a default is evaluated at the call): a record
   * applied meanwhile is still pending, and is appended after the snapshot, never both in it and
   * appended (a start twice is two attempts).
   */
  async #rewrite(snapshot = this.#snapshot()): Promise<void> {
    const file = this.#options.file;
    if (!file) return;
    let handle: FileHandle;
    try {
      await writeFileAtomically(file, snapshot.pieces);
      handle = await open(file, "a");
    } catch (error) {
      // Only if the file was renamed over (the directory's fsync or the open failed) is the old
      // handle's file gone, and what it is given lost.
      if (!(await this.#holdsFile(file))) this.#torn = true;
      throw error;
    }
    const old = this.#handle;
    this.#handle = handle;
    this.#linesInFile = snapshot.pieces.length;
    this.#bytesInFile = snapshot.bytes;
    this.#torn = false;
    this.#compactAfter = 0;
    // Its file is replaced: nothing written through it is needed any more.
    await old?.close().catch(() => undefined);
  }

  async #holdsFile(file: string): Promise<boolean> {
    if (!this.#handle) return false;
    try {
      const [held, named] = await Promise.all([this.#handle.stat(), stat(file)]);
      return held.ino === named.ino && held.dev === named.dev;
    } catch {
      return false;
    }
  }

  /**
   * Rewrites the file once it has grown to twice what it holds; false if it was not rewritten,
   * and the records are still to be appended.
   */
  async #compact(adding: number): Promise<boolean> {
    const live = this.#jobs.size + this.#finished.size + this.#refused.length;
    const limit = Math.max(2 * live + 1_000, this.#compactAfter);
    if (this.#linesInFile + adding <= limit) return false;
    try {
      // Every record waiting to be appended is already applied, so the snapshot holds it. Taken
      // before the copy below is awaited: a record applied during it (a start, a spend) is
      // pending, appended after the snapshot; taken after, it was in both, and counted twice.
      const snapshot = this.#snapshot();
      // Lines the start could not read, and could not copy aside for want of room, are copied
      // before a rewrite drops them.
      const file = this.#options.file;
      if (this.#uncopiedDamage && file) {
        const { clock, log } = this.#options;
        this.damagedCopy = await keepDamaged(file, this.malformedLines, clock, log);
        this.#uncopiedDamage = false;
      }
      await this.#rewrite(snapshot);
      return true;
    } catch (error) {
      if (this.#torn) throw error;
      // The old file is whole and still the handle's: a compaction only saves room, so go on
      // appending to it. Retrying on every write would fail each delivery on a nearly full disk
      // (a snapshot is far larger than a record), so the next try waits for the file to grow.
      this.#compactAfter = this.#linesInFile + adding + 1_000;
      this.#options.log.warn({ err: error }, "cannot compact the job journal; appending to it");
      return false;
    }
  }

  /**
   * Resolves once the record is written, and with `sync` once it is on disk: appends that arrive
   * together share one write and one fdatasync.
   */
  #append(record: JournalRecord, sync = true, undo?: () => void, line?: string): Promise<void> {
    if (!this.#options.file) return Promise.resolve();
    this.#pending.push(line ?? lineOf(record));
    const done = new Promise<void>((resolve, reject) =>
      this.#waiters.push({ resolve, reject, sync, undo }),
    );
    this.#writing ??= this.#drain();
    return done;
  }

  async #cutTo(bytes: number): Promise<void> {
    try {
      await this.#handle?.truncate(bytes);
    } catch {
      this.#torn = true;
    }
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) {
      const lines = this.#pending;
      const waiters = this.#waiters;
      this.#pending = [];
      this.#waiters = [];
      try {
        if (!this.#handle) throw new Error("the job journal is closed");
        if (this.#torn) {
          // Every record waiting here is already applied, so the snapshot holds it.
          await this.#rewrite();
        } else if (!(await this.#compact(lines.length))) {
          const text = lines.join("");
          await this.#handle.appendFile(text);
          if (waiters.some((waiter) => waiter.sync)) await this.#handle.datasync();
          this.#linesInFile += lines.length;
          this.#bytesInFile += Buffer.byteLength(text);
        }
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        // Undone before the next batch, whose rewrite would otherwise snapshot it.
        for (const waiter of waiters) waiter.undo?.();
        // A write that failed (a full disk) may have left part of a record at the end, and the
        // next record would be appended to that line, which a replay skips: cut it off.
        if (!this.#torn) await this.#cutTo(this.#bytesInFile);
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.#writing = undefined;
  }
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
  sync: boolean;
  /** Takes back the record's change in memory, should it not be written. */
  undo: (() => void) | undefined;
}

interface JournalRead {
  records: JournalRecord[];
  malformed: number;
  /** Lines ending in a newline, read or not. */
  lines: number;
  /** Where the last such line ends: what follows is a record a crash cut short. */
  wholeBytes: number;
}

/**
 * The journal's records, read a chunk at a time and cut at newlines: the file is not read as one
 * string, which V8 caps at about 512 MiB (10,000 jobs of 50 KB payloads, with their history, come
 * near), and past which the server could not start at all.
 */
async function readJournal(file: string, log: Logger): Promise<JournalRead> {
  const records: JournalRecord[] = [];
  let line = 0;
  let malformed = 0;
  let wholeBytes = 0;
  let readBytes = 0;
  const parse = (text: string) => {
    line++;
    try {
      const record = JSON.parse(text) as JournalRecord;
      if (!isDeliveryId(record.id)) throw new Error("no delivery id");
      records.push(record);
    } catch {
      malformed++;
      log.warn({ file, line }, "job journal has a malformed line; skipping it");
    }
  };
  // The pieces of the line under way, joined once it ends.
  const pending: Buffer[] = [];
  try {
    const handle = await open(file, "r");
    try {
      for await (const chunk of handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES })) {
        const bytes = chunk as Buffer;
        let start = 0;
        for (let end = bytes.indexOf(NEWLINE); end !== -1; end = bytes.indexOf(NEWLINE, start)) {
          pending.push(bytes.subarray(start, end));
          parse(Buffer.concat(pending).toString("utf8"));
          pending.length = 0;
          start = end + 1;
          wholeBytes = readBytes + start;
        }
        if (start < bytes.length) pending.push(bytes.subarray(start));
        readBytes += bytes.length;
      }
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      return { records, malformed, lines: 0, wholeBytes: 0 };
    throw new Error(`Cannot read the job journal ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // What follows the last newline is a line a crash cut in the middle of its append. Its write
  // never completed, so nothing was acknowledged for it.
  if (pending.length > 0)
    log.warn({ file }, "job journal ends in a partly written line; ignoring it");
  return { records, malformed, lines: line, wholeBytes };
}

/** A copy of the journal beside it, named for when it was found damaged. */
async function keepDamaged(
  file: string,
  lines: number,
  clock: Clock,
  log: Logger,
): Promise<string> {
  const copy = `${file}.damaged-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`;
  try {
    await copyFile(file, copy);
  } catch (error) {
    // Part of a copy (a full disk) would only take room the journal needs.
    await rm(copy, { force: true }).catch(() => undefined);
    throw error;
  }
  log.error(
    { file, copy, lines },
    "the job journal had lines that cannot be read: they were skipped, and the file as it was is kept",
  );
  return copy;
}

/**
 * When a job may run: now, or its retry time, unless that is further off than any retry waits
 * (the clock was stepped back since it was set): a 30 s retry had waited a day behind a clock set
 * back a day, and every later job of its thread with it.
 */
function dueAt(job: Job, now: number): number {
  const at = job.retryAt ?? 0;
  return at > now + MAX_RETRY_WAIT_MS ? now : at;
}

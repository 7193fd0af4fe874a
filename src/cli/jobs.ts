import { join } from "node:path";
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Env } from "../config.js";
import { JobJournal, type JobJournalOptions } from "../jobs/job-journal.js";
import { RedisJobQueue } from "../jobs/redis-job-queue.js";
import type { Job, JobQueue } from "../jobs/job-queue.js";
import { Retried } from "../jobs/retry-request.js";
import { sliceWhole } from "../slice-whole.js";
import type { LockOwner } from "../memory/directory-lock.js";
import { askServer, holdDataDirectory } from "./hold-data-directory.js";
import { assertDirectory } from "./assert-directory.js";
import { quietBelowDebug } from "./quiet-below-debug.js";
import { toTerminalText } from "./to-terminal-text.js";
import { UsageError } from "./usage-error.js";

export interface JobsCommandOptions {
  dataDir: string;
  json: boolean;
  env: Env;
  clock: Clock;
  log: Logger;
  stdout: Writable;
}

interface RepositoryJobs {
  repository: string;
  waiting: number;
  parked: Array<{ delivery: string; event: string; attempts: number; error: string }>;
  refused: number;
}

/**
 * `talos jobs`: the journal's jobs by repository: waiting (or running), parked after their last
 * attempt, and deliveries refused lately because the queue was full. Safe beside a running server:
 * the journal is only read.
 */
export async function showJobs(options: JobsCommandOptions): Promise<number> {
  const queue = await openQueueToRead(options);
  const snapshot = await queue.snapshot().finally(() => queue.close());
  const byRepository = new Map<string, RepositoryJobs>();
  // String(): a journal written before the handlers checked its type may hold another value.
  const entry = (name: unknown) => {
    const repository = name === undefined ? "(no repository)" : String(name);
    let found = byRepository.get(repository);
    if (!found) {
      found = { repository, waiting: 0, parked: [], refused: 0 };
      byRepository.set(repository, found);
    }
    return found;
  };
  for (const job of snapshot.jobs) {
    if (job.parked) entry(job.repository).parked.push(describeParked(job));
    else entry(job.repository).waiting++;
  }
  for (const refused of snapshot.refused) entry(refused.repository).refused++;
  const repositories = [...byRepository.values()].sort((a, b) =>
    a.repository.localeCompare(b.repository),
  );
  if (options.json) {
    options.stdout.write(`${JSON.stringify({ repositories })}\n`);
    return 0;
  }
  if (repositories.length === 0) {
    options.stdout.write("No jobs waiting, parked or refused.\n");
    return 0;
  }
  // What the journal holds came with deliveries: shown clean, and measured so.
  const shown = repositories.map((r) => ({ ...r, repository: toTerminalText(r.repository, true) }));
  const width = Math.max(10, ...shown.map((r) => r.repository.length));
  options.stdout.write(`${"repository".padEnd(width)}  waiting  parked  refused\n`);
  for (const r of shown) {
    options.stdout.write(
      `${r.repository.padEnd(width)}  ${String(r.waiting).padStart(7)}  ${String(r.parked.length).padStart(6)}  ${String(r.refused).padStart(7)}\n`,
    );
  }
  for (const r of shown) {
    for (const p of r.parked) {
      const line = `parked: ${r.repository} ${p.event} (delivery ${p.delivery}, ${p.attempts} attempt(s)): ${p.error}`;
      options.stdout.write(`\n${toTerminalText(line, true)}`);
    }
  }
  if (repositories.some((r) => r.parked.length > 0)) options.stdout.write("\n");
  return 0;
}

export interface RetryJobsOptions extends JobsCommandOptions {
  /** Delivery ids of parked jobs; none with `all`. */
  deliveries: string[];
  /** Every parked job. */
  all: boolean;
}

/**
 * `talos jobs retry`: parked jobs wait again, as if just accepted, once what parked them is
 * fixed. With REDIS_URL an instance runs them within seconds. On disk the journal has one
 * writer: with the server stopped the command writes it, and the server runs them at its next
 * start; beside a running server it asks the server, which runs them at once.
 */
export async function retryJobs(options: RetryJobsOptions): Promise<number> {
  const named = options.deliveries.length > 0;
  if (options.all === named)
    throw new UsageError("retry takes the delivery ids of parked jobs, or --all");
  const opened = await openQueueToWrite(options, (queue) => parkedToRetry(queue, options));
  if ("server" in opened) return retryBesideServer(options, opened.server);
  const { queue, close } = opened;
  const retried: Described[] = [];
  try {
    const { parked, ids } = opened.checked;
    for (const id of ids) {
      // Described first: retrying the journal's job clears its attempts and error.
      const described = describeRetried(parked.get(id)!);
      if (await queue.retryParked(id)) retried.push(described);
    }
  } finally {
    await close();
  }
  const when = queue.shared
    ? "an instance runs it within seconds"
    : "the server runs it when it starts";
  return reportRetried(options, retried, when);
}

type Described = ReturnType<typeof describeRetried>;

function describeRetried(job: Job) {
  return { repository: job.repository, ...describeParked(job) };
}

/** The parked jobs, and the ids of those to retry; an id of none of them is bad input. */
async function parkedToRetry(queue: JobQueue, options: RetryJobsOptions) {
  const parked = new Map(
    (await queue.snapshot()).jobs.filter((job) => job.parked).map((job) => [job.id, job]),
  );
  const ids = options.all ? [...parked.keys()] : [...new Set(options.deliveries)];
  const unknown = ids.filter((id) => !parked.has(id));
  if (unknown.length > 0)
    throw new UsageError(
      `no parked job has delivery ${unknown.join(", ")}; \`talos jobs\` lists those parked`,
    );
  return { parked, ids };
}

/** The journal read (safe beside the server), the ids checked, the retries asked of the server. */
async function retryBesideServer(options: RetryJobsOptions, server: LockOwner): Promise<number> {
  const queue = await openQueueToRead(options);
  const { parked, ids } = await parkedToRetry(queue, options).finally(() => queue.close());
  const answer =
    ids.length === 0
      ? []
      : Retried.parse(await askServer(options.dataDir, server, { kind: "retry", ids }));
  const retried = answer.flatMap((id) => {
    const job = parked.get(id);
    return job ? [describeRetried(job)] : [];
  });
  return reportRetried(options, retried, "the running server runs it now");
}

function reportRetried(options: RetryJobsOptions, retried: Described[], when: string): number {
  if (options.json) {
    options.stdout.write(`${JSON.stringify({ retried })}\n`);
    return 0;
  }
  for (const job of retried)
    options.stdout.write(
      `${toTerminalText(`Retried ${job.repository ?? "(no repository)"} ${job.event} (delivery ${job.delivery}): ${when}.`, true)}\n`,
    );
  if (retried.length === 0) options.stdout.write("No jobs parked.\n");
  return 0;
}

/**
 * The queue to change: the shared one with REDIS_URL, beside the instances; else the journal,
 * with the data directory held, or the server to ask when a running server holds it (another
 * holder: MemoryLockedError, exit 2). `check` looks at the queue first, as it is: only past it
 * is the journal opened to write, which rewrites it (a refused id had changed the file, and
 * dropped a line it could not read).
 */
async function openQueueToWrite<T extends { ids: string[] }>(
  options: Pick<JobsCommandOptions, "dataDir" | "env" | "clock" | "log">,
  check: (queue: JobQueue) => Promise<T>,
): Promise<{ queue: JobQueue; checked: T; close: () => Promise<void> } | { server: LockOwner }> {
  if (options.env.REDIS_URL) {
    const queue = await openQueueToRead(options);
    try {
      return { queue, checked: await check(queue), close: () => queue.close() };
    } catch (error) {
      await queue.close();
      throw error;
    }
  }
  await assertDirectory(options.dataDir);
  const held = await holdDataDirectory(options.dataDir);
  if ("server" in held) return held;
  try {
    const read = await openQueueToRead(options);
    const checked = await check(read).finally(() => read.close());
    const queue = checked.ids.length > 0 ? await openQueue(options, false) : read;
    return {
      queue,
      checked,
      close: async () => {
        if (queue !== read) await queue.close();
        await held.release();
      },
    };
  } catch (error) {
    await held.release();
    throw error;
  }
}

/**
 * The queue the server uses, only read: the instances' shared one with REDIS_URL, else the
 * journal under the data directory. Safe beside a running server.
 */
export async function openQueueToRead(
  options: Pick<JobsCommandOptions, "dataDir" | "env" | "clock" | "log">,
): Promise<JobQueue> {
  // A journal that is not there reads as empty: `talos jobs` run from another directory than
  // the server's (./data by default), or a mistyped --data-dir, said no job was parked.
  if (!options.env.REDIS_URL) await assertDirectory(options.dataDir);
  return openQueue(options, true);
}

async function openQueue(
  options: Pick<JobsCommandOptions, "dataDir" | "env" | "clock" | "log">,
  readOnly: boolean,
): Promise<JobQueue> {
  const { env } = options;
  // The queue logs for a server ("Redis unreachable: new deliveries are refused with 503", with
  // a stack); the command reports what stops it in one line, so those show only at debug.
  const log = quietBelowDebug(options.log);
  const shared = {
    maxQueued: env.TALOS_JOB_QUEUE_MAX,
    retentionMs: env.TALOS_LEDGER_RETENTION_HOURS * 3_600_000,
    clock: options.clock,
    log,
  };
  return env.REDIS_URL
    ? RedisJobQueue.open({
        ...shared,
        url: env.REDIS_URL,
        prefix: env.TALOS_REDIS_PREFIX,
        leaseMs: env.TALOS_JOB_LEASE_MS,
        inspectOnly: true,
      })
    : openJournal(options, {
        ...shared,
        file: join(options.dataDir, "jobs", "journal.log"),
        readOnly,
      });
}

/** The journal, and a warning on stderr (not muted with the queue's log) when it is damaged. */
async function openJournal(
  options: Pick<JobsCommandOptions, "env" | "log">,
  settings: Omit<JobJournalOptions, "maxFinished"> & { file: string },
): Promise<JobJournal> {
  const journal = await JobJournal.open({
    ...settings,
    maxFinished: options.env.TALOS_LEDGER_MAX_ENTRIES,
  });
  if (journal.malformedLines > 0)
    options.log.warn(
      { file: settings.file, lines: journal.malformedLines, copy: journal.damagedCopy },
      journal.damagedCopy
        ? "the job journal has lines that cannot be read: they are skipped, and the file as it was is kept as the copy"
        : "the job journal has lines that cannot be read: they are skipped here (the server keeps a copy of the file as it was when it next starts)",
    );
  return journal;
}

function describeParked(job: Job) {
  return {
    delivery: job.id,
    event: job.event,
    attempts: job.attempts,
    // String(): as the repository's, a journal of another version may hold another value.
    // Cleaned before it is cut, so that no escape sequence is cut in half.
    error: sliceWhole(toTerminalText(String(job.parked?.error ?? "")).replace(/\s+/g, " "), 200),
  };
}

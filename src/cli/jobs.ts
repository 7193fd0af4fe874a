import { join } from "node:path";
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Env } from "../config.js";
import { JobJournal } from "../jobs/job-journal.js";
import { RedisJobQueue } from "../jobs/redis-job-queue.js";
import type { Job, JobQueue } from "../jobs/job-queue.js";

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
 * attempt, and deliveries refused lately (queue full, stopping). Safe beside a running server:
 * the journal is only read.
 */
export async function showJobs(options: JobsCommandOptions): Promise<number> {
  const queue = await openQueueToRead(options);
  const snapshot = await queue.snapshot().finally(() => queue.close());
  const byRepository = new Map<string, RepositoryJobs>();
  const entry = (repository = "(no repository)") => {
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
  const width = Math.max(10, ...repositories.map((r) => r.repository.length));
  options.stdout.write(`${"repository".padEnd(width)}  waiting  parked  refused\n`);
  for (const r of repositories) {
    options.stdout.write(
      `${r.repository.padEnd(width)}  ${String(r.waiting).padStart(7)}  ${String(r.parked.length).padStart(6)}  ${String(r.refused).padStart(7)}\n`,
    );
  }
  for (const r of repositories) {
    for (const p of r.parked) {
      options.stdout.write(
        `\nparked: ${r.repository} ${p.event} (delivery ${p.delivery}, ${p.attempts} attempt(s)): ${p.error}`,
      );
    }
  }
  if (repositories.some((r) => r.parked.length > 0)) options.stdout.write("\n");
  return 0;
}

/**
 * The queue the server uses, only read: the instances' shared one with REDIS_URL, else the
 * journal under the data directory. Safe beside a running server.
 */
export async function openQueueToRead(
  options: Pick<JobsCommandOptions, "dataDir" | "env" | "clock" | "log">,
): Promise<JobQueue> {
  const { env } = options;
  // The queue logs for a server ("Redis unreachable: new deliveries are refused with 503", with
  // a stack); the command reports what stops it in one line, so those show only at debug.
  const log = options.log.isLevelEnabled("debug")
    ? options.log
    : options.log.child({}, { level: "silent" });
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
    : JobJournal.open({
        ...shared,
        file: join(options.dataDir, "jobs", "journal.log"),
        readOnly: true,
        maxFinished: env.TALOS_LEDGER_MAX_ENTRIES,
      });
}

function describeParked(job: Job) {
  return {
    delivery: job.id,
    event: job.event,
    attempts: job.attempts,
    error: (job.parked?.error ?? "").replace(/\s+/g, " ").slice(0, 200),
  };
}

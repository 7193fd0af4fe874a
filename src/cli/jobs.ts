import { join } from "node:path";
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Env } from "../config.js";
import { JobJournal } from "../jobs/job-journal.js";
import type { Job } from "../jobs/job-queue.js";

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
  const journal = await JobJournal.open({
    file: join(options.dataDir, "jobs", "journal.log"),
    readOnly: true,
    maxQueued: options.env.TALOS_JOB_QUEUE_MAX,
    retentionMs: options.env.TALOS_LEDGER_RETENTION_HOURS * 3_600_000,
    maxFinished: options.env.TALOS_LEDGER_MAX_ENTRIES,
    clock: options.clock,
    log: options.log,
  });
  const byRepository = new Map<string, RepositoryJobs>();
  const entry = (repository = "(no repository)") => {
    let found = byRepository.get(repository);
    if (!found) {
      found = { repository, waiting: 0, parked: [], refused: 0 };
      byRepository.set(repository, found);
    }
    return found;
  };
  for (const job of journal.list()) {
    if (job.parked) entry(job.repository).parked.push(describeParked(job));
    else entry(job.repository).waiting++;
  }
  for (const refused of journal.refused()) entry(refused.repository).refused++;
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

function describeParked(job: Job) {
  return {
    delivery: job.id,
    event: job.event,
    attempts: job.attempts,
    error: (job.parked?.error ?? "").replace(/\s+/g, " ").slice(0, 200),
  };
}

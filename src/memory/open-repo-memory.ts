import type { Logger } from "pino";
import type { RepoConfig } from "../config.js";
import type { BackfillRunner } from "./backfill-runner.js";
import type { RepositoryRef } from "./memory-registry.js";
import type { MemoryService } from "./memory-service.js";
import { MemoryDeletedError, type MemoryStore } from "./memory-store.js";

/** The parts of a webhook payload's `repository` that name its memory. */
export interface PayloadRepository {
  id: number;
  full_name: string;
  /** ISO 8601, or Unix seconds in push payloads. */
  created_at?: string | number | undefined;
}

/**
 * How a memory refused as removed opens again when its `installation_repositories.added` never
 * came (Talos was down past GitHub's delivery attempts, or the delivery failed): GitHub is asked
 * whether the installation holds the repository now.
 */
export interface Readmission {
  /** Whether GitHub says the installation holds the repository now (the app's own request). */
  holds(installation: number, repository: PayloadRepository): Promise<boolean>;
  /** A repository readmitted here: its backfill starts, as after the event that was missed. */
  readmitted(ref: RepositoryRef): void;
  log: Logger;
}

export interface MemoryAccess {
  memory: MemoryService;
  readmission: Readmission;
  backfill: Pick<BackfillRunner, "opened">;
}

/**
 * The memory of the event's repository, or undefined when its config switches memory off. The
 * namespace comes from the webhook payload (installation id and repository id), never from
 * text; the name it carries now is recorded for display, so a rename keeps the memory.
 *
 * A memory removed with its repository (or installation) is refused, so that a job journaled
 * before the removal cannot write it back. Refused, GitHub is asked: a repository the
 * installation holds again was added back while Talos missed the event, and is readmitted; one
 * it does not hold stays refused (the job that asked is then dropped as gone).
 */
export async function openRepoMemory(
  { memory, readmission, backfill }: MemoryAccess,
  event: { installation: number; repository: PayloadRepository },
  config: RepoConfig,
): Promise<MemoryStore | undefined> {
  if (!config.memory.enabled) return undefined;
  const ref: RepositoryRef = {
    installation: event.installation,
    repository: event.repository.id,
    name: event.repository.full_name,
    createdAt: event.repository.created_at,
  };
  let store: MemoryStore;
  try {
    store = await memory.open(ref);
  } catch (error) {
    if (!(error instanceof MemoryDeletedError)) throw error;
    if (!(await readmission.holds(event.installation, event.repository))) throw error;
    readmission.log.warn(
      { installation: ref.installation, repository: ref.repository, name: ref.name },
      "memory readmitted: the installation holds the repository again, though Talos never received its installation_repositories.added",
    );
    await memory.readmit(ref);
    readmission.readmitted(ref);
    store = await memory.open(ref);
  }
  // Opened (or adopted from a name-keyed one) first: its progress is then where it is read.
  await backfill.opened(ref);
  return store;
}

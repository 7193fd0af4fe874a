import type { Logger } from "pino";
import type { BackfillClaim, BackfillProgress, BackfillState } from "./backfill-repository.js";
import type { Embedder } from "./embedder.js";
import type { LegacyMemory } from "./legacy-memory.js";
import type { MemoryNamespace, RepositoryRef, StoredNamespace } from "./memory-registry.js";
import type { MemoryStore } from "./memory-store.js";

/** One repository's memory as callers hold it: its records and its backfill progress. */
export interface RepoMemory extends MemoryStore, BackfillProgress {
  readonly namespace: MemoryNamespace;
  /** `owner/name` as the event that opened it spelled it. */
  readonly name: string;
}

/**
 * The memories of every repository: on local disk (MemoryRegistry), or with DATABASE_URL in
 * PostgreSQL, shared by every instance (PostgresMemory). Callers name the namespace from the
 * event's payload; nothing the model writes reaches this choice.
 */
export interface MemoryService {
  readonly embedder: Embedder;
  /** Work left from earlier versions or a crash; every other method waits for it. */
  migrate(): Promise<void>;
  open(ref: RepositoryRef): Promise<RepoMemory>;
  /**
   * One use of a memory no event asked for (`talos memory` beside the server). On local disk a
   * store it opens goes in as the first closed past the RAM cap, so that a look through many
   * memories does not close the stores the events use; a store open already keeps its rank.
   */
  look<T>(ref: RepositoryRef, use: (memory: MemoryStore) => Promise<T>): Promise<T>;
  /** Records a repository's new name, if it has a memory. */
  rename(ref: RepositoryRef): Promise<boolean>;
  /**
   * Deletes a repository's memory and backfill progress (the repository was deleted, or left
   * the installation). Handles opened before refuse to write, and later opens are refused, after
   * a restart too, until `readmit`: a job journaled before the deletion and run after it must
   * not write the memory into being again. On local disk, a name-keyed memory of its name goes
   * too, unless its creation time (`createdAt`, or the one its memory recorded) shows that
   * memory is an earlier repository's.
   */
  delete(
    namespace: MemoryNamespace & {
      name?: string | undefined;
      createdAt?: string | number | undefined;
    },
  ): Promise<boolean>;
  /** Deletes every memory of an installation (uninstalled), refusing them for good. */
  deleteInstallation(installation: number): Promise<boolean>;
  /**
   * Whether opens of the namespace are refused, as deleted with its repository (until `readmit`)
   * or its installation. Asked before a readmission, which only GitHub may then confirm: a late
   * `installation_repositories.added` must not lift the refusal of a removal handled after it.
   */
  isRefused(namespace: MemoryNamespace): Promise<boolean>;
  /** The repository was added (back) to its installation: its memory may open again, empty. */
  readmit(namespace: MemoryNamespace): Promise<void>;
  /** Every namespace with a memory, with its recorded name. */
  list(): Promise<StoredNamespace[]>;
  /**
   * Whether the namespace has a memory, as `list` would say, looking at that one alone: an
   * event's question, whose cost must not grow with every other repository's memory.
   */
  has(namespace: MemoryNamespace): Promise<boolean>;
  /** Name-keyed memories of earlier versions waiting to be adopted (local disk only). */
  listLegacy(): Promise<LegacyMemory[]>;
  readBackfillState(namespace: MemoryNamespace): Promise<BackfillState | undefined>;
  /**
   * Takes (or renews) the right to run a repository's backfill for `leaseMs`, for `holder`;
   * false while another holder's lease runs. `leaseMs` 0 gives it back. On local disk, where
   * one process holds the memory, always true.
   */
  claimBackfill(namespace: MemoryNamespace, holder: string, leaseMs: number): Promise<boolean>;
  /** Where a namespace's memory is kept, for people: a directory, or the database's schema. */
  locationOf(namespace: MemoryNamespace): string;
  /** What is held in RAM now: open stores (or search indexes) and their estimated bytes. */
  openStores(): { stores: number; bytes: number; inUse: number };
  /** Loads ahead of first use what fits in RAM; resolves with how many. */
  warm(): Promise<number>;
  /** Flushes and releases everything (on shutdown). */
  closeAll(): Promise<void>;
}

/** How long a claim on a backfill lasts unrenewed: pages come far more often. */
export const BACKFILL_LEASE_MS = 5 * 60_000;

/**
 * A claimed backfill's claim, for backfillRepository to keep: renewed before each page's
 * progress is saved and every third of the lease while it waits (a rate limit's wait may last
 * an hour), so that a holder that died lets the backfill go within the lease, and one that lives
 * keeps it however long it waits. A renewal's false (another holder has it now) stops it.
 */
export function backfillClaim(
  memory: Pick<MemoryService, "claimBackfill">,
  namespace: MemoryNamespace,
  holder: string,
  leaseMs = BACKFILL_LEASE_MS,
): BackfillClaim {
  return {
    // Two renewals may fail (the database restarting, say) before the lease lapses.
    renewEveryMs: leaseMs / 3,
    renew: () => memory.claimBackfill(namespace, holder, leaseMs),
  };
}

/**
 * Gives a claim on a backfill back, however the backfill ended, so that another instance's start
 * may resume it at once. One that cannot be given back now lapses within the lease.
 */
export async function releaseBackfillClaim(
  memory: MemoryService,
  namespace: MemoryNamespace,
  holder: string,
  log: Logger,
): Promise<void> {
  await memory
    .claimBackfill(namespace, holder, 0)
    .catch((error: unknown) => log.warn({ err: error }, "backfill claim not released"));
}

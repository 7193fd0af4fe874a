import { writeFileAtomically } from "../write-file-atomically.js";
import {
  backfillStateFile,
  readBackfillState,
  type BackfillProgress,
  type BackfillState,
} from "./backfill-repository.js";
import type { MemoryNamespace } from "./memory-registry.js";
import {
  checkRepository,
  type MemoryInput,
  type MemoryPage,
  type MemoryRecord,
  type MemoryStats,
  type MemoryStore,
  type SearchHit,
  type SearchOptions,
} from "./memory-store.js";
import type { VectraMemoryStore } from "./vectra-memory-store.js";

/** Runs `use` on the open store of a repository, which stays open (and undeleted) meanwhile. */
export type MemoryLease = <T>(
  use: (store: VectraMemoryStore, directory: string) => Promise<T>,
) => Promise<T>;

export interface RepositoryMemoryOptions {
  namespace: MemoryNamespace;
  /** `owner/name` as the event that opened it spells it. */
  name: string;
  relatedScore: number;
  lease: MemoryLease;
}

/**
 * One repository's memory as callers hold it, from `MemoryRegistry.open`. It holds no store:
 * every call leases the store for its own duration, so the registry may close an idle store to
 * bound RAM and reopen it on the next call, and a deletion waits for the calls under way, after
 * which this handle refuses to write (a job that held it cannot bring the memory back). Backfill
 * progress is kept here too, in the same directory and under the same rules.
 */
export class RepositoryMemory implements MemoryStore, BackfillProgress {
  readonly namespace: MemoryNamespace;
  readonly name: string;
  readonly relatedScore: number;
  readonly #lease: MemoryLease;

  constructor(options: RepositoryMemoryOptions) {
    this.namespace = options.namespace;
    this.name = options.name;
    this.relatedScore = options.relatedScore;
    this.#lease = options.lease;
  }

  async add(input: MemoryInput): Promise<MemoryRecord> {
    checkRepository(input, this.name);
    return this.#lease((store) => store.add(input));
  }

  async addMany(inputs: MemoryInput[]): Promise<MemoryRecord[]> {
    for (const input of inputs) checkRepository(input, this.name);
    return this.#lease((store) => store.addMany(inputs));
  }

  remove(id: string): Promise<boolean> {
    return this.#lease((store) => store.remove(id));
  }

  forgetThread(number: number): Promise<number> {
    return this.#lease((store) => store.forgetThread(number));
  }

  forgottenThreads(): Promise<number[]> {
    return this.#lease((store) => store.forgottenThreads());
  }

  get(id: string): Promise<MemoryRecord | undefined> {
    return this.#lease((store) => store.get(id));
  }

  search(query: string, options: SearchOptions): Promise<SearchHit[]> {
    return this.#lease((store) => store.search(query, options));
  }

  list(): Promise<MemoryRecord[]> {
    return this.#lease((store) => store.list());
  }

  listPage(cursor?: string): Promise<MemoryPage> {
    return this.#lease((store) => store.listPage(cursor));
  }

  stats(): Promise<MemoryStats> {
    return this.#lease((store) => store.stats());
  }

  flush(): Promise<void> {
    return this.#lease((store) => store.flush());
  }

  warm(): Promise<void> {
    return this.#lease((store) => store.warm());
  }

  readBackfillState(): Promise<BackfillState | undefined> {
    return this.#lease((_store, directory) => readBackfillState(directory));
  }

  saveBackfillState(state: BackfillState): Promise<void> {
    return this.#lease((_store, directory) =>
      writeFileAtomically(backfillStateFile(directory), `${JSON.stringify(state)}\n`),
    );
  }
}

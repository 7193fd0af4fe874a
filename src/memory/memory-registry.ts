import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Metrics } from "../metrics/create-metrics.js";
import type { Embedder } from "./embedder.js";
import type { MemoryStore } from "./memory-store.js";
import { KeywordReranker } from "./keyword-reranker.js";
import { VectraMemoryStore } from "./vectra-memory-store.js";

export interface MemoryNamespace {
  installation: string;
  /** `owner/repo`, lower-cased. */
  repo: string;
}

export interface MemoryRegistryOptions {
  /** `$TALOS_DATA_DIR/memory`. */
  directory: string;
  embedder: Embedder;
  batchSize: number;
  flushMs: number;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

// GitHub's own rules for owner and repository names; anything else never reaches the disk.
const NAME = /^(?!\.{1,2}$)[a-z0-9._-]{1,100}$/;

/**
 * The memories of all repositories: one store, in a directory of its own, per installation and
 * repository. Callers name the namespace from the event's payload; nothing the model writes
 * reaches this choice.
 */
export class MemoryRegistry {
  readonly #options: MemoryRegistryOptions;
  readonly #stores = new Map<string, Promise<MemoryStore>>();
  readonly #keywords = new KeywordReranker();

  constructor(options: MemoryRegistryOptions) {
    this.#options = options;
  }

  get embedder(): Embedder {
    return this.#options.embedder;
  }

  /** The store of one installation's repository, opened (and its log replayed) on first use. */
  open(namespace: MemoryNamespace): Promise<MemoryStore> {
    const directory = this.directoryOf(namespace);
    let store = this.#stores.get(directory);
    if (!store) {
      store = VectraMemoryStore.open({
        ...this.#options,
        keywords: this.#keywords,
        directory,
        repo: namespace.repo,
        log: this.#options.log.child({ memory: `${namespace.installation}/${namespace.repo}` }),
      });
      // A store that failed to open is not kept: the next event tries again.
      store.catch(() => this.#stores.delete(directory));
      this.#stores.set(directory, store);
    }
    return store;
  }

  directoryOf({ installation, repo }: MemoryNamespace): string {
    const [owner, name, ...rest] = repo.toLowerCase().split("/");
    if (
      !/^\d+$/.test(installation) ||
      !owner ||
      !name ||
      rest.length > 0 ||
      !NAME.test(owner) ||
      !NAME.test(name)
    ) {
      throw new Error(`not a memory namespace: installation ${installation}, repository ${repo}`);
    }
    return join(this.#options.directory, installation, owner, name);
  }

  /** Every namespace with memories on disk. */
  async list(): Promise<MemoryNamespace[]> {
    const found: MemoryNamespace[] = [];
    for (const installation of await readdirOrEmpty(this.#options.directory)) {
      for (const owner of await readdirOrEmpty(join(this.#options.directory, installation))) {
        for (const repo of await readdirOrEmpty(
          join(this.#options.directory, installation, owner),
        )) {
          found.push({ installation, repo: `${owner}/${repo}` });
        }
      }
    }
    return found;
  }

  /** Flushes and closes every open store (on shutdown). */
  async closeAll(): Promise<void> {
    const stores = [...this.#stores.values()];
    this.#stores.clear();
    const results = await Promise.allSettled(stores.map(async (store) => (await store).close()));
    // Every store gets its chance to close; what failed is still in its log, and is said.
    const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    for (const error of failed)
      this.#options.log.error({ err: error }, "memory not flushed on close; its log keeps it");
    if (failed.length > 0) throw new AggregateError(failed, "memory stores failed to close");
  }
}

async function readdirOrEmpty(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

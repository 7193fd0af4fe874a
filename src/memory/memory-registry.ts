import { randomUUID } from "node:crypto";
import { mkdir, readFile, rename, rm, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";

import type { Clock } from "../clock.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import { exists, readdirOrEmpty } from "./directory-entries.js";
import { readBackfillState, type BackfillState } from "./backfill-repository.js";
import { lockDirectory } from "./directory-lock.js";
import type { ScanHelper } from "./scan-helper.js";
import type { WordsCounter } from "./words-counter.js";
import type { Embedder } from "./embedder.js";
import {
  isEarlierRepositorysMemory,
  isWaitingLegacyMemory,
  judgeLegacyMemory,
  LEGACY_DIRECTORY,
  legacyDirectoryOf,
  listLegacyMemories,
  moveLegacyMemoriesAside,
  rejectLegacyMemory,
  type LegacyMemory,
} from "./legacy-memory.js";
import { MemoryDeletedError, type MemoryRecord, type MemoryStore } from "./memory-store.js";
import { RemovedMemories } from "./removed-memories.js";
import { RepositoryMemory } from "./repository-memory.js";
import type { MemoryService } from "./memory-service.js";
import { createFullCollection } from "./full-collection.js";
import { SNAPSHOT_FILES } from "./memory-snapshot.js";
import { MANIFEST, MemoryMismatchError, VectraMemoryStore } from "./vectra-memory-store.js";

/**
 * Whose memory: an installation and a repository, by id. A repository keeps its id through
 * renames and transfers, and one deleted and created again under the same name gets a new id,
 * hence a new, empty memory.
 */
export interface MemoryNamespace {
  installation: number;
  repository: number;
}

/** A repository as an event (or GitHub) describes it, to open its memory with. */
export interface RepositoryRef extends MemoryNamespace {
  /** `owner/name` as GitHub spells it now: shown to people, and the `repo` of its records. */
  name: string;
  /**
   * The repository's `created_at` (ISO 8601, or Unix seconds as push payloads give it). Needed
   * only to adopt a memory kept by name before the upgrade (see legacy-memory.ts).
   */
  createdAt?: string | number | undefined;
  /**
   * `owner/name` the repository had before, when the event says (a rename or a transfer): a
   * memory kept by that name before the upgrade is its too, if its creation time says so. A
   * repository renamed before any event opened its memory found nothing under its new name.
   */
  previousName?: string | undefined;
}

/** A namespace on disk, with the name its `repository.json` holds. */
export interface StoredNamespace extends MemoryNamespace {
  name: string;
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
  /**
   * The RAM open stores may take (TALOS_MEMORY_MAX_OPEN_MB × 2^20). Past it, the least recently
   * used idle stores are flushed and closed. Default 512 MiB.
   */
  maxOpenBytes?: number;
  /** Shared by every store: see scan-helper.ts. */
  scanHelper?: ScanHelper;
  /** Shared by every store: see words-counter.ts. */
  wordsCounter?: WordsCounter;
  /** Run after an idle store is closed, to free its RAM; default: a full collection. */
  collectGarbage?: () => void;
}

interface Slot {
  readonly key: string;
  readonly namespace: MemoryNamespace;
  readonly directory: string;
  /** The store, open or opening; undefined while closed. */
  store: Promise<VectraMemoryStore> | undefined;
  /** Calls under way: a store in use is never closed under them. */
  users: number;
  /** The store's RAM estimate after its last call. */
  bytes: number;
  /** A close or a deletion under way, after which new calls may start. Never rejects. */
  busy: Promise<void> | undefined;
  /** Wakes a close or a deletion waiting for the calls under way. */
  drained: (() => void) | undefined;
  /** The name `repository.json` holds, once read or written. */
  name: string | undefined;
  /** Writes of `repository.json`, one at a time. */
  naming: Promise<void>;
}

const REPOSITORY_FILE = "repository.json";
const TRASH = ".trash";
/** The memories removed with their repository or installation: see removed-memories.ts. */
const REMOVED_FILE = "removed.json";
const DEFAULT_MAX_OPEN_BYTES = 512 * 2 ** 20;
const NUMERIC = /^\d+$/;
/** GitHub's own rules for owner and repository names. */
export const NAME = /^(?!\.{1,2}\/)[A-Za-z0-9._-]{1,100}\/(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$/;

/**
 * The memories of all repositories, in `<directory>/<installation id>/<repository id>/`, each
 * with a `repository.json` naming it. Callers name the namespace from the event's payload;
 * nothing the model writes reaches this choice.
 *
 * - Open stores form an LRU bounded by their estimated RAM (`maxOpenBytes`). A store is in use
 *   only for the duration of a call (see RepositoryMemory), and never closed during one; closing
 *   flushes, and what a failed flush could not write stays in the store's write-ahead log.
 * - Deleting a memory (its repository deleted or removed from the installation, the
 *   installation deleted) blocks new calls, waits for those under way, closes the store, then
 *   moves the directory away in one rename under the directory lock and removes it. Handles
 *   opened before refuse to write afterwards, so nothing brings back a half-deleted store.
 *   A deleted memory stays refused, across restarts (`removed.json`): a job journaled before
 *   the deletion and run after it must not write it into being again. Only a repository added
 *   back to its installation (`readmit`) opens again, empty; deleted repositories and
 *   installations never come back (GitHub gives a new one a new id).
 * - Name-keyed directories of earlier versions are moved aside on first use (`migrate`), and
 *   adopted by the first open of the repository they belong to (see legacy-memory.ts).
 */
export class MemoryRegistry implements MemoryService {
  readonly #options: MemoryRegistryOptions;
  readonly #maxOpenBytes: number;
  readonly #collectGarbage: () => void;
  #warming: Promise<number> | undefined;
  #closing = false;
  /** In least recently used order: a call moves its slot to the end. */
  readonly #slots = new Map<string, Slot>();
  /** Counts deletions; a handle opened before a deletion of its memory is stale. */
  #epoch = 0;
  readonly #deletedAt = new Map<string, number>();
  readonly #removed: RemovedMemories;
  readonly #warnedOverCap = new Set<string>();
  #migrated: Promise<void> | undefined;
  /** The last deletion's move to the trash (see #removeDirectory). Never rejects. */
  #moving: Promise<unknown> = Promise.resolve();

  constructor(options: MemoryRegistryOptions) {
    this.#options = options;
    this.#maxOpenBytes = options.maxOpenBytes ?? DEFAULT_MAX_OPEN_BYTES;
    this.#collectGarbage = options.collectGarbage ?? createFullCollection();
    this.#removed = new RemovedMemories(join(options.directory, REMOVED_FILE));
  }

  get embedder(): Embedder {
    return this.#options.embedder;
  }

  /**
   * Reads which memories were deleted, finishes what a crash left (a deletion's trash) and moves
   * name-keyed memories of earlier versions aside. Runs once; every other method waits for it,
   * so calling it at start only surfaces its errors early.
   */
  migrate(): Promise<void> {
    this.#migrated ??= (async () => {
      await this.#removed.load();
      await rm(join(this.#options.directory, TRASH), { recursive: true, force: true });
      const moved = await moveLegacyMemoriesAside(this.#options.directory, this.#options.log);
      if (moved > 0)
        this.#options.log.info({ moved }, "name-keyed memories moved aside for adoption");
    })().catch((error: unknown) => {
      this.#migrated = undefined;
      throw error;
    });
    return this.#migrated;
  }

  /**
   * The memory of one installation's repository. Its store is opened (and its log replayed) now,
   * so that errors show here; the name is recorded when it is new (a rename).
   */
  async open(ref: RepositoryRef): Promise<RepositoryMemory> {
    const key = this.#keyOf(ref);
    if (!NAME.test(ref.name)) throw new Error(`not a repository name: ${JSON.stringify(ref.name)}`);
    await this.migrate();
    for (;;) {
      this.#refuseGone(ref);
      // A deletion under way finishes first: what opens after it, opens anew.
      for (let slot = this.#slots.get(key); slot?.busy; slot = this.#slots.get(key))
        await slot.busy;
      const since = this.#epoch;
      const memory = new RepositoryMemory({
        namespace: { installation: ref.installation, repository: ref.repository },
        name: ref.name,
        relatedScore: this.#options.embedder.relatedScore,
        lease: (use) => this.#lease(ref, since, true, (slot, store) => use(store!, slot.directory)),
      });
      try {
        await this.#lease(ref, since, true, async (slot) => {
          if (slot.name !== ref.name) await this.#writeRepositoryFile(slot, ref);
        });
        return memory;
      } catch (error) {
        // A removal began as this opened: open again, after it.
        if (error instanceof MemoryDeletedError && !this.#isGone(ref)) continue;
        throw error;
      }
    }
  }

  /** One use of a store, held open for it, and ranked least recently used if it was closed. */
  async look<T>(ref: RepositoryRef, use: (memory: MemoryStore) => Promise<T>): Promise<T> {
    if (!NAME.test(ref.name)) throw new Error(`not a repository name: ${JSON.stringify(ref.name)}`);
    await this.migrate();
    return this.#lease(ref, this.#epoch, true, (_slot, store) => use(store!), "least recently");
  }

  /**
   * Records a repository's new name (a rename or transfer), if it has a memory here. One with
   * none kept by id yet adopts a memory kept by name before the upgrade, under its old name or
   * its new, if one is its: no later event names the old one.
   */
  async rename(ref: RepositoryRef): Promise<boolean> {
    this.#keyOf(ref);
    if (!NAME.test(ref.name)) throw new Error(`not a repository name: ${JSON.stringify(ref.name)}`);
    await this.migrate();
    if (this.#isGone(ref)) return false;
    const renamed = await this.#lease(ref, this.#epoch, false, async (slot) => {
      const stored = await readRepositoryFile(slot.directory);
      if (!stored) return this.#nameFirst(slot, ref, false);
      // Damaged, it is written again: its directory says whose it is, the event its name.
      if (stored === DAMAGED || stored.name !== ref.name)
        await this.#writeRepositoryFile(slot, ref);
      return true;
    });
    if (renamed) await this.#mergeLegacy(ref);
    return renamed;
  }

  /**
   * Takes into a memory already kept by id what the old name's memory from before the upgrade
   * holds that no backfill brings back (notes, answers, comments), when that memory is its: an
   * event under the new name whose job ran before the rename's (another thread) had opened a new
   * memory first, and the old one, its notes with it, stayed waiting for good (found by a
   * review). Its issues and pull requests come from the new memory's own backfill. The records
   * are added before the old memory is removed: a crash between the two leaves it waiting,
   * listed for an operator, with its records in the new memory already (the same ids).
   */
  async #mergeLegacy(ref: RepositoryRef): Promise<void> {
    const previous = formerNameOf(ref);
    if (!previous) return;
    const legacy = legacyDirectoryOf(this.#options.directory, ref.installation, previous);
    if (!(await isWaitingLegacyMemory(legacy))) return;
    const verdict = await judgeLegacyMemory(legacy, ref.createdAt);
    if (!verdict.adopt) return;
    let old: VectraMemoryStore;
    try {
      old = await VectraMemoryStore.open({
        ...this.#options,
        directory: legacy,
        repo: previous,
        log: this.#options.log.child({ legacy }),
      });
    } catch (error) {
      // Made with another embedding model: it cannot be opened with this one. It stays
      // waiting, listed, for an operator.
      if (!(error instanceof MemoryMismatchError)) throw error;
      this.#options.log.warn({ err: error, legacy }, "name-keyed memory not merged");
      return;
    }
    let kept: MemoryRecord[];
    try {
      kept = (await old.list()).filter((r) => r.kind !== "issue" && r.kind !== "pull_request");
    } finally {
      await old.close();
    }
    if (kept.length > 0)
      await this.look(ref, (memory) =>
        memory.addMany(kept.map((record) => ({ ...record, repo: ref.name }))),
      );
    await rm(legacy, { recursive: true, force: true });
    this.#options.log.info(
      { legacy, records: kept.length, name: ref.name },
      `name-keyed memory of ${previous} merged into ${ref.name}'s, opened before its rename`,
    );
  }

  /**
   * Deletes a repository's memory and its backfill progress, and a name-keyed memory of its
   * name still waiting for adoption unless it is older than the repository. Later opens are
   * refused, after a restart too, until the repository is added back (`readmit`).
   */
  async delete(
    namespace: MemoryNamespace & {
      name?: string | undefined;
      createdAt?: string | number | undefined;
    },
  ): Promise<boolean> {
    // From this call on, opens are refused and handles opened before are stale.
    const key = this.#keyOf(namespace);
    this.#deletedAt.set(key, ++this.#epoch);
    this.#removed.add(key);
    const slot = this.#slotOf(namespace);
    let removed = false;
    await this.#exclusive(slot, async () => {
      await this.migrate();
      // Durable before anything is deleted: a crash after it still refuses the memory.
      await this.#removed.save();
      if (namespace.name && NAME.test(namespace.name)) {
        const legacy = legacyDirectoryOf(
          this.#options.directory,
          namespace.installation,
          namespace.name,
        );
        // One written before this repository was created is an earlier repository's of that
        // name (renamed away, it may still claim it): it stays. Without the event's creation
        // time, the one its memory recorded judges.
        const stored = await readRepositoryFile(slot.directory);
        const createdAt =
          namespace.createdAt ?? (stored && stored !== DAMAGED ? stored.createdAt : undefined);
        if (!(await isEarlierRepositorysMemory(legacy, createdAt)))
          await rm(legacy, { recursive: true, force: true });
      }
      removed = await this.#discard(slot);
    });
    if (removed) this.#options.log.info({ memory: key }, "memory deleted");
    return removed;
  }

  /** Deletes the memories of every repository of an installation (it was uninstalled). */
  async deleteInstallation(installation: number): Promise<boolean> {
    if (!Number.isSafeInteger(installation) || installation <= 0)
      throw new Error(`not an installation id: ${installation}`);
    // From this call on, opens are refused and handles opened before are stale.
    const key = String(installation);
    this.#deletedAt.set(key, ++this.#epoch);
    this.#removed.add(key);
    const slots = [...this.#slots.values()].filter(
      (s) => s.namespace.installation === installation,
    );
    await this.migrate();
    await this.#removed.save();
    await Promise.all(
      slots.map((slot) =>
        this.#exclusive(slot, async () => {
          await this.#closeStore(slot).catch((error: unknown) =>
            this.#options.log.warn({ err: error, memory: slot.key }, "memory not flushed"),
          );
        }),
      ),
    );
    const directory = join(this.#options.directory, key);
    const repositories = (await readdirOrEmpty(directory))
      .filter((name) => NUMERIC.test(name))
      .map((name) => join(directory, name));
    const removed = await this.#removeDirectory(directory, repositories);
    await rm(join(this.#options.directory, LEGACY_DIRECTORY, key), {
      recursive: true,
      force: true,
    });
    if (removed) this.#options.log.info({ installation }, "installation's memories deleted");
    return removed;
  }

  /** Whether opens are refused: the repository's or its installation's memory was deleted. */
  async isRefused(namespace: MemoryNamespace): Promise<boolean> {
    await this.migrate();
    return this.#isGone(namespace);
  }

  /**
   * A repository added back to its installation: its memory may open again, empty. A deletion
   * cut short after it was recorded (a crash while the store closed, a move the lock refused)
   * left the directory, which had opened again, records and backfill progress and all: it goes
   * first, and while it cannot, the memory stays refused.
   */
  async readmit(namespace: MemoryNamespace): Promise<void> {
    const key = this.#keyOf(namespace);
    await this.migrate();
    if (!this.#removed.has(key)) return;
    const slot = this.#slotOf(namespace);
    await this.#exclusive(slot, async () => {
      if (await this.#discard(slot))
        this.#options.log.info({ memory: key }, "memory deleted: its deletion had been cut short");
    });
    this.#removed.delete(key);
    await this.#removed.save();
  }

  locationOf(namespace: MemoryNamespace): string {
    return this.directoryOf(namespace);
  }

  directoryOf(namespace: MemoryNamespace): string {
    this.#keyOf(namespace);
    return join(
      this.#options.directory,
      String(namespace.installation),
      String(namespace.repository),
    );
  }

  /** A repository's backfill progress, read without opening its store. */
  async readBackfillState(namespace: MemoryNamespace): Promise<BackfillState | undefined> {
    await this.migrate();
    return readBackfillState(this.directoryOf(namespace));
  }

  /** One process holds the directory (its lock says so): its backfills are its own. */
  async claimBackfill(): Promise<boolean> {
    return true;
  }

  /** Every namespace with a memory on disk, with its recorded name. */
  async list(): Promise<StoredNamespace[]> {
    await this.migrate();
    const found: StoredNamespace[] = [];
    for (const installation of await readdirOrEmpty(this.#options.directory)) {
      if (!NUMERIC.test(installation)) continue;
      for (const repository of await readdirOrEmpty(join(this.#options.directory, installation))) {
        if (!NUMERIC.test(repository)) continue;
        const directory = join(this.#options.directory, installation, repository);
        const stored = await readRepositoryFile(directory);
        // One damaged file holds up no other memory (a start's resumed backfills and catch-up,
        // the warm-up, `talos memory`); the repository's next event writes it again.
        if (stored === DAMAGED)
          this.#options.log.error(
            { file: join(directory, REPOSITORY_FILE) },
            "memory left out of the list: its repository.json is damaged; its repository's next event writes it again",
          );
        // A directory without one was never written to (a crash right after its mkdir).
        else if (stored)
          found.push({
            installation: stored.installation,
            repository: stored.repository,
            name: stored.name,
          });
      }
    }
    return found.sort((a, b) => a.installation - b.installation || a.repository - b.repository);
  }

  async has(namespace: MemoryNamespace): Promise<boolean> {
    await this.migrate();
    // Checked as every use of a namespace is: the ids name the directory.
    const directory = join(this.#options.directory, this.#keyOf(namespace));
    // A damaged repository.json still holds a memory: `list` leaves it out only to say so.
    return (await readRepositoryFile(directory)) !== undefined;
  }

  /** Name-keyed memories of earlier versions that no repository has claimed yet. */
  async listLegacy(): Promise<LegacyMemory[]> {
    await this.migrate();
    return listLegacyMemories(this.#options.directory);
  }

  /** The stores open now and their estimated RAM. */
  openStores(): { stores: number; bytes: number; inUse: number } {
    let stores = 0;
    let bytes = 0;
    let inUse = 0;
    for (const slot of this.#slots.values()) {
      if (!slot.store) continue;
      stores++;
      bytes += slot.bytes;
      if (slot.users > 0) inUse++;
    }
    return { stores, bytes, inUse };
  }

  /** Resolves once no store is being closed or deleted. */
  async whenSettled(): Promise<void> {
    for (;;) {
      const busy = [...this.#slots.values()].flatMap((slot) => slot.busy ?? []);
      if (busy.length === 0) return;
      await Promise.all(busy);
    }
  }

  /**
   * Opens the memories written most recently, keyword indexes and all, while the open stores
   * stay within the RAM cap (judged before each open by what the open stores hold, plus the
   * next one's int8 vectors, which are most of what it will). Opening a memory of 100,000
   * records and building its keyword index takes a few seconds: run at start, in the
   * background, this spares the first command on each of those repositories that wait. Skips
   * a memory deleted since the process started. Stops early on `closeAll`. Resolves with how
   * many it opened and left open.
   */
  warm(): Promise<number> {
    this.#warming ??= (async () => {
      let opened = 0;
      const dated = await Promise.all(
        (await this.list()).map(async (namespace) => {
          const directory = this.directoryOf(namespace);
          const [manifest, vectors] = await Promise.all(
            [MANIFEST, SNAPSHOT_FILES.codes].map((name) =>
              stat(join(directory, name)).catch(() => undefined),
            ),
          );
          return { namespace, written: manifest?.mtimeMs ?? 0, bytes: vectors?.size ?? 0 };
        }),
      );
      for (const { namespace, written, bytes } of dated.sort((a, b) => b.written - a.written)) {
        if (this.#closing || written === 0) break;
        // A warmed store holds texts, metadata and keyword indexes beside its vectors: the last
        // one may go over the cap, and is then closed again (see #warmOne), which ends the loop
        // here as its close goes on.
        if (this.openStores().bytes + bytes > this.#maxOpenBytes) break;
        try {
          const slot = await this.#warmOne(namespace);
          if (slot.store && !slot.busy) opened++;
        } catch (error) {
          // Deleted in this process (see #warmOne): it stays deleted, not brought back empty.
          if (error instanceof MemoryDeletedError) continue;
          // Its first call will meet the same error, and report it to whoever made the call.
          this.#options.log.warn(
            { err: error, memory: this.#keyOf(namespace) },
            "memory not opened ahead of its first use",
          );
        }
      }
      return opened;
    })();
    return this.#warming;
  }

  /** Flushes and closes every open store (on shutdown), once the calls under way end. */
  async closeAll(): Promise<void> {
    this.#closing = true;
    // A warm-up opens one store at a time; it stops after the one it is opening.
    await this.#warming?.catch(() => undefined);
    const results = await Promise.allSettled(
      [...this.#slots.values()].map((slot) => this.#exclusive(slot, () => this.#closeStore(slot))),
    );
    // Every store gets its chance to close; what failed is still in its log, and is said.
    const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    for (const error of failed)
      this.#options.log.error({ err: error }, "memory not flushed on close; its log keeps it");
    if (failed.length > 0) throw new AggregateError(failed, "memory stores failed to close");
  }

  /**
   * Opens a memory ahead of its first use and builds its keyword indexes. The warm-up goes
   * newest-written first, so each store it opens is less likely wanted than those it opened
   * before, or any a caller opened meanwhile: it goes in least recently used, and is the first
   * closed past the cap, rather than the newest-written. Leased as of epoch 0, so a memory with
   * any deletion in this process is refused: one deleted after the warm-up listed it, or whose
   * deletion was still under way as it listed, would otherwise be opened again, empty.
   */
  #warmOne(ref: StoredNamespace): Promise<Slot> {
    return this.#lease(
      ref,
      0,
      true,
      async (slot, store) => {
        await store!.warm();
        return slot;
      },
      "least recently",
    );
  }

  /**
   * Runs `use` with the namespace's slot held: the slot cannot be closed or deleted meanwhile.
   * With `open`, the store is opened first (and `use` gets it). The slot becomes the most
   * recently used, or with `used: "least recently"` (the warm-up) the least, unless its store
   * was open already: a caller's use ranks it then.
   */
  async #lease<T>(
    ref: RepositoryRef,
    since: number,
    open: boolean,
    use: (slot: Slot, store: VectraMemoryStore | undefined) => Promise<T>,
    used: "most recently" | "least recently" = "most recently",
  ): Promise<T> {
    for (;;) {
      this.#refuseGone(ref);
      this.#refuseStale(ref, since);
      const slot = this.#slotOf(ref);
      if (slot.busy) {
        await slot.busy;
        continue;
      }
      slot.users++;
      if (used === "most recently") {
        this.#slots.delete(slot.key);
        this.#slots.set(slot.key, slot);
      } else if (!slot.store) {
        moveToFront(this.#slots, slot.key);
      }
      let store: VectraMemoryStore | undefined;
      try {
        if (open) store = await this.#storeOf(slot, ref);
        return await use(slot, store);
      } finally {
        if (store) slot.bytes = store.estimateBytes();
        slot.users--;
        if (slot.users === 0) slot.drained?.();
        if (slot.users === 0 && !slot.store && !slot.busy && this.#slots.get(slot.key) === slot)
          this.#slots.delete(slot.key);
        this.#enforceCap();
      }
    }
  }

  #storeOf(slot: Slot, ref: RepositoryRef): Promise<VectraMemoryStore> {
    if (!slot.store) {
      const opening = this.#openStore(slot, ref);
      slot.store = opening;
      // A store that failed to open is not kept: the next call tries again.
      opening.catch(() => {
        if (slot.store === opening) slot.store = undefined;
      });
    }
    return slot.store;
  }

  async #openStore(slot: Slot, ref: RepositoryRef): Promise<VectraMemoryStore> {
    if (!slot.name) {
      const stored = await readRepositoryFile(slot.directory);
      if (stored === DAMAGED) {
        // The directory is the namespace's (by ids): the event names the repository again.
        this.#options.log.warn(
          { memory: slot.key, name: ref.name },
          "memory's repository.json is damaged: written again from the event",
        );
        await this.#writeRepositoryFile(slot, ref);
      } else if (stored) {
        slot.name = stored.name;
      } else {
        await this.#nameFirst(slot, ref, true);
      }
    }
    const store = await VectraMemoryStore.open({
      ...this.#options,
      directory: slot.directory,
      repo: slot.name ?? ref.name,
      log: this.#options.log.child({ memory: slot.key }),
    });
    slot.bytes = store.estimateBytes();
    return store;
  }

  /**
   * The first use of a repository's memory since the upgrade, with no `repository.json` yet: a
   * name-keyed one may be its. Then names it; with `create`, empty when none was its. One at a
   * time per slot, the check again included: an open and a rename at once (which do not hold
   * the store) adopt once. Whether the memory is there after.
   */
  #nameFirst(slot: Slot, ref: RepositoryRef, create: boolean): Promise<boolean> {
    return this.#naming(slot, async () => {
      const stored = await readRepositoryFile(slot.directory);
      if (stored === undefined) {
        if (!(await this.#adoptLegacy(slot, ref)) && !create) return false;
        await mkdir(slot.directory, { recursive: true });
      } else if (stored !== DAMAGED && stored.name === ref.name) {
        slot.name = stored.name;
        return true;
      }
      await this.#writeRepositoryFileNow(slot, ref);
      return true;
    });
  }

  /**
   * Adopts the name-keyed memory of the repository's name, else of its previous name (a rename
   * or transfer: only within the installation, as memory never crosses one), if it is its.
   * Whether one was adopted.
   */
  async #adoptLegacy(slot: Slot, ref: RepositoryRef): Promise<boolean> {
    const previous = formerNameOf(ref);
    const names = previous ? [ref.name, previous] : [ref.name];
    for (const name of names) {
      const legacy = legacyDirectoryOf(this.#options.directory, ref.installation, name);
      if (!(await isWaitingLegacyMemory(legacy))) continue;
      const log = this.#options.log.child({ memory: slot.key, legacy });
      const verdict = await judgeLegacyMemory(legacy, ref.createdAt);
      if (!verdict.adopt) {
        // Without the creation time nothing is decided: the memory stays for the operator.
        if (ref.createdAt !== undefined) {
          await rejectLegacyMemory(legacy, {
            installation: ref.installation,
            repository: ref.repository,
            name: ref.name,
            reason: verdict.reason,
          });
        }
        log.warn({ reason: verdict.reason }, `name-keyed memory not adopted by ${ref.name}`);
        continue;
      }
      // Only an empty directory (a crash before its repository.json) can be in the way; anything
      // else there stops the adoption with an error rather than being removed.
      await rmdir(slot.directory).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      });
      await rename(legacy, slot.directory);
      log.info({ oldestWrite: verdict.oldestWrite }, `name-keyed memory adopted by ${ref.name}`);
      return true;
    }
    return false;
  }

  #writeRepositoryFile(slot: Slot, ref: RepositoryRef): Promise<void> {
    return this.#naming(slot, () => this.#writeRepositoryFileNow(slot, ref));
  }

  /** Runs `work` after the slot's earlier writes of `repository.json`, and before its later. */
  #naming<T>(slot: Slot, work: () => Promise<T>): Promise<T> {
    const run = slot.naming.then(work);
    slot.naming = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #writeRepositoryFileNow(slot: Slot, ref: RepositoryRef): Promise<void> {
    const content: RepositoryFile = {
      installation: ref.installation,
      repository: ref.repository,
      name: ref.name,
      ...(ref.createdAt !== undefined ? { createdAt: ref.createdAt } : {}),
    };
    await writeFileAtomically(
      join(slot.directory, REPOSITORY_FILE),
      `${JSON.stringify(content, null, 2)}\n`,
    );
    slot.name = ref.name;
  }

  /**
   * Runs `work` alone on a slot: new calls wait, calls under way finish first. Returns its
   * outcome; the slot's `busy` only says when it is over.
   */
  #exclusive(slot: Slot, work: () => Promise<void>): Promise<void> {
    const previous = slot.busy;
    const run = (async () => {
      await previous;
      while (slot.users > 0) await new Promise<void>((resolve) => (slot.drained = resolve));
      slot.drained = undefined;
      await work();
    })();
    const settled: Promise<void> = run.then(
      () => this.#settle(slot, settled),
      () => this.#settle(slot, settled),
    );
    slot.busy = settled;
    return run;
  }

  #settle(slot: Slot, settled: Promise<void>): void {
    if (slot.busy !== settled) return;
    slot.busy = undefined;
    // A closed slot nobody uses is forgotten; the next call makes a new one.
    if (!slot.store && slot.users === 0 && this.#slots.get(slot.key) === slot)
      this.#slots.delete(slot.key);
  }

  async #closeStore(slot: Slot): Promise<void> {
    const opening = slot.store;
    if (!opening) return;
    try {
      const store = await opening.catch(() => undefined);
      await store?.close();
    } finally {
      slot.store = undefined;
      slot.bytes = 0;
    }
  }

  /**
   * Closes the least recently used idle stores until the open ones fit the cap. The store used
   * last stays open even alone over the cap: closing it would reload it on every call.
   */
  #enforceCap(): void {
    let total = 0;
    // A store being closed (`busy`) frees its RAM once closed: counting it meanwhile would close
    // another store for the same bytes at every call that ends before, one after the other.
    for (const slot of this.#slots.values()) if (slot.store && !slot.busy) total += slot.bytes;
    if (total <= this.#maxOpenBytes) return;
    const newest = [...this.#slots.keys()].at(-1);
    for (const slot of this.#slots.values()) {
      if (total <= this.#maxOpenBytes) return;
      if (!slot.store || slot.users > 0 || slot.busy || slot.key === newest) continue;
      total -= slot.bytes;
      const bytes = slot.bytes;
      this.#exclusive(slot, () => this.#closeStore(slot)).then(
        () => {
          this.#collectGarbage();
          this.#options.log.debug({ memory: slot.key, bytes }, "idle memory closed");
        },
        (error: unknown) =>
          this.#options.log.error(
            { err: error, memory: slot.key },
            "idle memory not flushed on close; its log keeps it",
          ),
      );
    }
    if (total > this.#maxOpenBytes && newest && !this.#warnedOverCap.has(newest)) {
      this.#warnedOverCap.add(newest);
      this.#options.log.warn(
        { memory: newest, bytes: total, maxBytes: this.#maxOpenBytes },
        "open memory exceeds TALOS_MEMORY_MAX_OPEN_MB: the stores open are in use, or one alone is larger",
      );
    }
  }

  /** Closes a repository's store and removes its directory, under its slot: whether there was one. */
  async #discard(slot: Slot): Promise<boolean> {
    await this.#closeStore(slot).catch((error: unknown) =>
      this.#options.log.warn(
        { err: error, memory: slot.key },
        "memory not flushed before deletion",
      ),
    );
    const removed = await this.#removeDirectory(slot.directory, [slot.directory]);
    slot.name = undefined;
    return removed;
  }

  /**
   * Moves `directory` away in one rename, holding the locks of the memory directories in it
   * (another process using one fails the deletion), then removes it.
   */
  async #removeDirectory(directory: string, locked: string[]): Promise<boolean> {
    // One move at a time: an installation's deletion and one of its repositories' would
    // otherwise race, each locking or moving what the other moves away (ENOENT, or this
    // process's own lock refused), and the installation's memories stayed on disk.
    const move = this.#moving.then(() => this.#moveToTrash(directory, locked));
    this.#moving = move.catch(() => undefined);
    const trash = await move;
    if (!trash) return false;
    await rm(trash, { recursive: true, force: true });
    return true;
  }

  async #moveToTrash(directory: string, locked: string[]): Promise<string | undefined> {
    if (!(await exists(directory))) return undefined;
    const trash = join(this.#options.directory, TRASH, randomUUID());
    const releases: Array<() => Promise<void>> = [];
    try {
      for (const path of locked) {
        if (await exists(path)) releases.push(await lockDirectory(path));
      }
      await mkdir(join(this.#options.directory, TRASH), { recursive: true });
      await rename(directory, trash);
    } finally {
      for (const release of releases) await release();
    }
    return trash;
  }

  #slotOf(namespace: MemoryNamespace): Slot {
    const key = this.#keyOf(namespace);
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = {
        key,
        namespace: { installation: namespace.installation, repository: namespace.repository },
        directory: this.directoryOf(namespace),
        store: undefined,
        users: 0,
        bytes: 0,
        busy: undefined,
        drained: undefined,
        name: undefined,
        naming: Promise.resolve(),
      };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  #keyOf({ installation, repository }: MemoryNamespace): string {
    if (
      !Number.isSafeInteger(installation) ||
      installation <= 0 ||
      !Number.isSafeInteger(repository) ||
      repository <= 0
    ) {
      throw new Error(
        `not a memory namespace: installation ${installation}, repository ${repository}`,
      );
    }
    return `${installation}/${repository}`;
  }

  #isGone(namespace: MemoryNamespace): boolean {
    return (
      this.#removed.has(String(namespace.installation)) || this.#removed.has(this.#keyOf(namespace))
    );
  }

  #refuseGone(ref: RepositoryRef): void {
    if (this.#isGone(ref)) {
      throw new MemoryDeletedError(
        `the memory of ${ref.name} (installation ${ref.installation}, repository ${ref.repository}) was deleted with its ${this.#removed.has(String(ref.installation)) ? "installation" : "repository"}`,
      );
    }
  }

  #refuseStale(ref: RepositoryRef, since: number): void {
    const deletedAt = Math.max(
      this.#deletedAt.get(this.#keyOf(ref)) ?? 0,
      this.#deletedAt.get(String(ref.installation)) ?? 0,
    );
    if (deletedAt > since) {
      throw new MemoryDeletedError(
        `the memory of ${ref.name} (installation ${ref.installation}, repository ${ref.repository}) was deleted while in use`,
      );
    }
  }
}

/** Makes `key` the first in `map`'s order (a Map keeps its insertion order). */
function moveToFront<K, V>(map: Map<K, V>, key: K): void {
  if (!map.has(key)) return;
  const entries = [...map];
  map.clear();
  for (const [k, v] of entries) if (k === key) map.set(k, v);
  for (const [k, v] of entries) if (k !== key) map.set(k, v);
}

/** The name the repository had before, when the event says and it is another name. */
function formerNameOf(ref: RepositoryRef): string | undefined {
  const previous = ref.previousName;
  return previous && NAME.test(previous) && previous.toLowerCase() !== ref.name.toLowerCase()
    ? previous
    : undefined;
}

const DAMAGED = "damaged";

/** `repository.json`: whose memory, and the creation time of the repository that opened it. */
interface RepositoryFile extends StoredNamespace {
  createdAt?: string | number | undefined;
}

async function readRepositoryFile(
  directory: string,
): Promise<RepositoryFile | typeof DAMAGED | undefined> {
  let text: string;
  try {
    text = await readFile(join(directory, REPOSITORY_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let stored: Partial<RepositoryFile>;
  try {
    stored = JSON.parse(text) as Partial<RepositoryFile>;
  } catch {
    return DAMAGED;
  }
  if (
    typeof stored?.installation !== "number" ||
    typeof stored.repository !== "number" ||
    typeof stored.name !== "string"
  )
    return DAMAGED;
  const { createdAt } = stored;
  return {
    installation: stored.installation,
    repository: stored.repository,
    name: stored.name,
    ...(typeof createdAt === "string" || typeof createdAt === "number" ? { createdAt } : {}),
  };
}

import { LRUCache } from "lru-cache";
import type { Clock } from "../clock.js";

/** What a cached GitHub read is about; invalidation and metrics work per kind. */
export type CacheKind = "repo" | "config" | "file" | "labels" | "permission" | "issue" | "pull";

export const CACHE_KINDS: readonly CacheKind[] = [
  "repo",
  "config",
  "file",
  "labels",
  "permission",
  "issue",
  "pull",
];

export interface CacheScope {
  /** The installation id, or `app`/`token` for requests made without one. Always first. */
  installation: string;
  /** `owner/repo`, lower-cased (GitHub names are case-insensitive). */
  repo: string;
  kind: CacheKind;
  /** The issue or pull number, or the user, for kinds about one object. */
  subject?: string | undefined;
}

/** A GitHub response as Octokit returns it. */
export interface CachedResponse {
  status: number;
  url: string;
  headers: Record<string, string | number | undefined>;
  data: unknown;
}

/** A cached read: the response, or the 404 GitHub gave (a missing config file is worth caching). */
export type CacheEntry =
  | { type: "response"; response: CachedResponse; etag?: string | undefined }
  | { type: "not-found"; url: string; body: unknown };

/**
 * An eviction's installation that is every installation: a repository's files are read through
 * each installation that reads them (`_extends` names a repository of another installation, or
 * none), and a push is told to only the one that holds it.
 */
export const ANY_INSTALLATION = "*";

export type EvictionScope =
  | { installation: string }
  | { installation: string; repo: string }
  | { installation: string; repo: string; kind: CacheKind }
  | { installation: string; repo: string; kind: CacheKind; subject: string };

export type CacheResult = "hit" | "miss" | "revalidated";

export interface GitHubCacheOptions {
  ttlMs: number;
  /** The most entries. */
  max: number;
  /**
   * The most bytes, as each entry's JSON length (TALOS_CACHE_MAX_MB). One entry may take an eighth
   * of it at most; a bigger response is served but not kept. Default 64 MiB.
   */
  maxBytes?: number | undefined;
  /** Time for the TTLs. */
  clock: Pick<Clock, "now">;
  /** Called once per read with how it was served. */
  onResult?: (kind: CacheKind, result: CacheResult) => void;
  /** Called after every read and eviction with the bytes the cache holds (for a gauge). */
  onSize?: (bytes: number) => void;
  /**
   * Called after each eviction this process decided (a webhook said the data changed), not
   * after those `evictFromPeer` applies: with REDIS_URL it tells the other instances.
   */
  onEvict?: (scope: EvictionScope) => void;
}

/**
 * Loads an entry. `stale` is the expired entry, if any, so the loader can revalidate it with
 * `If-None-Match`; it returns `stale` itself when GitHub answers 304.
 */
export type EntryLoader = (stale: CacheEntry | undefined) => Promise<CacheEntry>;

const SEPARATOR = "\u0000";

// Collaborator permissions are evicted by `member` events only when the app may receive them
// (they need the Members organization permission); otherwise a minute bounds their staleness.
const TTL_CAP_MS: Partial<Record<CacheKind, number>> = { permission: 60_000 };

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** Whether a key is under `scope`: an installation, narrowed in order to a repo, kind, subject. */
function matchKeys(scope: EvictionScope): (key: string) => boolean {
  const { repo, kind, subject } = scope as Partial<CacheScope>;
  const any = scope.installation === ANY_INSTALLATION;
  const parts = [any ? undefined : scope.installation, repo, kind, subject];
  const cut = parts.indexOf(undefined, 1);
  const prefix = (cut === -1 ? parts : parts.slice(0, cut)).join(SEPARATOR) + SEPARATOR;
  // Every installation's: the key past its installation, which a separator ends.
  return any
    ? (key: string) => key.startsWith(prefix, key.indexOf(SEPARATOR))
    : (key: string) => key.startsWith(prefix);
}

/**
 * An entry's size: its JSON's bytes in UTF-8 plus its key's. JSON is what GitHub sent, so the
 * figure tracks the response's size; V8 holds the parsed object in somewhat more, but in
 * proportion. Counted in characters, CJK text (3 bytes each) and a binary file read as text
 * weighed a third of their bytes, and the cache held 2.4 times its bound (found by a review).
 * Measured on Node 20: 23 µs for a repository (4 KB), 70 µs for 100 labels (16 KB), 2.7 ms for
 * a 750 KB file (1 MB of JSON), paid once per load, next to a request of 100 ms or more.
 */
export function estimateEntrySize(entry: CacheEntry, key: string): number {
  const json = JSON.stringify(entry) ?? "";
  return Math.max(1, Buffer.byteLength(json) + Buffer.byteLength(key));
}

/**
 * The installation-scoped TTL cache of GitHub reads. Every key starts with the installation id,
 * so one installation can never be served another's entry, even for the same `owner/repo`.
 * Concurrent misses for one key share one load. Expired entries stay (until the LRU bound evicts
 * them) so that the next read can revalidate them with their ETag.
 */
export class GitHubCache {
  readonly #lru: LRUCache<string, CacheEntry>;
  /**
   * The loads under way, by key. Kept here rather than in lru-cache's `fetch`: lru-cache hides a
   * key whose load is pending from `keys()`, and deleting one aborts it, failing every caller
   * waiting on it, so an eviction could neither find a load nor stop it from storing what it read.
   */
  readonly #loads = new Map<string, Promise<CacheEntry>>();
  readonly #onResult: GitHubCacheOptions["onResult"];
  readonly #onSize: GitHubCacheOptions["onSize"];
  readonly #onEvict: GitHubCacheOptions["onEvict"];
  readonly #ttlMs: number;

  constructor(options: GitHubCacheOptions) {
    this.#onResult = options.onResult;
    this.#onSize = options.onSize;
    this.#onEvict = options.onEvict;
    this.#ttlMs = options.ttlMs;
    const maxBytes = Math.max(1, Math.floor(options.maxBytes ?? DEFAULT_MAX_BYTES));
    this.#lru = new LRUCache<string, CacheEntry>({
      max: options.max,
      maxSize: maxBytes,
      // So that a few large reads (a big file, a long label list) cannot flush everything else.
      maxEntrySize: Math.max(1, Math.floor(maxBytes / 8)),
      sizeCalculation: estimateEntrySize,
      ttl: options.ttlMs,
      // Keep expired entries: their ETag makes the next read a 304 instead of a full response.
      allowStale: false,
      noDeleteOnStaleGet: true,
      perf: options.clock,
      // lru-cache otherwise reuses one reading of the clock for a millisecond of real time.
      ttlResolution: 0,
    });
  }

  /**
   * Serves `scope`/`request` from the cache, or loads it once however many callers wait. With
   * `refresh`, it is loaded whatever the cache holds (revalidated, when it has an ETag), and what
   * GitHub says then is kept for the reads after.
   */
  async fetch(
    scope: CacheScope,
    request: string,
    load: EntryLoader,
    { refresh = false }: { refresh?: boolean } = {},
  ): Promise<CacheEntry> {
    const key = [scope.installation, scope.repo, scope.kind, scope.subject ?? "", request].join(
      SEPARATOR,
    );
    const cached = refresh ? undefined : this.#lru.get(key);
    if (cached !== undefined) return this.#served(scope.kind, "hit", cached);
    const pending = refresh ? undefined : this.#loads.get(key);
    // A caller that joined another's in-flight load made no request of its own: a hit.
    if (pending !== undefined) return this.#served(scope.kind, "hit", await pending);

    const stale = this.#lru.peek(key, { allowStale: true });
    const loading = load(stale);
    // A refresh takes the key over: a load it overtook is not stored when it completes.
    this.#loads.set(key, loading);
    const ttl = Math.min(this.#ttlMs, TTL_CAP_MS[scope.kind] ?? Infinity);
    // Stored as the load settles, before the callers waiting on it resume, so that no read can
    // come between and find neither the load nor its entry.
    const entry = await loading.then(
      (loaded) => {
        // What a load read before an eviction may predate the change the eviction was for: its
        // callers get it (they asked before the change), but it is not kept for later reads.
        if (this.#settle(key, loading)) this.#lru.set(key, loaded, { ttl });
        return loaded;
      },
      (error: unknown) => {
        this.#settle(key, loading);
        throw error;
      },
    );
    const result = stale !== undefined && entry === stale ? "revalidated" : "miss";
    return this.#served(scope.kind, result, entry);
  }

  /** Ends a load. False when an eviction came while it ran: the key is no longer its. */
  #settle(key: string, loading: Promise<CacheEntry>): boolean {
    if (this.#loads.get(key) !== loading) return false;
    this.#loads.delete(key);
    return true;
  }

  #served(kind: CacheKind, result: CacheResult, entry: CacheEntry): CacheEntry {
    this.#onSize?.(this.#lru.calculatedSize);
    this.#onResult?.(kind, result);
    return entry;
  }

  /**
   * Drops every entry of an installation, narrowed in order to a repository, then a kind, then a
   * subject. Returns how many went. A load in flight for a dropped key is not stored when it
   * completes, and later reads of that key do not wait for it but load anew, so data read
   * before the change cannot come back.
   */
  evict(scope: EvictionScope): number {
    const evicted = this.evictFromPeer(scope);
    this.#onEvict?.(scope);
    return evicted;
  }

  /** An eviction another instance decided and broadcast: applied here, not told again. */
  evictFromPeer(scope: EvictionScope): number {
    const matches = matchKeys(scope);
    let evicted = 0;
    for (const key of [...this.#lru.keys()]) {
      if (matches(key)) {
        this.#lru.delete(key);
        evicted++;
      }
    }
    for (const key of [...this.#loads.keys()]) {
      if (matches(key)) {
        this.#loads.delete(key);
        evicted++;
      }
    }
    this.#onSize?.(this.#lru.calculatedSize);
    return evicted;
  }

  /**
   * The entries under `scope` (narrowed as `evict` narrows it) that a read would be served now,
   * expired ones left out; neither counted as reads nor made more recent. What is known of GitHub
   * without asking it.
   */
  peek(scope: EvictionScope): CacheEntry[] {
    const matches = matchKeys(scope);
    const entries: CacheEntry[] = [];
    for (const key of this.#lru.keys()) {
      const entry = matches(key) ? this.#lru.peek(key) : undefined;
      if (entry !== undefined) entries.push(entry);
    }
    return entries;
  }

  /**
   * Drops every entry and load of every installation, here only: what a lost connection to the
   * other instances may have left stale (see RedisCacheBroadcast). Returns how many went.
   */
  evictEverything(): number {
    const evicted = this.#lru.size + this.#loads.size;
    this.#lru.clear();
    // A load in flight is not stored when it completes, as after any eviction.
    this.#loads.clear();
    this.#onSize?.(this.#lru.calculatedSize);
    return evicted;
  }

  /** Entries held. */
  get size(): number {
    return this.#lru.size;
  }

  /** Bytes held, as `estimateEntrySize` counts them; never more than `maxBytes`. */
  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}

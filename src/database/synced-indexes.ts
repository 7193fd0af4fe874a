import type { Logger } from "pino";
import { Bm25Index } from "../memory/bm25-index.js";
import { NearDuplicateIndex } from "../memory/near-duplicate.js";
import type { MemoryNamespace } from "../memory/memory-registry.js";
import type { SearchOptions } from "../memory/memory-store.js";
import { QuantizedMatrix } from "../memory/quantized-matrix.js";
import type { ScanHelper } from "../memory/scan-helper.js";
import type { MemoryDatabase, SqlClient } from "./database.js";

/** Rows read per query while catching up: a first load of 100,000 records is many pages. */
const PAGE = 2_000;
/** What RAM keeps per record beyond its vector and postings: id, kind, state, time. */
export const RECORD_OVERHEAD_BYTES = 300;

/** A record's change as the catch-up reads it: `removed` rows are emptied tombstones. */
interface ChangedRow {
  id: string;
  seq: string | number;
  removed: boolean;
  kind: string | null;
  state: string | null;
  created_at: string | Date | null;
  text: string | null;
  embedding: Uint8Array | null;
  fingerprints: string[];
}

/**
 * One repository's search indexes in RAM (without pgvector): the int8 vectors, BM25 and the
 * near-duplicate fingerprints, as the local store keeps them, filled from PostgreSQL and kept
 * up to date by reading the rows written after `seq`.
 */
export class NamespaceIndex {
  readonly matrix: QuantizedMatrix;
  readonly keywords = new Bm25Index();
  readonly duplicates = new NearDuplicateIndex();
  readonly #slots = new Map<string, number>();
  readonly #free: number[] = [];
  readonly #kinds: Array<string | undefined> = [];
  readonly #states: Array<string | undefined> = [];
  readonly #created: number[] = [];
  /** The last write applied, and the memory it belongs to (a new generation starts empty). */
  seq = 0;
  generation = 0;
  /** A notification said there is more to read, or none may arrive (the connection dropped). */
  stale = true;
  #catchingUp: Promise<void> | undefined;

  constructor(dimension: number, helper?: ScanHelper) {
    this.matrix = new QuantizedMatrix(dimension, undefined, helper);
  }

  get size(): number {
    return this.#slots.size;
  }

  get bytes(): number {
    return (
      this.matrix.bytes +
      this.keywords.bytes +
      this.duplicates.bytes +
      this.#slots.size * RECORD_OVERHEAD_BYTES
    );
  }

  /** Whether `id` passes a search's filters. */
  accepter(options: SearchOptions): (id: string) => boolean {
    const kinds = options.kinds ? new Set<string>(options.kinds) : undefined;
    const excluded = new Set(options.excludeIds ?? []);
    const since = options.since === undefined ? undefined : Date.parse(options.since);
    return (id) => {
      const slot = this.#slots.get(id);
      if (slot === undefined || excluded.has(id)) return false;
      if (kinds && !kinds.has(this.#kinds[slot]!)) return false;
      if (options.state && this.#states[slot] !== options.state) return false;
      return since === undefined || this.#created[slot]! >= since;
    };
  }

  /** The approximate cosine of a record with a unit query (a keyword hit's score). */
  approximateScore(id: string, unit: Float32Array): number {
    const slot = this.#slots.get(id);
    const row = slot === undefined ? undefined : this.matrix.approximate(slot);
    if (!row) return 0;
    let sum = 0;
    for (let i = 0; i < row.length; i++) sum += row[i]! * unit[i]!;
    return sum;
  }

  /** The catch-up under way, if one is. */
  get reading(): Promise<void> | undefined {
    return this.#catchingUp;
  }

  /** Reads what was written since `seq`, one catch-up at a time; later callers share it. */
  catchUp(database: MemoryDatabase, namespace: MemoryNamespace): Promise<void> {
    this.#catchingUp ??= (async () => {
      try {
        // Marked before reading: a notification arriving meanwhile asks for another round.
        this.stale = false;
        await database.inScope(namespace, (client) => this.#read(client, namespace));
      } catch (error) {
        this.stale = true;
        throw error;
      } finally {
        this.#catchingUp = undefined;
      }
    })();
    return this.#catchingUp;
  }

  async #read(client: SqlClient, namespace: MemoryNamespace): Promise<void> {
    const { rows } = await client.query<{ generation: string | number }>(
      "SELECT generation FROM memory_repositories WHERE installation_id = $1 AND repository_id = $2",
      [namespace.installation, namespace.repository],
    );
    const generation = Number(rows[0]?.generation ?? 0);
    // Deleted, or deleted and made again: what this index holds belongs to no memory now.
    if (generation !== this.generation) {
      this.#clear();
      this.generation = generation;
      this.seq = 0;
    }
    if (generation === 0) return;
    for (;;) {
      const page = await client.query<ChangedRow>(
        `SELECT id, seq, removed, kind, state, created_at, text, embedding, fingerprints
           FROM memory_records
          WHERE installation_id = $1 AND repository_id = $2 AND seq > $3
          ORDER BY seq LIMIT ${PAGE}`,
        [namespace.installation, namespace.repository, this.seq],
      );
      for (const row of page.rows) this.#apply(row);
      if (page.rows.length < PAGE) return;
    }
  }

  #apply(row: ChangedRow): void {
    this.seq = Math.max(this.seq, Number(row.seq));
    const had = this.#slots.get(row.id);
    if (row.removed || row.embedding === null || row.text === null) {
      if (had === undefined) return;
      this.#slots.delete(row.id);
      this.matrix.clear(had);
      this.keywords.delete(had);
      this.duplicates.delete(row.id);
      this.#kinds[had] = undefined;
      this.#states[had] = undefined;
      this.#free.push(had);
      return;
    }
    const slot = had ?? this.#free.pop() ?? this.#slots.size + this.#free.length;
    this.#slots.set(row.id, slot);
    this.matrix.set(slot, row.id, toFloat32(row.embedding));
    this.keywords.set(slot, row.id, row.text);
    this.duplicates.setFingerprints(row.id, row.fingerprints);
    this.#kinds[slot] = row.kind ?? undefined;
    this.#states[slot] = row.state ?? undefined;
    this.#created[slot] = row.created_at === null ? 0 : new Date(row.created_at).getTime();
  }

  #clear(): void {
    for (const [id, slot] of this.#slots) {
      this.matrix.clear(slot);
      this.keywords.delete(slot);
      this.duplicates.delete(id);
    }
    this.#slots.clear();
    this.#free.length = 0;
    this.#kinds.length = 0;
    this.#states.length = 0;
    this.#created.length = 0;
  }
}

export interface SyncedIndexesOptions {
  database: MemoryDatabase;
  dimension: number;
  /** The RAM the indexes may take together; past it the least recently used are dropped. */
  maxBytes: number;
  log: Logger;
  scanHelper?: ScanHelper | undefined;
}

/** The channel memory writes are announced on: `{"i": installation, "r": repository}`. */
export const MEMORY_CHANNEL = "talos_memory";

/**
 * The search indexes of the repositories in use on this instance, kept in sync with PostgreSQL:
 * a write anywhere is announced (NOTIFY, on commit), and the index reads the rows after its
 * sequence number. While notifications may be lost (the listening connection dropped), every
 * search first reads what is new, so a search never misses a committed write.
 */
export class SyncedIndexes {
  readonly #options: SyncedIndexesOptions;
  /** In least recently used order. */
  readonly #indexes = new Map<string, NamespaceIndex>();
  #listener: { listening: () => boolean; close: () => Promise<void> } | undefined;

  private constructor(options: SyncedIndexesOptions) {
    this.#options = options;
  }

  static async open(options: SyncedIndexesOptions): Promise<SyncedIndexes> {
    const indexes = new SyncedIndexes(options);
    indexes.#listener = await options.database.listen(MEMORY_CHANNEL, {
      onMessage: (payload) => indexes.#notified(payload),
      onGap: () => {
        for (const index of indexes.#indexes.values()) index.stale = true;
      },
    });
    return indexes;
  }

  /** The namespace's index, with every write committed before this call in it. */
  async get(namespace: MemoryNamespace): Promise<NamespaceIndex> {
    const key = keyOf(namespace);
    let index = this.#indexes.get(key);
    if (!index) {
      index = new NamespaceIndex(this.#options.dimension, this.#options.scanHelper);
      this.#indexes.set(key, index);
    }
    this.#indexes.delete(key);
    this.#indexes.set(key, index);
    // Without notifications, every search reads what is new.
    if (!this.#listener?.listening()) index.stale = true;
    // A catch-up under way (a warm-up's first load, say) is waited for: the index is not
    // marked stale while it reads, yet holds only part of what it will. A catch-up that began
    // before a write committed may have missed it: its notification marks the index stale
    // again, and the loop reads once more.
    for (;;) {
      const reading = index.reading;
      if (reading) await reading.catch(() => undefined);
      else if (index.stale) await index.catchUp(this.#options.database, namespace);
      else break;
    }
    this.#enforceCap(index);
    return index;
  }

  /** After this instance's own write: the index (if loaded) reads it before the write resolves. */
  async written(namespace: MemoryNamespace): Promise<void> {
    const index = this.#indexes.get(keyOf(namespace));
    if (!index) return;
    index.stale = true;
    await this.get(namespace);
  }

  drop(namespace: MemoryNamespace): void {
    this.#indexes.get(keyOf(namespace))?.matrix.release();
    this.#indexes.delete(keyOf(namespace));
  }

  /**
   * Whether an index of `records` records would fit beside those loaded, judged by its int8
   * vectors and what each record keeps (its postings are not known before it is read).
   */
  fits(records: number): boolean {
    const bytes = records * (this.#options.dimension + RECORD_OVERHEAD_BYTES);
    return this.stats().bytes + bytes <= this.#options.maxBytes;
  }

  /** The RAM one namespace's index takes, if it is loaded. */
  bytesOf(namespace: MemoryNamespace): number {
    return this.#indexes.get(keyOf(namespace))?.bytes ?? 0;
  }

  stats(): { stores: number; bytes: number; inUse: number } {
    let bytes = 0;
    for (const index of this.#indexes.values()) bytes += index.bytes;
    return { stores: this.#indexes.size, bytes, inUse: 0 };
  }

  async close(): Promise<void> {
    await this.#listener?.close();
    for (const index of this.#indexes.values()) index.matrix.release();
    this.#indexes.clear();
  }

  #notified(payload: string): void {
    let namespace: MemoryNamespace;
    let seq: unknown;
    try {
      const parsed = JSON.parse(payload) as { i?: unknown; r?: unknown; s?: unknown };
      if (!Number.isSafeInteger(parsed.i) || !Number.isSafeInteger(parsed.r)) return;
      namespace = { installation: parsed.i as number, repository: parsed.r as number };
      seq = parsed.s;
    } catch {
      return;
    }
    const index = this.#indexes.get(keyOf(namespace));
    // A write this index already read (this instance's own); a deletion has no `s`.
    if (!index || (typeof seq === "number" && index.seq >= seq)) return;
    index.stale = true;
    // Read now, so that the next search finds it done; a failure leaves it stale for that search.
    index
      .catchUp(this.#options.database, namespace)
      .catch((error: unknown) =>
        this.#options.log.warn({ err: error, memory: keyOf(namespace) }, "memory catch-up failed"),
      );
  }

  #enforceCap(keep: NamespaceIndex): void {
    let total = 0;
    for (const index of this.#indexes.values()) total += index.bytes;
    for (const [key, index] of this.#indexes) {
      if (total <= this.#options.maxBytes) return;
      if (index === keep) continue;
      this.#indexes.delete(key);
      index.matrix.release();
      total -= index.bytes;
    }
  }
}

function keyOf({ installation, repository }: MemoryNamespace): string {
  return `${installation}/${repository}`;
}

/** A float32 vector from its little-endian bytes (a copy: the bytes may be unaligned). */
export function toFloat32(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import { LOCK_NAME, lockDirectory, MemoryLockedError } from "./directory-lock.js";
import { describeEmbedder, type Embedder } from "./embedder.js";
import { Bm25Index } from "./bm25-index.js";
import { DEFAULT_FUSION, searchHybrid } from "./hybrid-search.js";
import {
  InvalidMemoryError,
  MEMORY_KINDS,
  type MemoryInput,
  type MemoryKind,
  type MemoryRecord,
  type MemoryStats,
  type MemoryStore,
  type MetadataValue,
  type SearchHit,
  type SearchOptions,
} from "./memory-store.js";
import { NearDuplicateIndex } from "./near-duplicate.js";
import { VectorMatrix } from "./vector-matrix.js";
import { AtomicFileStorage, readSegment, writeSegment, type SegmentItem } from "./vectra-files.js";
import { MemoryCorruptError, WriteAheadLog } from "./write-ahead-log.js";

/** The embedder differs from the one the memories were embedded with. */
export class MemoryMismatchError extends Error {
  override name = "MemoryMismatchError";
}

export interface VectraMemoryStoreOptions {
  directory: string;
  /** `owner/repo`, or another name of the store for messages. */
  repo: string;
  embedder: Embedder;
  /** Records per batch: a flush starts once this many wait. */
  batchSize: number;
  /** A waiting record is flushed within this long. */
  flushMs: number;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Records per index file; a flush rewrites only the files it touches. */
  segmentSize?: number;
  /** Keeps the directory to this store; tests that play a crash within one process swap it. */
  lockDirectory?: typeof lockDirectory;
}

interface Manifest {
  format: 1;
  model: string;
  dimension: number;
  /** Index files, by number. */
  segments: number[];
  /** The last log segment the index files hold. */
  checkpoint: number;
}

type LogValue =
  { op: "put"; record: MemoryRecord; hash: string; vector: string } | { op: "del"; id: string };

interface Stored {
  record: MemoryRecord;
  hash: string;
  segment: number;
  /** What the record takes in RAM, estimated. */
  bytes: number;
}

type Op =
  | { type: "write"; values: LogValue[]; done: (error?: unknown) => void }
  | { type: "flush"; done: (error?: unknown) => void };

const MANIFEST = "manifest.json";
const ID = /^[\w.:-]{1,200}$/;
const MAX_TEXT = 20_000;
// Up to this many words, a keyword (BM25) hit is kept below `minScore`: embeddings of a short
// query are vague, and its words are the better signal. A longer query (an issue's text) shares
// some word with almost anything, so there a keyword hit must reach `minScore` like any other.
const SHORT_QUERY_WORDS = 4;
// A record's objects, its map entries and its hash, beyond the two bytes a character of its
// strings takes (V8 keeps some strings at one byte a character: the estimate errs high).
const RECORD_OVERHEAD_BYTES = 400;

const segmentFile = (n: number) => `segment-${String(n).padStart(6, "0")}.pb`;
const hashText = (text: string) => createHash("sha256").update(text).digest("base64");

/**
 * A repository's memory: vectra index files, a write-ahead log, and an in-memory vector matrix.
 *
 * - `add()` resolves once the record is in the log and fsynced, and it is searchable at once.
 *   Concurrent adds share one write and one fsync (group commit), in arrival order.
 * - A flush (every `batchSize` records, after `flushMs`, on `flush()` and on close) rotates the
 *   log, rewrites only the index files whose records changed (each at most `segmentSize`
 *   records, written atomically), records the checkpoint, and deletes the old log segments. Its
 *   cost depends on the segment size, not on how many records the memory holds.
 * - Opening replays the log after the last checkpoint, then flushes. A crash at any point leaves
 *   either the old or the new index files, and the log still holds whatever they lack.
 */
export class VectraMemoryStore implements MemoryStore {
  readonly #options: VectraMemoryStoreOptions;
  readonly #storage = new AtomicFileStorage();
  readonly #matrix: VectorMatrix;
  /**
   * The keyword and near-duplicate indexes, built from #records on the first search and kept in
   * step with every put and delete after it: a store opened for a backfill, a stats call or a
   * command that never searches does not pay for them (seconds at 100,000 records).
   */
  #text: { keywords: Bm25Index; duplicates: NearDuplicateIndex } | undefined;
  readonly #records = new Map<string, Stored>();
  readonly #members = new Map<number, Set<string>>();
  readonly #dirty = new Set<number>();
  readonly #queue: Op[] = [];
  #manifest: Manifest;
  #wal!: WriteAheadLog;
  #pending = 0;
  #draining = false;
  #flushQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;
  /** Set when another process took the directory's lock over: nothing more may be written. */
  #lockLost: Error | undefined;
  #recordBytes = 0;
  readonly #unlock: () => Promise<void>;

  private constructor(
    options: VectraMemoryStoreOptions,
    manifest: Manifest,
    unlock: () => Promise<void>,
  ) {
    this.#options = options;
    this.#manifest = manifest;
    this.#unlock = unlock;
    this.#matrix = new VectorMatrix(manifest.dimension);
  }

  static async open(options: VectraMemoryStoreOptions): Promise<VectraMemoryStore> {
    const { directory } = options;
    await mkdir(directory, { recursive: true });
    let store: VectraMemoryStore | undefined;
    const lock = options.lockDirectory ?? lockDirectory;
    const unlock = await lock(directory, {
      onCompromised: (error) => {
        options.log.error(
          { err: error, directory },
          "memory lock lost to another process; this store stops writing",
        );
        if (store) store.#loseLock(error);
      },
    });
    try {
      store = await VectraMemoryStore.#load(options, unlock);
      return store;
    } catch (error) {
      await unlock();
      throw error;
    }
  }

  static async #load(
    options: VectraMemoryStoreOptions,
    unlock: () => Promise<void>,
  ): Promise<VectraMemoryStore> {
    const { directory, embedder, log } = options;
    const existing = await readManifest(join(directory, MANIFEST));
    if (
      existing &&
      (existing.model !== embedder.model || existing.dimension !== embedder.dimension)
    ) {
      throw new MemoryMismatchError(
        `${directory} holds memories embedded with ${describeEmbedder(existing)}, but the configured embedder is ${describeEmbedder(embedder)}; their vectors cannot be compared. Configure ${existing.model} again, or delete the directory and run a backfill to rebuild it.`,
      );
    }
    const manifest: Manifest = existing ?? {
      format: 1,
      model: embedder.model,
      dimension: embedder.dimension,
      segments: [],
      checkpoint: 0,
    };
    const store = new VectraMemoryStore(options, manifest, unlock);
    await store.#removeLeftovers();
    for (const segment of manifest.segments) await store.#loadSegment(segment);
    const { wal, entries } = await WriteAheadLog.open<LogValue>(
      directory,
      manifest.checkpoint,
      log,
    );
    store.#wal = wal;
    for (const entry of entries) store.#apply(entry.value);
    store.#options.metrics.memoryRecords.inc(store.#records.size);
    if (entries.length > 0 || !existing) {
      log.info(
        { directory, replayed: entries.length, records: store.#records.size },
        "memory opened; compacting the log",
      );
      await store.#checkpoint();
    }
    return store;
  }

  get relatedScore(): number {
    return this.#options.embedder.relatedScore;
  }

  async add(input: MemoryInput): Promise<MemoryRecord> {
    const [record] = await this.addMany([input]);
    return record!;
  }

  async addMany(inputs: MemoryInput[]): Promise<MemoryRecord[]> {
    const started = performance.now();
    const records = inputs.map((input) => this.#validate(input));
    // Embed outside the write queue, and only texts that changed: a re-added source with the
    // same text keeps its vector.
    const hashes = records.map((r) => hashText(r.text));
    const stale = records.filter((r, i) => this.#records.get(r.id)?.hash !== hashes[i]);
    const vectors = await this.#options.embedder.embed(stale.map((r) => r.text));
    const fresh = new Map(stale.map((r, i) => [r.id, vectors[i]!]));
    const values: LogValue[] = records.map((record, i) => {
      const vector = fresh.get(record.id) ?? this.#matrix.get(record.id);
      if (!vector) throw new Error(`no vector for ${record.id}`);
      return {
        op: "put",
        record,
        hash: hashes[i]!,
        vector: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64"),
      };
    });
    await this.#run({ type: "write", values });
    const seconds = (performance.now() - started) / 1000;
    for (let i = 0; i < records.length; i++)
      this.#options.metrics.memoryAddDuration.observe(seconds / records.length);
    return records;
  }

  async remove(id: string): Promise<boolean> {
    if (!this.#records.has(id)) return false;
    await this.#run({ type: "write", values: [{ op: "del", id }] });
    return true;
  }

  async get(id: string): Promise<MemoryRecord | undefined> {
    return this.#records.get(id)?.record;
  }

  async list(): Promise<MemoryRecord[]> {
    return [...this.#records.values()].map((stored) => stored.record);
  }

  /**
   * What this store holds in RAM, estimated: the vector matrix as allocated (vectors × padded
   * dimensions × 4 bytes, with its room to grow), every record's strings and objects, and the
   * keyword and near-duplicate indexes.
   */
  estimateBytes(): number {
    const text = this.#text ? this.#text.keywords.bytes + this.#text.duplicates.bytes : 0;
    return this.#matrix.bytes + this.#recordBytes + text;
  }

  /**
   * Records that share an error line, panic message or stack trace with `query` first, then the
   * vector and BM25 rankings fused (see hybrid-search.ts). `minScore` is a cosine similarity;
   * a near-exact duplicate is kept below it, and so is a keyword hit of a short query.
   */
  async search(query: string, options: SearchOptions): Promise<SearchHit[]> {
    const [vector] = await this.#options.embedder.embed([query]);
    const kinds = options.kinds ? new Set<string>(options.kinds) : undefined;
    const excluded = new Set(options.excludeIds ?? []);
    const accept = (id: string) => {
      const record = this.#records.get(id)?.record;
      if (!record || excluded.has(id)) return false;
      if (kinds && !kinds.has(record.kind)) return false;
      if (options.state && record.state !== options.state) return false;
      return !options.since || record.createdAt >= options.since;
    };
    const short = query.trim().split(/\s+/).length <= SHORT_QUERY_WORDS;
    const minScore = options.minScore ?? -1;
    const indexes = { matrix: this.#matrix, ...this.#textIndexes() };
    // Every candidate of both rankings, so that `minScore` leaves the best `k` of those it keeps.
    const k = Math.max(options.k, DEFAULT_FUSION.pool);
    return searchHybrid(indexes, query, vector!, { k, accept })
      .filter((hit) => hit.shared > 0 || (short && hit.keyword) || hit.score >= minScore)
      .slice(0, options.k)
      .map((hit) => ({
        record: this.#records.get(hit.id)!.record,
        score: hit.score,
        keyword: hit.keyword,
      }));
  }

  async stats(): Promise<MemoryStats> {
    const byKind: Record<string, number> = {};
    for (const { record } of this.#records.values())
      byKind[record.kind] = (byKind[record.kind] ?? 0) + 1;
    let bytesOnDisk = 0;
    for (const name of await readdir(this.#options.directory)) {
      if (name === LOCK_NAME) continue;
      bytesOnDisk += (await stat(join(this.#options.directory, name))).size;
    }
    return {
      records: this.#records.size,
      byKind,
      pending: this.#pending,
      segments: this.#manifest.segments.length,
      bytesOnDisk,
      bytesInRam: this.estimateBytes(),
      model: this.#manifest.model,
      dimension: this.#manifest.dimension,
    };
  }

  flush(): Promise<void> {
    return this.#run({ type: "flush" });
  }

  /**
   * Flushes, then releases the log and the lock, even when the flush fails: whatever it could
   * not write is in the log, which the next open replays. The flush's error is thrown after.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearTimeout(this.#timer);
      let failure: unknown;
      if (!this.#lockLost) {
        await this.#run({ type: "flush" }, true).catch((error: unknown) => (failure = error));
      }
      await this.#wal.close();
      await this.#unlock();
      this.#options.metrics.memoryRecords.dec(this.#records.size);
      this.#options.metrics.memoryPendingRecords.dec(this.#pending);
      this.#pending = 0;
      if (failure) throw failure;
    })();
    return this.#closed;
  }

  #loseLock(error: Error): void {
    this.#lockLost = new MemoryLockedError(
      `${this.#options.directory}: another process took over the memory lock (${error.message}); nothing more is written here`,
      { cause: error },
    );
  }

  #validate(input: MemoryInput): MemoryRecord {
    if (this.#closed) throw new Error(`memory of ${this.#options.repo} is closed`);
    if (!ID.test(input.id))
      throw new InvalidMemoryError(`memory id ${JSON.stringify(input.id)} is not valid`);
    if (!MEMORY_KINDS.includes(input.kind))
      throw new InvalidMemoryError(`memory kind ${JSON.stringify(input.kind)} is not valid`);
    const text = input.text.trim().slice(0, MAX_TEXT);
    if (!text) throw new InvalidMemoryError(`memory ${input.id} has no text`);
    const createdAt = new Date(input.createdAt);
    if (Number.isNaN(createdAt.getTime()))
      throw new InvalidMemoryError(`memory ${input.id} has no valid created time`);
    return { ...input, text, createdAt: createdAt.toISOString() };
  }

  #run(
    op: { type: "write"; values: LogValue[] } | { type: "flush" },
    closing = false,
  ): Promise<void> {
    if (this.#lockLost) return Promise.reject(this.#lockLost);
    if (this.#closed && !closing)
      return Promise.reject(new Error(`memory of ${this.#options.repo} is closed`));
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...op, done: (error) => (error ? reject(error) : resolve()) } as Op);
      if (!this.#draining) void this.#drain();
    });
  }

  /** One writer: consecutive writes share one append and fsync; flushes run alone. */
  async #drain(): Promise<void> {
    this.#draining = true;
    while (this.#queue.length > 0) {
      if (this.#queue[0]!.type === "flush") {
        const op = this.#queue.shift()!;
        this.#flushQueued = false;
        await this.#checkpoint().then(() => op.done(), op.done);
        continue;
      }
      const batch: Array<Extract<Op, { type: "write" }>> = [];
      while (this.#queue[0]?.type === "write")
        batch.push(this.#queue.shift() as Extract<Op, { type: "write" }>);
      try {
        await this.#wal.append(batch.flatMap((op) => op.values));
      } catch (error) {
        for (const op of batch) op.done(error);
        continue;
      }
      const before = this.#records.size;
      for (const op of batch) for (const value of op.values) this.#apply(value);
      this.#options.metrics.memoryRecords.inc(this.#records.size - before);
      for (const op of batch) op.done();
      this.#scheduleFlush();
    }
    this.#draining = false;
  }

  #apply(value: LogValue): void {
    if (value.op === "del") {
      const stored = this.#records.get(value.id);
      if (!stored) return;
      this.#recordBytes -= stored.bytes;
      this.#records.delete(value.id);
      this.#matrix.delete(value.id);
      this.#text?.keywords.delete(value.id);
      this.#text?.duplicates.delete(value.id);
      this.#members.get(stored.segment)?.delete(value.id);
      this.#dirty.add(stored.segment);
    } else {
      const bytes = Buffer.from(value.vector, "base64");
      const vector = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      const previous = this.#records.get(value.record.id);
      const segment = previous?.segment ?? this.#openSegment();
      this.#matrix.set(value.record.id, vector);
      this.#setRecord(value.record, value.hash, segment, previous);
      this.#members.get(segment)!.add(value.record.id);
      this.#dirty.add(segment);
    }
    this.#pending++;
    this.#options.metrics.memoryPendingRecords.inc();
  }

  #setRecord(
    record: MemoryRecord,
    hash: string,
    segment: number,
    previous: Stored | undefined,
  ): void {
    let chars = record.id.length + record.text.length + record.repo.length;
    chars += (record.url?.length ?? 0) + (record.author?.length ?? 0) + record.createdAt.length;
    for (const [key, value] of Object.entries(record.metadata ?? {}))
      chars += key.length + String(value).length;
    const bytes = chars * 2 + RECORD_OVERHEAD_BYTES;
    this.#recordBytes += bytes - (previous?.bytes ?? 0);
    this.#records.set(record.id, { record, hash, segment, bytes });
    // The same text (a re-added source, a log entry replayed over its index file) keeps its entries.
    if (this.#text && previous?.hash !== hash) {
      this.#text.keywords.set(record.id, record.text);
      this.#text.duplicates.set(record.id, record.text);
    }
  }

  #textIndexes(): { keywords: Bm25Index; duplicates: NearDuplicateIndex } {
    if (!this.#text) {
      const text = { keywords: new Bm25Index(), duplicates: new NearDuplicateIndex() };
      for (const { record } of this.#records.values()) {
        text.keywords.set(record.id, record.text);
        text.duplicates.set(record.id, record.text);
      }
      this.#text = text;
    }
    return this.#text;
  }

  /** The index file new records go into: the last one, until it is full. */
  #openSegment(): number {
    const last = this.#manifest.segments.at(-1);
    const size = this.#options.segmentSize ?? 1_000;
    if (last !== undefined && (this.#members.get(last)?.size ?? 0) < size) return last;
    const next = (last ?? 0) + 1;
    this.#manifest.segments.push(next);
    this.#members.set(next, new Set());
    return next;
  }

  #scheduleFlush(): void {
    if (this.#pending >= this.#options.batchSize) {
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        this.#run({ type: "flush" }).catch((error: unknown) =>
          this.#options.log.error({ err: error }, "memory flush failed"),
        );
      }
    } else if (this.#pending > 0 && !this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush().catch((error: unknown) =>
          this.#options.log.error({ err: error }, "memory flush failed"),
        );
      }, this.#options.flushMs);
      this.#timer.unref();
    }
  }

  /** Writes the changed index files and the manifest, then drops the log they cover. */
  async #checkpoint(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === 0 && this.#dirty.size === 0 && (await this.#hasManifest())) return;
    const started = performance.now();
    const sealed = await this.#wal.rotate();
    for (const segment of [...this.#dirty].sort((a, b) => a - b)) {
      const items = [...(this.#members.get(segment) ?? [])].map((id) => this.#toItem(id));
      await writeSegment(this.#storage, join(this.#options.directory, segmentFile(segment)), items);
    }
    this.#manifest.checkpoint = sealed;
    await writeFileAtomically(
      join(this.#options.directory, MANIFEST),
      `${JSON.stringify(this.#manifest, null, 2)}\n`,
    );
    await this.#wal.deleteUpTo(sealed);
    this.#options.metrics.memoryPendingRecords.dec(this.#pending);
    this.#options.metrics.memoryFlushes.inc();
    this.#options.metrics.memoryFlushDuration.observe((performance.now() - started) / 1000);
    this.#options.log.debug(
      { segments: this.#dirty.size, records: this.#pending },
      "memory flushed",
    );
    this.#pending = 0;
    this.#dirty.clear();
  }

  async #hasManifest(): Promise<boolean> {
    return this.#storage.pathExists(join(this.#options.directory, MANIFEST));
  }

  #toItem(id: string): SegmentItem {
    const { record, hash } = this.#records.get(id)!;
    const metadata: Record<string, MetadataValue> = {
      kind: record.kind,
      repo: record.repo,
      text: record.text,
      created_at: record.createdAt,
      hash,
    };
    if (record.number !== undefined) metadata.number = record.number;
    if (record.author !== undefined) metadata.author = record.author;
    if (record.url !== undefined) metadata.url = record.url;
    if (record.state !== undefined) metadata.state = record.state;
    for (const [key, value] of Object.entries(record.metadata ?? {})) metadata[`x.${key}`] = value;
    return { id, vector: Array.from(this.#matrix.get(id)!), norm: 1, metadata };
  }

  async #loadSegment(segment: number): Promise<void> {
    const file = join(this.#options.directory, segmentFile(segment));
    let items: SegmentItem[];
    try {
      items = await readSegment(this.#storage, file);
    } catch (error) {
      throw new MemoryCorruptError(
        (error as NodeJS.ErrnoException).code === "ENOENT"
          ? `${file} is listed in ${MANIFEST} but missing`
          : (error as Error).message,
        { cause: error },
      );
    }
    const members = new Set<string>();
    for (const item of items) {
      if (item.vector.length !== this.#manifest.dimension) {
        throw new MemoryCorruptError(
          `${file}: ${item.id} has ${item.vector.length} dimensions, not ${this.#manifest.dimension}`,
        );
      }
      const m = item.metadata;
      const extra = Object.fromEntries(
        Object.entries(m)
          .filter(([key]) => key.startsWith("x."))
          .map(([key, value]) => [key.slice(2), value]),
      );
      const record: MemoryRecord = {
        id: item.id,
        kind: m.kind as MemoryKind,
        repo: String(m.repo),
        text: String(m.text),
        createdAt: String(m.created_at),
        ...(m.number !== undefined ? { number: Number(m.number) } : {}),
        ...(m.author !== undefined ? { author: String(m.author) } : {}),
        ...(m.url !== undefined ? { url: String(m.url) } : {}),
        ...(m.state !== undefined ? { state: String(m.state) } : {}),
        ...(Object.keys(extra).length > 0 ? { metadata: extra } : {}),
      };
      this.#matrix.set(item.id, item.vector);
      this.#setRecord(record, String(m.hash), segment, this.#records.get(item.id));
      members.add(item.id);
    }
    this.#members.set(segment, members);
  }

  /** Temporary files of an interrupted write, and index files a crash left unlisted. */
  async #removeLeftovers(): Promise<void> {
    const listed = new Set(this.#manifest.segments.map(segmentFile));
    for (const name of await readdir(this.#options.directory)) {
      if (name.endsWith(".tmp") || (/^segment-\d+\.pb$/.test(name) && !listed.has(name))) {
        await unlink(join(this.#options.directory, name));
      }
    }
  }
}

async function readManifest(file: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const manifest = JSON.parse(text) as Manifest;
    if (
      manifest.format !== 1 ||
      !Array.isArray(manifest.segments) ||
      typeof manifest.model !== "string"
    ) {
      throw new Error("unexpected content");
    }
    return manifest;
  } catch (error) {
    throw new MemoryCorruptError(
      `${file} is damaged (${(error as Error).message}); the memory in this directory cannot be opened`,
    );
  }
}

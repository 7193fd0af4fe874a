import { mkdir, readdir, readFile, stat, truncate, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import { isLockEntry, lockDirectory, MemoryLockedError } from "./directory-lock.js";
import { describeEmbedder, type Embedder } from "./embedder.js";
import { Bm25Index, type Bm25Part } from "./bm25-index.js";
import { RecordTable } from "./record-table.js";
import type { ScanHelper } from "./scan-helper.js";
import {
  asUnitVector,
  DEFAULT_FUSION,
  dot,
  keptHits,
  searchHybrid,
  unitVector,
} from "./hybrid-search.js";
import {
  isFiniteVector,
  isOfForgottenThread,
  isOlderVersion,
  validateEmbedding,
  validateMemory,
  withoutText,
  type MemoryInput,
  type MemoryKind,
  type MemoryPage,
  type MemoryRecord,
  type MemoryStats,
  type MemoryStore,
  type MetadataValue,
  type RecordMetadata,
  type SearchHit,
  type SearchOptions,
} from "./memory-store.js";
import { NearDuplicateIndex } from "./near-duplicate.js";
import { countWordsHere, type WordsCounter } from "./words-counter.js";
import {
  decodeSegmentWords,
  hashText,
  SegmentWordsBuilder,
  readWordsFiles,
  WORDS_FILE,
  wordsFile,
  type SegmentWords,
} from "./segment-words.js";
import {
  MAX_CHUNKS,
  MemorySnapshot,
  ROWS_FILE,
  rowsFile,
  SNAPSHOT_FORMAT,
  SnapshotUnusable,
  type SnapshotEntry,
  type SnapshotHeader,
  type SegmentCodes,
  type SegmentSums,
  type StoredRef,
} from "./memory-snapshot.js";
import { QuantizedMatrix, strideOf } from "./quantized-matrix.js";
import {
  appendSegment,
  AtomicFileStorage,
  readSegment,
  writeSegment,
  type SegmentItem,
  type SegmentRecord,
} from "./vectra-files.js";
import {
  checkLogSequence,
  logSegmentsIn,
  MemoryCorruptError,
  WriteAheadLog,
  type LogEntry,
  type LogFrame,
  type LogSegmentFile,
} from "./write-ahead-log.js";

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
  /** A second thread for the scan of large memories (scan-helper.ts); none: one thread. */
  scanHelper?: ScanHelper;
  /** Counts full segments' words (see segment-words.ts); default: on this thread, in slices. */
  wordsCounter?: WordsCounter;
}

interface Manifest {
  format: 1;
  model: string;
  dimension: number;
  /** Index files, by number. */
  segments: number[];
  /** The last log segment the index files hold. */
  checkpoint: number;
  /** Records (slots) per index file; absent in memories written before the snapshot. */
  segmentSize?: number;
  /**
   * Each index file's size at the checkpoint, by segment: a file found longer at open holds the
   * torn tail of an append that a crash cut short, and is cut back (the log holds those records).
   */
  indexBytes?: Record<string, number>;
  /**
   * Threads forgotten (`forgetThread`) up to the checkpoint: nothing of them but a note is
   * written again. The log holds those forgotten since.
   */
  forgotten?: number[];
}

/** A change, as applied; in the log a put's unit vector is its frame's bytes (float32). */
type LogValue =
  | { op: "put"; record: MemoryRecord; hash: string; unit: Float32Array }
  | { op: "del"; id: string }
  | { op: "forget"; number: number };
/** A put as logs written before the binary log hold it: the vector in base64. */
type LoggedValue =
  | Exclude<LogValue, { op: "put" }>
  | { op: "put"; record: MemoryRecord; hash: string; vector?: string };

/** What a flush writes of one segment, as it was when the flush started. */
interface SegmentPlan {
  segment: number;
  /** Positions the segment had. */
  length: number;
  /** The block of codes's crc32 and the runs to write, copied: adds go on changing them. */
  codes: SegmentCodes;
  /** By position: every record (a rewrite), or only those added since the last write. */
  entries: Array<SnapshotEntry | undefined>;
  /** An append's: the segment's sums as the snapshot holds them. */
  after?: SegmentSums;
}

/**
 * A record's text and unit vector, kept until a snapshot holds them. Each put makes a new one:
 * a flush lets go of the one it wrote only while it is still the record's.
 */
interface Fresh {
  text: string;
  unit: Float32Array;
}

type Op =
  | { type: "write"; values: LogValue[]; done: (error?: unknown) => void }
  | { type: "flush"; done: (error?: unknown) => void };

export const MANIFEST = "manifest.json";
const DEFAULT_SEGMENT_SIZE = 1_000;
// Snapshot reads that did not match are tried again after each flush that was writing, this many
// times, before the snapshot is called damaged: only flushes back to back could use them up.
const MAX_REREADS = 3;
// Segments whose rows an open reads ahead of the one it places (see #loadRows).
const ROWS_AHEAD = 8;
// The int8 scan's best 4 × k are rescored with their float32 vectors: on the benchmark's data
// and on embedded issue text this finds the exact top 5 at least 99% of the time.
export const RESCORE_FACTOR = 4;
// A record's object, map entry and slots in the store's and the keyword index's tables, and the
// garbage its load leaves, beyond its id's characters (the record table counts its own bytes).
// The open-store LRU counts this estimate against its cap. 700 bytes met the RSS the memory
// benchmark measured when records were objects; kept since they moved into the table, the
// estimate runs about a quarter above that RSS (262 MB against 190–215 at 100,000 records):
// the LRU errs toward fewer open stores.
const RECORD_OVERHEAD_BYTES = 700;
// Numbers a slot in `#refs`: text offset, text length, row crc32, generation.
const REF_WIDTH = 4;

const segmentFile = (n: number) => `segment-${String(n).padStart(6, "0")}.pb`;
const SEGMENT_FILE = /^segment-\d+\.pb$/;

/**
 * A repository's memory: vectra index files, a binary snapshot, a write-ahead log, and int8
 * vectors in RAM.
 *
 * - `add()` resolves once the record is in the log and fsynced, and it is searchable at once.
 *   Concurrent adds share one write and one fsync (group commit), in arrival order.
 * - A flush (every `batchSize` records, after `flushMs`, on `flush()` and on close) rotates the
 *   log, rewrites only the index files and snapshot blocks whose records changed (each at most
 *   `segmentSize` records), records the checkpoint, and deletes the old log segments. Its cost
 *   depends on the segment size, not on how many records the memory holds.
 * - Opening reads the snapshot (memory-snapshot.ts) when it covers the index files' checkpoint
 *   and checks out, or else the vectra files, then replays the log after the checkpoint and
 *   flushes. A crash at any point leaves either the old or the new index files, and the log
 *   still holds whatever they lack.
 * - Search scans the int8 vectors, then rescores the best with float32 vectors read from the
 *   snapshot; texts are read from it when shown.
 */
export class VectraMemoryStore implements MemoryStore {
  readonly #options: VectraMemoryStoreOptions;
  readonly #storage = new AtomicFileStorage();
  readonly #matrix: QuantizedMatrix;
  readonly #snapshot: MemorySnapshot;
  readonly #segmentSize: number;
  /**
   * The keyword and near-duplicate indexes, built on the first search (from the segments' words
   * files, and the texts they do not hold) and kept in step with every put and delete after it: a store opened for a backfill, a stats
   * call or a command that never searches does not pay for them.
   */
  #text: Promise<TextIndexes> | undefined;
  /** Ids put or deleted while the text indexes were being built: the build leaves them be. */
  #touched: Set<string> | undefined;
  #textIndexes: TextIndexes | undefined;
  /**
   * Full segments with a words file (see segment-words.ts), each with how many of its records
   * changed since it was counted: past a tenth, the next flush counts the segment again.
   */
  readonly #words = new Map<number, number>();
  /** The words files being written, one after another, off the flush's path. */
  #wordsWriting: Promise<void> = Promise.resolve();
  /** Set once `close` has waited for them: nothing more is written after the lock goes. */
  #wordsStopped = false;
  /**
   * Every record's slot, by id: slot = (segment − 1) × segmentSize + position. The rest is kept
   * by slot, in typed arrays (`#table`, `#refs`), not in an object a record: at 250,000 records
   * such objects took 6 MB per 100,000.
   */
  readonly #records = new Map<string, number>();
  /** By slot: the texts and vectors no snapshot holds yet. */
  readonly #fresh = new Map<number, Fresh>();
  /** Each segment's ids by position; a deleted record leaves a hole. */
  readonly #positions = new Map<number, Array<string | undefined>>();
  /** Segments to write at the next flush, with the positions whose vectors changed. */
  readonly #dirty = new Map<number, Set<number> | "all">();
  /** Per segment, the positions its index file and snapshot block hold: new ones are appended. */
  readonly #written = new Map<number, number>();
  /**
   * Segments whose files this process found as the snapshot records them, and has written
   * since: their next append needs no look at the disk first (a failed flush takes it out).
   */
  readonly #appendChecked = new Set<number>();
  /** By slot: every record's metadata and text hash. */
  readonly #table = new RecordTable();
  /**
   * By slot, four numbers: where the snapshot holds the record's text (offset, length), its
   * row's crc32, and the snapshot write that put them there (0: none has).
   */
  #refs = new Uint32Array(REF_WIDTH * 64);
  /** Counts the snapshot writes: a record's ref names the one that last wrote it. */
  #generation = 0;
  readonly #queue: Op[] = [];
  #manifest: Manifest;
  #header: SnapshotHeader;
  #wal!: WriteAheadLog;
  #pending = 0;
  #draining = false;
  #flushQueued = false;
  /** The writing of the flush under way: it ends before the next starts. */
  #flushing: Promise<void> | undefined;
  readonly #waitingFlushes: Op[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;
  /** Threads forgotten: nothing of them but a note is written (see `forgetThread`). */
  readonly #forgotten: Set<number>;
  /** Set when another process took the directory's lock over: nothing more may be written. */
  #lockLost: Error | undefined;
  #recordBytes = 0;
  #freshBytes = 0;
  readonly #unlock: () => Promise<void>;

  private constructor(
    options: VectraMemoryStoreOptions,
    manifest: Manifest,
    snapshot: MemorySnapshot,
    unlock: () => Promise<void>,
  ) {
    this.#options = options;
    this.#manifest = manifest;
    this.#forgotten = new Set(manifest.forgotten);
    this.#segmentSize = manifest.segmentSize ?? options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.#snapshot = snapshot;
    this.#unlock = unlock;
    this.#matrix = new QuantizedMatrix(manifest.dimension, undefined, options.scanHelper);
    this.#header = {
      format: SNAPSHOT_FORMAT,
      model: manifest.model,
      dimension: manifest.dimension,
      segmentSize: this.#segmentSize,
      checkpoint: manifest.checkpoint,
      segments: {},
    };
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
      segmentSize: options.segmentSize ?? DEFAULT_SEGMENT_SIZE,
    };
    const segmentSize = manifest.segmentSize ?? options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    const layout = {
      model: manifest.model,
      dimension: manifest.dimension,
      stride: strideOf(manifest.dimension),
      segmentSize,
    };
    // Checked before anything below deletes or cuts a file: damage is reported with the
    // directory as it was found.
    const names = await readdir(directory);
    const logs = logSegmentsIn(names);
    if (!existing) refuseMemoryWithoutManifest(directory, names, logs);
    checkLogSequence(directory, logs, manifest.checkpoint);
    await removeLeftovers(directory, manifest.segments);
    await cutTornTails(directory, manifest, new AtomicFileStorage(), log);
    const snapshot = await MemorySnapshot.open(directory, layout);
    const counted = (await readdir(directory))
      .filter((name) => WORDS_FILE.test(name))
      .map((name) => Number(/\d+/.exec(name)![0]));
    let store = new VectraMemoryStore(options, manifest, snapshot, unlock);
    let moved: LogValue[] = [];
    try {
      try {
        await store.#loadSnapshot();
      } catch (error) {
        if (!(error instanceof SnapshotUnusable)) throw error;
        if (manifest.segments.length > 0)
          log.info(
            { directory, reason: error.message },
            "memory snapshot not usable; reading the index files and writing a new snapshot",
          );
        store = new VectraMemoryStore(options, manifest, snapshot, unlock);
        moved = await store.#loadIndexFiles(await isLogAfter(directory, logs, manifest.checkpoint));
      }
      const { wal, entries } = await WriteAheadLog.open<LoggedValue>(
        directory,
        manifest.checkpoint,
        log,
      );
      store.#wal = wal;
      for (const segment of counted) store.#words.set(segment, 0);
      // A moved record is as its index file had it, before the log: applied first, so that what
      // the log did to it since (removed it, changed it, forgot its thread) stands.
      for (const value of moved) store.#apply(value);
      const movedIds = new Set(moved.map((value) => (value.op === "put" ? value.record.id : "")));
      const redone: LogValue[] = [];
      for (const entry of entries) {
        const value = fromLog(entry);
        if (value.op === "put" && !isFiniteVector(value.unit)) {
          // Logged before adds checked their vectors: its add failed, and no replay can apply it.
          log.warn(
            { directory, seq: entry.seq, entry: entry.entry, id: value.record.id },
            "memory log entry with a vector that is not finite skipped",
          );
          continue;
        }
        try {
          store.#apply(value);
        } catch (error) {
          // Whole and checksummed, yet not a record this store writes (a bug, another version).
          throw new MemoryCorruptError(
            `log ${entry.seq} entry ${entry.entry} of ${directory} is not a change this store can apply (${(error as Error).message})`,
            { cause: error },
          );
        }
        const id = value.op === "put" ? value.record.id : value.op === "del" ? value.id : "";
        if (movedIds.has(id)) redone.push(value);
      }
      // Logged before they leave their old segment, so that no crash can lose them; then the
      // log's own changes to them again, so that a replay of the log ends as this open did (a
      // forgotten thread's stay refused: the forget is replayed before them).
      if (moved.length > 0) await wal.append([...moved, ...redone].map(toFrame));
      store.#options.metrics.memoryRecords.inc(store.#records.size);
      if (entries.length > 0 || store.#dirty.size > 0 || !existing?.segmentSize) {
        log.info(
          { directory, replayed: entries.length, records: store.#records.size },
          "memory opened; compacting the log",
        );
        // As any flush that fails: what it did not write stays dirty, and the log holds it.
        await store
          .#checkpoint()
          .catch((error: unknown) =>
            log.warn({ err: error, directory }, "memory log not compacted on open; a flush will"),
          );
      }
      return store;
    } catch (error) {
      await store.#wal?.close();
      await snapshot.close();
      throw error;
    }
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
    // By position, not id: a batch may name one source twice, each copy with its own text.
    const stale = records.flatMap((r, i) => (this.#hashOf(r.id) === hashes[i] ? [] : [i]));
    const embed = this.#options.embedder.embed.bind(this.#options.embedder);
    const vectors = await embed(stale.map((i) => records[i]!.text));
    const fresh = new Map(stale.map((i, n) => [i, vectors[n]!]));
    const values: LogValue[] = await Promise.all(
      records.map(async (record, i) => {
        let vector = fresh.get(i) ?? (await this.#unitOf(record.id));
        // The stored vector is this text's only while the stored text is: another add of the
        // source may have landed during the embedding above (a webhook's edit while a backfill
        // page is embedded), and this put, applied after it, would pair its text with that vector.
        if (!fresh.has(i) && this.#hashOf(record.id) !== hashes[i]) vector = undefined;
        vector ??= (await embed([record.text]))[0];
        // Checked before the write is queued: a put that `#apply` throws on after its append
        // would fail the adds sharing that append, and its logged frame every later open.
        const unit = asUnitVector(validateEmbedding(record.id, vector, this.#matrix.dimension));
        return { op: "put" as const, record, hash: hashes[i]!, unit };
      }),
    );
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

  async forgottenThreads(): Promise<number[]> {
    return this.#forgottenList();
  }

  /**
   * One log entry and fsync, applied in log order: what it removes is decided as it is applied
   * (so a record of the thread written just before goes too), and every put after it is
   * refused. The count is of the records found now, in the record table: no text is read.
   */
  async forgetThread(number: number): Promise<number> {
    const removed = this.#threadRecords(number).length;
    await this.#run({ type: "write", values: [{ op: "forget", number }] });
    return removed;
  }

  async get(id: string): Promise<MemoryRecord | undefined> {
    return this.#full(id);
  }

  async list(): Promise<MemoryRecord[]> {
    const texts = new Map<string, string>();
    for (const segment of this.#positions.keys())
      for (const [id, text] of await this.#textsOf(segment)) texts.set(id, text);
    return [...this.#records].flatMap(([id, slot]) => {
      const text = texts.get(id);
      return text === undefined ? [] : [{ ...this.#metadataOf(slot, id), text }];
    });
  }

  /**
   * A segment's records a page: its texts are read together. A record changed after its page
   * was read keeps its place; one removed and added again takes a new slot (slots are never
   * reused), in a later segment, and comes again.
   */
  async listPage(cursor?: string): Promise<MemoryPage> {
    const after = cursor === undefined ? 0 : Number(cursor);
    const segments = [...this.#positions.keys()].filter((segment) => segment > after);
    if (segments.length === 0) return { records: [] };
    const segment = Math.min(...segments);
    const records = [...(await this.#textsOf(segment))].flatMap(([id, text]) => {
      const slot = this.#records.get(id);
      return slot === undefined ? [] : [{ ...this.#metadataOf(slot, id), text }];
    });
    return { records, ...(segments.length > 1 ? { next: String(segment) } : {}) };
  }

  /**
   * What this store holds in RAM, estimated: the int8 vectors as allocated (with their room to
   * grow), every record's metadata, the texts and float32 vectors no snapshot holds yet, and
   * the keyword and near-duplicate indexes.
   */
  estimateBytes(): number {
    const indexes = this.#textIndexes;
    const text = indexes ? indexes.keywords.bytes + indexes.duplicates.bytes : 0;
    return this.#matrix.bytes + this.#table.bytes + this.#recordBytes + this.#freshBytes + text;
  }

  /**
   * Records that share an error line, panic message or stack trace with `query` first, then the
   * vector and BM25 rankings fused (see hybrid-search.ts). `minScore` is a cosine similarity;
   * a near-exact duplicate is kept below it, and so is a keyword hit of a short query (unless
   * `shortQueryKeywords` is false).
   */
  async search(query: string, options: SearchOptions): Promise<SearchHit[]> {
    const [vector] = await this.#options.embedder.embed([query]);
    const unit = unitVector(vector!);
    const indexes = await this.#indexes();
    const kinds = options.kinds ? new Set<string>(options.kinds) : undefined;
    const excluded = new Set(options.excludeIds ?? []);
    const since = options.since === undefined ? undefined : Date.parse(options.since);
    const accept = (id: string) => {
      const slot = this.#records.get(id);
      if (slot === undefined || excluded.has(id)) return false;
      if (kinds && !kinds.has(this.#table.kind(slot))) return false;
      if (options.state && this.#table.state(slot) !== options.state) return false;
      return since === undefined || this.#table.createdAt(slot) >= since;
    };
    // Every candidate of both rankings, so that `minScore` leaves the best `k` of those it keeps.
    const k = Math.max(options.k, DEFAULT_FUSION.pool);
    const approximate = this.#matrix.candidates(unit, k, accept);
    const rescored = RESCORE_FACTOR * options.k;
    const head = await this.#rescore(
      unit,
      approximate.slice(0, rescored).map((c) => c.id),
    );
    const semantic = [...head, ...approximate.slice(rescored)];
    const scoreOf = (id: string) => {
      const slot = this.#records.get(id);
      const row = slot === undefined ? undefined : this.#matrix.approximate(slot);
      return row ? dot(unit, row) : 0;
    };
    // All of the fused candidates: cut at `k` before `minScore`, keyword hits below it could
    // push out hits that reach it, and fewer than `k` came back while more existed.
    const ranked = searchHybrid(indexes, query, semantic, {
      k,
      accept,
      self: options.excludeIds,
      scoreOf,
      limit: Number.POSITIVE_INFINITY,
    });
    const exact = new Map(head.map((hit) => [hit.id, hit.score]));
    return keptHits(
      ranked,
      query,
      options,
      async (hits) => {
        const missing = hits.filter((hit) => !exact.has(hit.id)).map((hit) => hit.id);
        for (const hit of await this.#rescore(unit, missing)) exact.set(hit.id, hit.score);
        return exact;
      },
      (id) => this.#full(id),
    );
  }

  async stats(): Promise<MemoryStats> {
    const byKind: Record<string, number> = {};
    for (const slot of this.#records.values()) {
      const kind = this.#table.kind(slot);
      byKind[kind] = (byKind[kind] ?? 0) + 1;
    }
    let bytesOnDisk = 0;
    for (const name of await readdir(this.#options.directory)) {
      if (isLockEntry(name)) continue;
      // A temporary file may be renamed between the listing and its stat.
      const info = await stat(join(this.#options.directory, name)).catch(() => undefined);
      bytesOnDisk += info?.size ?? 0;
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

  async warm(): Promise<void> {
    await this.#indexes();
  }

  /**
   * Flushes, then releases the log, the snapshot and the lock, even when the flush or a
   * release fails: whatever it could not write is in the log, which the next open replays, and
   * a lock kept would refuse this process's own next open of the memory until it restarts. The
   * first error is thrown after.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearTimeout(this.#timer);
      let failure: unknown;
      const noting = (error: unknown) => void (failure ??= error);
      if (!this.#lockLost) await this.#run({ type: "flush" }, true).catch(noting);
      // Those the last flushes queued (a backfill's last segments): the next start loads them.
      await this.#wordsWriting.catch(noting);
      this.#wordsStopped = true;
      await this.#wal.close().catch(noting);
      await this.#snapshot.close().catch(noting);
      await this.#unlock();
      this.#matrix.release();
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
    return validateMemory(input);
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
      if (this.#draining) return;
      this.#draining = true;
      // On the next turn: every add that callers start in this one (each several promise hops
      // from here) then joins the same append and fsync, instead of the first going alone.
      setImmediate(() => void this.#drain());
    });
  }

  /**
   * One writer: consecutive writes share one append and fsync. A flush starts alone, then
   * writes while the writes after it go on; one asked for meanwhile waits for it to end.
   */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      if (this.#queue[0]!.type === "flush") {
        const op = this.#queue.shift()!;
        this.#flushQueued = false;
        if (this.#flushing) {
          this.#waitingFlushes.push(op);
          continue;
        }
        let started: { writing: Promise<void> } | undefined;
        try {
          started = await this.#startCheckpoint();
        } catch (error) {
          op.done(error);
          continue;
        }
        if (!started) op.done();
        else
          this.#flushing = started.writing
            .then(() => op.done(), op.done)
            .finally(() => this.#flushEnded());
        continue;
      }
      const batch: Array<Extract<Op, { type: "write" }>> = [];
      while (this.#queue[0]?.type === "write")
        batch.push(this.#queue.shift() as Extract<Op, { type: "write" }>);
      const before = this.#records.size;
      let failed: { error: unknown } | undefined;
      // Applied once written, while the fdatasync runs: with many adders, all of them wait on
      // one fdatasync, and the CPU had nothing else to do meanwhile. An add still resolves only
      // once durable. A batch whose fdatasync fails stays applied, as it stays in the file a
      // replay reads: its adds reject, and one tried again puts the same record.
      await this.#wal
        .append(
          batch.flatMap((op) => op.values.map(toFrame)),
          () => {
            for (const op of batch) for (const value of op.values) this.#apply(value);
          },
        )
        .catch((error: unknown) => (failed = { error }));
      this.#options.metrics.memoryRecords.inc(this.#records.size - before);
      for (const op of batch) op.done(failed && (failed.error ?? new Error("memory write failed")));
      this.#scheduleFlush();
    }
    this.#draining = false;
  }

  /** Starts the flushes asked for while one wrote, as one. */
  #flushEnded(): void {
    this.#flushing = undefined;
    const waiting = this.#waitingFlushes.splice(0);
    if (waiting.length === 0) return;
    this.#queue.push({
      type: "flush",
      done: (error) => {
        for (const op of waiting) op.done(error);
      },
    });
    if (this.#draining) return;
    this.#draining = true;
    setImmediate(() => void this.#drain());
  }

  /** Marks a segment to write at the next flush, and a position whose vector changed in it. */
  #markDirty(segment: number, position?: number | "all"): void {
    const changed = this.#dirty.get(segment) ?? new Set<number>();
    if (position === "all" || changed === "all") this.#dirty.set(segment, "all");
    else {
      if (position !== undefined) changed.add(position);
      this.#dirty.set(segment, changed);
    }
  }

  #slotAt(segment: number, position: number): number {
    return (segment - 1) * this.#segmentSize + position;
  }

  #segmentOf(slot: number): number {
    return Math.floor(slot / this.#segmentSize) + 1;
  }

  #positionOf(slot: number): number {
    return slot % this.#segmentSize;
  }

  #apply(value: LogValue): void {
    if (value.op === "forget") {
      this.#forgotten.add(value.number);
      for (const id of this.#threadRecords(value.number)) this.#apply({ op: "del", id });
      // Counted as a change: the next flush writes the manifest that keeps it.
    } else if (value.op === "del") {
      const slot = this.#records.get(value.id);
      if (slot === undefined) return;
      const segment = this.#segmentOf(slot);
      this.#forget(value.id, slot);
      this.#table.clear(slot);
      this.#matrix.clear(slot);
      this.#positions.get(segment)![this.#positionOf(slot)] = undefined;
      this.#markDirty(segment, this.#positionOf(slot));
      this.#touched?.add(value.id);
      this.#countChange(segment);
      this.#textIndexes?.keywords.delete(slot);
      this.#textIndexes?.duplicates.delete(value.id);
    } else {
      const { unit } = value;
      const { text } = value.record;
      const record = withoutText(value.record);
      if (isOfForgottenThread(record, this.#forgotten)) return;
      const previous = this.#records.get(record.id);
      // An older version of its source (an edit delivered late) leaves the newer one. Decided
      // here, as each put is applied in log order, so that a replay decides the same.
      if (
        previous !== undefined &&
        record.metadata?.updatedAt !== undefined &&
        isOlderVersion(record, this.#metadataOf(previous, record.id))
      )
        return;
      const previousHash = this.#hashOf(record.id);
      // A replaced record keeps its slot, and its ref until the flush that writes it.
      const slot = previous ?? this.#place(record.id);
      const segment = this.#segmentOf(slot);
      if (previous !== undefined) this.#forget(record.id, previous);
      this.#remember(record.id, slot, { text, unit }, record, value.hash);
      this.#matrix.set(slot, record.id, unit);
      this.#markDirty(segment, this.#positionOf(slot));
      // The same text (a re-added source, a log entry replayed over the snapshot) keeps its entries.
      if (previousHash !== value.hash) {
        this.#touched?.add(record.id);
        this.#countChange(segment);
        this.#textIndexes?.keywords.set(slot, record.id, text);
        this.#textIndexes?.duplicates.set(record.id, text);
      }
    }
    this.#pending++;
    this.#options.metrics.memoryPendingRecords.inc();
  }

  /**
   * The ids of the records of thread `number` that `forgetThread` removes, found in the record
   * table by number, then kind (typed arrays: no object a record, and no text read).
   */
  #threadRecords(number: number): string[] {
    const ids: string[] = [];
    for (const [id, slot] of this.#records) {
      if (this.#table.number(slot) === number && this.#table.kind(slot) !== "note") ids.push(id);
    }
    return ids;
  }

  #forgottenList(): number[] {
    return [...this.#forgotten].sort((a, b) => a - b);
  }

  /** A record of a counted segment changed: its words file no longer holds it. */
  #countChange(segment: number): void {
    const changed = this.#words.get(segment);
    if (changed !== undefined) this.#words.set(segment, changed + 1);
  }

  /** Keeps a record: its metadata and hash in the table, its place and fresh text here. */
  #remember(
    id: string,
    slot: number,
    fresh: Fresh | undefined,
    record: RecordMetadata,
    hash: string,
  ): void {
    this.#table.set(slot, record, hash);
    this.#keep(id, slot, fresh);
  }

  /** Keeps a record whose metadata and hash are in the table already, or are put there next. */
  #keep(id: string, slot: number, fresh?: Fresh): void {
    this.#recordBytes += recordBytes(id);
    if (fresh) {
      this.#freshBytes += freshBytes(fresh);
      this.#fresh.set(slot, fresh);
    }
    this.#records.set(id, slot);
  }

  /** The hash of a record's text, or undefined when there is no such record. */
  #hashOf(id: string): string | undefined {
    const slot = this.#records.get(id);
    return slot === undefined ? undefined : this.#table.hash(slot);
  }

  #forget(id: string, slot: number): void {
    this.#recordBytes -= recordBytes(id);
    this.#dropFresh(slot);
    this.#records.delete(id);
  }

  /** Lets go of a slot's text and vector (the snapshot holds them, or the record went). */
  #dropFresh(slot: number): void {
    const fresh = this.#fresh.get(slot);
    if (!fresh) return;
    this.#freshBytes -= freshBytes(fresh);
    this.#fresh.delete(slot);
  }

  /** A new record's slot: the last segment's next position, until it is full. */
  #place(id: string): number {
    const [segment, position] = this.#placeIn(id);
    const slot = this.#slotAt(segment, position);
    // Slots are not reused; cleared all the same, as a ref left there would point at another text.
    this.#setRef(slot, 0, 0, 0, 0);
    return slot;
  }

  #placeIn(id: string): [number, number] {
    const last = this.#manifest.segments.at(-1);
    let positions = last === undefined ? undefined : this.#positions.get(last);
    if (last === undefined || !positions || positions.length >= this.#segmentSize) {
      const next = (last ?? 0) + 1;
      this.#manifest.segments.push(next);
      positions = [];
      this.#positions.set(next, positions);
      this.#matrix.reserve(next * this.#segmentSize);
      positions.push(id);
      return [next, 0];
    }
    positions.push(id);
    return [last, positions.length - 1];
  }

  /** Where the snapshot holds a record's text and float32 row, if it does. */
  #refOf(slot: number): StoredRef | undefined {
    if (this.#generationOf(slot) === 0) return undefined;
    const at = REF_WIDTH * slot;
    return { at: this.#refs[at]!, length: this.#refs[at + 1]!, crc: this.#refs[at + 2]! };
  }

  /** The snapshot write that last put the slot's text and row there, 0 when none has. */
  #generationOf(slot: number): number {
    return this.#refs[REF_WIDTH * slot + 3] ?? 0;
  }

  /**
   * Where the snapshot holds the record's text (byte offset, length) and its row's crc32, and
   * which snapshot write put them there.
   */
  #setRef(slot: number, at: number, length: number, crc: number, generation: number): void {
    const index = REF_WIDTH * slot;
    if (index + REF_WIDTH > this.#refs.length) {
      if (generation === 0) return;
      let size = this.#refs.length * 2;
      while (size < index + REF_WIDTH) size *= 2;
      const grown = new Uint32Array(size);
      grown.set(this.#refs);
      this.#refs = grown;
    }
    this.#refs[index] = at;
    this.#refs[index + 1] = length;
    this.#refs[index + 2] = crc;
    this.#refs[index + 3] = generation;
  }

  /** A record's metadata as it was given. */
  #metadataOf(slot: number, id: string): RecordMetadata {
    return this.#table.get(slot, id);
  }

  /**
   * The keyword and near-duplicate indexes, built on first use: from the segments' words files
   * where they hold a record's current text, and from the text itself otherwise (counted the
   * same way first), all loaded at once.
   */
  #indexes(): Promise<TextIndexes> {
    this.#text ??= (async () => {
      const saved = await this.#readWords();
      const counted = new Map<number, SegmentWords>();
      for (const segment of [...this.#positions.keys()]) {
        const words = await this.#countMissing(segment, saved.get(segment));
        if (words) counted.set(segment, words);
      }
      const indexes: TextIndexes = {
        keywords: new Bm25Index(),
        duplicates: new NearDuplicateIndex(),
      };
      // Loaded in one go, with no await: which counts are current is judged against the
      // records as they are now. From here on puts and deletes update the indexes themselves.
      this.#restoreWords(indexes, saved, counted);
      this.#textIndexes = indexes;
      // Records changed while the texts were read and flushed since: from their text now.
      const left = new Set<number>();
      for (const slot of this.#records.values())
        if (!indexes.keywords.has(slot)) left.add(this.#segmentOf(slot));
      this.#touched = new Set();
      for (const segment of left) {
        for (const [id, text] of await this.#textsOf(segment)) {
          const slot = this.#records.get(id);
          if (slot === undefined || this.#touched.has(id) || indexes.keywords.has(slot)) continue;
          indexes.keywords.set(slot, id, text);
          indexes.duplicates.set(id, text);
        }
      }
      this.#touched = undefined;
      // Segments counted from their texts here are saved for the next start.
      this.#queueWords(this.#positions.keys());
      return indexes;
    })();
    return this.#text;
  }

  /**
   * The words of the segment's records whose text `saved` (its words file) does not hold,
   * counted from their texts; undefined when it holds every one.
   */
  async #countMissing(
    segment: number,
    saved: SegmentWords | undefined,
  ): Promise<SegmentWords | undefined> {
    const missing = (id: string | undefined, position: number) => {
      const slot = id === undefined ? undefined : this.#records.get(id);
      return slot !== undefined && saved?.hashes[position] !== this.#table.hash(slot);
    };
    if (!(this.#positions.get(segment) ?? []).some(missing)) return undefined;
    const texts = await this.#textsOf(segment);
    const builder = new SegmentWordsBuilder(this.#segmentSize);
    (this.#positions.get(segment) ?? []).forEach((id, position) => {
      const text = id === undefined ? undefined : texts.get(id);
      if (text !== undefined && missing(id, position)) builder.add(position, text);
    });
    return builder.finish();
  }

  /** The words files of the segments that have one; a damaged one is left to be rewritten. */
  async #readWords(): Promise<Map<number, SegmentWords>> {
    const saved = new Map<number, SegmentWords>();
    const segments = [...this.#words.keys()];
    const files = segments.map((segment) => join(this.#options.directory, wordsFile(segment)));
    const contents = await readWordsFiles(files).catch((error: Error) => {
      this.#options.log.warn({ err: error }, "memory words files not read; recounting");
      return [];
    });
    segments.forEach((segment, i) => {
      const content = contents[i];
      // Not written yet (queued by the flush that filled the segment): counted from the texts.
      if (!content) return;
      const words = decodeSegmentWords(content, this.#segmentSize);
      if (typeof words !== "string") saved.set(segment, words);
      else {
        this.#options.log.warn(
          { file: files[i], reason: words },
          "memory words file not usable; recounting",
        );
        this.#words.set(segment, this.#segmentSize);
      }
    });
    return saved;
  }

  /**
   * Loads the counted words of each record whose text is the one they were counted from: a
   * segment's words file first, then what was counted from the texts. Records how many of each
   * file's records it did not hold, for `#queueWords`.
   */
  #restoreWords(
    indexes: TextIndexes,
    saved: Map<number, SegmentWords>,
    counted: Map<number, SegmentWords>,
  ): void {
    const parts: Array<Bm25Part & Pick<SegmentWords, "fingerprints">> = [];
    const taken = new Set<number>();
    const sources = [
      ...[...saved].map(([segment, words]) => ({ segment, words, fromFile: true })),
      ...[...counted].map(([segment, words]) => ({ segment, words, fromFile: false })),
    ];
    for (const { segment, words, fromFile } of sources) {
      const positions = this.#positions.get(segment) ?? [];
      const ids = new Array<string | undefined>(positions.length);
      let live = 0;
      positions.forEach((id, position) => {
        const slot = id === undefined ? undefined : this.#records.get(id);
        if (slot === undefined) return;
        live++;
        if (taken.has(slot) || words.hashes[position] !== this.#table.hash(slot)) return;
        ids[position] = id;
        taken.add(slot);
      });
      if (fromFile) this.#words.set(segment, live - ids.filter(isDefined).length);
      parts.push({ ...words, base: this.#slotAt(segment, 0), ids });
    }
    indexes.keywords.restore(parts);
    for (const { fingerprints, ids } of parts) {
      for (const [position, prints] of fingerprints) {
        const id = ids[position];
        if (id !== undefined) indexes.duplicates.setFingerprints(id, prints);
      }
    }
  }

  /**
   * Counts the words of each full segment among `segments` that has no words file, or one that
   * a tenth of its records changed since, and writes them: in the background (on the words
   * counter's thread), one segment after another.
   */
  #queueWords(segments: Iterable<number>): void {
    if (this.#wordsStopped) return;
    for (const segment of segments) {
      if ((this.#positions.get(segment)?.length ?? 0) < this.#segmentSize) continue;
      const changed = this.#words.get(segment);
      if (changed !== undefined && changed * 10 < this.#segmentSize) continue;
      this.#words.set(segment, 0);
      this.#wordsWriting = this.#wordsWriting
        .then(() => this.#writeWords(segment))
        .catch((error: unknown) => {
          this.#words.delete(segment);
          this.#options.log.warn({ err: error, segment }, "memory words file not written");
        });
    }
  }

  async #writeWords(segment: number): Promise<void> {
    if (this.#wordsStopped) return;
    const texts = await this.#textsOf(segment);
    const byPosition: Array<[number, string]> = [];
    for (const [position, id] of (this.#positions.get(segment) ?? []).entries()) {
      const text = id === undefined ? undefined : texts.get(id);
      if (text !== undefined) byPosition.push([position, text]);
    }
    // Each text's hash is taken by the counter, from the text counted: the record may have
    // another by the time the file is written, and the next build then counts it again.
    const counter = this.#options.wordsCounter ?? countWordsHere;
    const bytes = await counter.count(this.#segmentSize, byPosition);
    if (this.#wordsStopped) return;
    await writeFileAtomically(join(this.#options.directory, wordsFile(segment)), bytes);
  }

  /** The texts of a segment's records, from RAM, the snapshot, or the vectra file. */
  async #textsOf(segment: number, attempt = 0): Promise<Map<string, string>> {
    const texts = new Map<string, string>();
    const ids = (this.#positions.get(segment) ?? []).filter((id) => id !== undefined);
    const slots = ids.map((id) => [id, this.#records.get(id)] as const);
    const sums = this.#header.segments[String(segment)];
    const content = slots.some(([, slot]) => slot !== undefined && !this.#fresh.has(slot))
      ? sums && (await this.#snapshot.readTexts(segment, sums))
      : undefined;
    // A flush may have rewritten the rows file meanwhile (the records' places with it), or be
    // rewriting it: look again before calling it damaged.
    if (
      attempt < MAX_REREADS &&
      (this.#header.segments[String(segment)] !== sums ||
        (!content && (await this.#flushWritten())))
    )
      return this.#textsOf(segment, attempt + 1);
    let fromIndex: Map<string, string> | undefined;
    for (const [id, slot] of slots) {
      if (slot === undefined) continue;
      const fresh = this.#fresh.get(slot);
      if (fresh) {
        texts.set(id, fresh.text);
        continue;
      }
      const ref = this.#refOf(slot);
      if (content && ref) {
        const { at: start, length } = ref;
        texts.set(id, content.toString("utf8", start, start + length));
        continue;
      }
      fromIndex ??= await this.#fromIndexFile(segment, "texts");
      const recovered = fromIndex.get(id);
      if (recovered !== undefined) texts.set(id, recovered);
    }
    return texts;
  }

  /** A record with its text, or undefined when there is none (any more). */
  async #full(id: string, attempt = 0): Promise<MemoryRecord | undefined> {
    const slot = this.#records.get(id);
    if (slot === undefined) return undefined;
    const fresh = this.#fresh.get(slot);
    if (fresh) return { ...this.#metadataOf(slot, id), text: fresh.text };
    const ref = this.#refOf(slot);
    if (ref) {
      const hash = this.#table.hash(slot);
      const generation = this.#generationOf(slot);
      const text = await this.#snapshot.readText(
        this.#segmentOf(slot),
        ref,
        (candidate) => hashText(candidate) === hash,
      );
      if (text !== undefined) return { ...this.#metadataOf(slot, id), text };
      if (await this.#moved(id, slot, generation, attempt)) return this.#full(id, attempt + 1);
    }
    const text = (await this.#fromIndexFile(this.#segmentOf(slot), "texts")).get(id);
    return text === undefined ? undefined : { ...this.#metadataOf(slot, id), text };
  }

  /** A record's float32 unit vector, from RAM, the snapshot, or the vectra file. */
  async #unitOf(id: string, attempt = 0): Promise<Float32Array | undefined> {
    const slot = this.#records.get(id);
    if (slot === undefined) return undefined;
    const fresh = this.#fresh.get(slot);
    if (fresh) return fresh.unit;
    const ref = this.#refOf(slot);
    if (ref) {
      const generation = this.#generationOf(slot);
      const vector = await this.#snapshot.readVector(slot, ref.crc);
      if (vector) return vector;
      if (await this.#moved(id, slot, generation, attempt)) return this.#unitOf(id, attempt + 1);
    }
    return (await this.#fromIndexFile(this.#segmentOf(slot), "vectors")).get(id);
  }

  /**
   * After a snapshot read that did not match: whether to look again before calling the snapshot
   * damaged. The record may have been replaced or rewritten since; or a flush is writing, which
   * replaces a rows file before it points the records at their new places, so a read between
   * the two finds other bytes where the old place was. Then it waits for that flush.
   */
  async #moved(id: string, slot: number, generation: number, attempt: number): Promise<boolean> {
    if (attempt >= MAX_REREADS) return false;
    // Removed, replaced (a put leaves it fresh until a flush writes it), or written again.
    if (
      this.#records.get(id) !== slot ||
      this.#fresh.has(slot) ||
      this.#generationOf(slot) !== generation
    )
      return true;
    return this.#flushWritten();
  }

  /** Waits for the flush writing now, if one is: true when there was one. */
  async #flushWritten(): Promise<boolean> {
    if (!this.#flushing) return false;
    await this.#flushing;
    return true;
  }

  /** Exact cosines of `ids` with `unit`, best first. */
  async #rescore(unit: Float32Array, ids: string[]): Promise<Array<{ id: string; score: number }>> {
    const scored = await Promise.all(
      ids.map(async (id) => {
        const vector = await this.#unitOf(id);
        return vector && { id, score: dot(unit, vector) };
      }),
    );
    return scored.filter((hit) => hit !== undefined).sort((a, b) => b.score - a.score);
  }

  /**
   * What the snapshot failed to give, from the segment's vectra file, which the snapshot only
   * mirrors. The segment is rewritten at the next flush, which repairs its snapshot block.
   */
  async #fromIndexFile(segment: number, what: "texts"): Promise<Map<string, string>>;
  async #fromIndexFile(segment: number, what: "vectors"): Promise<Map<string, Float32Array>>;
  async #fromIndexFile(
    segment: number,
    what: "texts" | "vectors",
  ): Promise<Map<string, string | Float32Array>> {
    const file = join(this.#options.directory, segmentFile(segment));
    this.#options.log.error(
      { file, segment },
      `memory snapshot damaged: its ${what} do not match their checksums; reading them from the index file and rewriting the segment at the next flush`,
    );
    this.#markDirty(segment, "all");
    const items = await this.#readIndexFile(segment);
    return new Map(
      items.map((item) => [
        item.id,
        what === "texts" ? String(item.metadata.text) : unitVector(item.vector),
      ]),
    );
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

  /** A flush from start to end, with nothing running beside it: the one that ends an open. */
  async #checkpoint(): Promise<void> {
    await (
      await this.#startCheckpoint()
    )?.writing;
  }

  /**
   * Starts a flush. What it writes is taken now, while no write runs: the log is rotated (adds
   * from now on go to the next segment, which the flush does not cover), and each changed
   * segment's records, codes and changes are captured. The writing itself is returned, and runs
   * while adds go on: on this project's VM a flush is 10–20 ms of fsyncs, which adds no longer
   * wait behind. Undefined: there was nothing to write.
   */
  async #startCheckpoint(): Promise<{ writing: Promise<void> } | undefined> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === 0 && this.#dirty.size === 0 && (await this.#hasManifest()))
      return undefined;
    const started = performance.now();
    const sealed = await this.#wal.rotate();
    const plans: SegmentPlan[] = [];
    for (const segment of [...this.#dirty.keys()].sort((a, b) => a - b)) {
      const length = this.#positions.get(segment)?.length ?? 0;
      // Records only added since the last write (the usual case) are appended to the index
      // file and the rows file: a flush then costs its batch, not the segment. Anything else
      // rewrites them whole, and so do files found not as recorded (looked at before the first
      // append after an open; later, the append itself fails on them, and the next flush).
      const after = this.#header.segments[String(segment)];
      const added = this.#addedEntries(segment);
      if (
        added &&
        after &&
        (this.#appendChecked.has(segment) || (await this.#appendable(segment, after)))
      ) {
        const changed = this.#dirty.get(segment)!;
        const codes = this.#captureCodes(segment, changed, length);
        plans.push({ segment, length, codes, entries: added, after });
        continue;
      }
      const entries = await this.#entriesOf(segment);
      // Taken after the entries: finding damage on the way makes it the whole block.
      const changed = this.#dirty.get(segment)!;
      const codes = this.#captureCodes(segment, changed, entries.length);
      plans.push({ segment, length, codes, entries });
    }
    for (const plan of plans) this.#dirty.delete(plan.segment);
    const pending = this.#pending;
    this.#pending = 0;
    // The manifest as of now: segments placed while this flush writes have no files yet.
    const manifest: Manifest = {
      ...this.#manifest,
      segments: [...this.#manifest.segments],
      forgotten: this.#forgottenList(),
    };
    // In an object: an async function's result is awaited whole, a promise in it included.
    const writing = this.#writeCheckpoint(plans, sealed, manifest, pending, started).catch(
      (error: unknown) => {
        // Whatever it did not finish is written by the next flush; the log holds it meanwhile.
        for (const plan of plans) {
          this.#markDirty(plan.segment, "all");
          this.#appendChecked.delete(plan.segment);
        }
        this.#pending += pending;
        throw error;
      },
    );
    return { writing };
  }

  /** The segment's codes as they are now, for a flush to write the runs `changed` names. */
  #captureCodes(segment: number, changed: Set<number> | "all", count: number): SegmentCodes {
    const block = this.#matrix.codes(this.#slotAt(segment, 0), this.#segmentSize);
    return this.#snapshot.captureCodes(
      segment,
      block,
      changed === "all" ? undefined : changed,
      count,
    );
  }

  /**
   * Whether the segment's files are as the snapshot recorded them, so that a flush may append:
   * a torn tail of a rows file's append is written over, anything else is rewritten.
   */
  async #appendable(segment: number, after: SegmentSums): Promise<boolean> {
    const size = (name: string) =>
      stat(join(this.#options.directory, name)).then(
        (s) => s.size,
        () => -1,
      );
    const [index, rows] = await Promise.all([size(segmentFile(segment)), size(rowsFile(segment))]);
    return index === after.index && rows >= after.bytes;
  }

  /**
   * Writes a flush's segments, their snapshot blocks and the manifest, then drops the log they
   * cover, and lets go of the texts and vectors they hold.
   */
  async #writeCheckpoint(
    plans: SegmentPlan[],
    sealed: number,
    manifest: Manifest,
    pending: number,
    started: number,
  ): Promise<void> {
    const written: Array<[number, Fresh]> = [];
    const indexBytes = { ...this.#manifest.indexBytes };
    for (const { segment, length, codes, entries, after } of plans) {
      const file = join(this.#options.directory, segmentFile(segment));
      let bytes: number;
      if (after) {
        // The two appends, each with its fsync, at once: they touch different files.
        const [appended, blockAppended] = await settled(
          appendSegment(file, entries.filter(isDefined).map(toItem), after.index),
          this.#writeSnapshotBlock(segment, entries, after.index, written, codes, after),
        );
        // The files were checked at the start; only another writer could have changed them.
        if (appended === undefined || !blockAppended)
          throw new Error(`${file} or its rows changed while a flush was appending to them`);
        bytes = appended;
        this.#header.segments[String(segment)]!.index = bytes;
      } else {
        bytes = await writeSegment(file, entries.filter(isDefined).map(toItem));
        await this.#writeSnapshotBlock(segment, entries, bytes, written, codes);
      }
      this.#written.set(segment, length);
      this.#appendChecked.add(segment);
      indexBytes[String(segment)] = bytes;
    }
    await this.#snapshot.sync();
    this.#header = { ...this.#header, checkpoint: sealed };
    Object.assign(manifest, { checkpoint: sealed, segmentSize: this.#segmentSize, indexBytes });
    // Both at once: a crash that leaves one written and not the other leaves checkpoints that
    // differ, and the next open then reads the vectra files, as when it comes between them.
    await settled(
      this.#snapshot.writeHeader(this.#header),
      writeFileAtomically(
        join(this.#options.directory, MANIFEST),
        `${JSON.stringify(manifest, null, 2)}\n`,
      ),
    );
    Object.assign(this.#manifest, {
      checkpoint: sealed,
      segmentSize: this.#segmentSize,
      indexBytes,
    });
    await this.#wal.deleteUpTo(sealed);
    // Now the snapshot holds them: texts and float32 vectors leave RAM (a record replaced
    // since has another `Fresh`, and keeps it).
    for (const [slot, fresh] of written) if (this.#fresh.get(slot) === fresh) this.#dropFresh(slot);
    this.#options.metrics.memoryPendingRecords.dec(pending);
    this.#options.metrics.memoryFlushes.inc();
    this.#options.metrics.memoryFlushDuration.observe((performance.now() - started) / 1000);
    this.#options.log.debug({ segments: plans.length, records: pending }, "memory flushed");
    this.#queueWords(plans.map((plan) => plan.segment));
  }

  /**
   * Writes a segment's snapshot block and points its records at it; with `after`, appends the
   * records added since, or returns false, having written nothing (see MemorySnapshot).
   */
  async #writeSnapshotBlock(
    segment: number,
    entries: Array<SnapshotEntry | undefined>,
    indexBytes: number,
    written: Array<[number, Fresh]>,
    codes = this.#captureCodes(segment, "all", entries.length),
    after?: SegmentSums,
  ): Promise<boolean> {
    const result = await this.#snapshot.writeSegment(segment, entries, codes, indexBytes, after);
    if (!result) return false;
    const { sums, refs } = result;
    this.#header.segments[String(segment)] = sums;
    const generation = ++this.#generation;
    for (const [position, entry] of entries.entries()) {
      if (!entry) continue;
      const slot = this.#records.get(entry.record.id);
      const ref = refs.get(entry.record.id);
      // Its place too, not only its id and text: a record removed and added again with the same
      // text while the flush wrote is elsewhere now, and its text and vector are not in this
      // block yet; given this row's ref, they would leave RAM and be lost.
      if (
        slot === undefined ||
        !ref ||
        slot !== this.#slotAt(segment, position) ||
        this.#table.hash(slot) !== entry.hash
      )
        continue;
      this.#setRef(slot, ref.at, ref.length, ref.crc, generation);
      const fresh = this.#fresh.get(slot);
      if (fresh) written.push([slot, fresh]);
    }
    return true;
  }

  /**
   * The records a flush may append to the segment's files, by position, or undefined when it
   * must rewrite them: those past the positions the files hold, when every change since is one
   * of them and the rows file has room for another chunk.
   */
  #addedEntries(segment: number): Array<SnapshotEntry | undefined> | undefined {
    const changed = this.#dirty.get(segment);
    const from = this.#written.get(segment);
    const sums = this.#header.segments[String(segment)];
    if (changed === "all" || !changed || from === undefined || !sums) return undefined;
    if (sums.chunks >= MAX_CHUNKS) return undefined;
    for (const position of changed) if (position < from) return undefined;
    const positions = this.#positions.get(segment) ?? [];
    const entries: Array<SnapshotEntry | undefined> = [];
    for (const [position, id] of positions.entries()) {
      const slot = position < from || id === undefined ? undefined : this.#records.get(id);
      if (id === undefined || slot === undefined) {
        entries.push(undefined);
        continue;
      }
      // Added since the last write, so still in RAM; anything else is not an append.
      const fresh = this.#fresh.get(slot);
      if (!fresh) return undefined;
      entries.push({
        record: this.#metadataOf(slot, id),
        text: fresh.text,
        hash: this.#table.hash(slot),
        unit: fresh.unit,
        scale: this.#matrix.scaleAt(slot),
      });
    }
    return entries;
  }

  /** A segment's records by position, with their texts and float32 vectors. */
  async #entriesOf(segment: number): Promise<Array<SnapshotEntry | undefined>> {
    const positions = this.#positions.get(segment) ?? [];
    const needsBlock = positions.some((id) => {
      const slot = id === undefined ? undefined : this.#records.get(id);
      return id !== undefined && (slot === undefined || !this.#fresh.has(slot));
    });
    const block = needsBlock ? await this.#snapshot.readVectors(segment) : undefined;
    const texts = needsBlock ? await this.#textsOf(segment) : new Map<string, string>();
    let fromIndex: Map<string, Float32Array> | undefined;
    const entries: Array<SnapshotEntry | undefined> = [];
    for (const [position, id] of positions.entries()) {
      const slot = id === undefined ? undefined : this.#records.get(id);
      if (!id || slot === undefined) {
        entries.push(undefined);
        continue;
      }
      const scale = this.#matrix.scaleAt(slot);
      const hash = this.#table.hash(slot);
      const record = this.#metadataOf(slot, id);
      const ref = this.#refOf(slot);
      const fresh = this.#fresh.get(slot);
      let unit = fresh?.unit ?? (block && ref && this.#snapshot.rowOf(block, position, ref.crc));
      if (!unit) {
        fromIndex ??= await this.#fromIndexFile(segment, "vectors");
        unit = fromIndex.get(id);
      }
      const text = fresh?.text ?? texts.get(id);
      if (!unit || text === undefined)
        throw new MemoryCorruptError(
          `memory ${id} has lost its vector or text (segment ${segment})`,
        );
      entries.push({ record, text, hash, unit, scale });
    }
    return entries;
  }

  async #hasManifest(): Promise<boolean> {
    return this.#storage.pathExists(join(this.#options.directory, MANIFEST));
  }

  /** Opens from the snapshot, which must cover the manifest's checkpoint and check out. */
  async #loadSnapshot(): Promise<void> {
    const { segments } = this.#manifest;
    const header = await this.#snapshot.readHeader(this.#manifest.checkpoint, segments);
    const extent = Math.max(0, ...segments) * this.#segmentSize;
    // The codes are read (mostly the kernel faulting in fresh pages) while the rows are loaded,
    // and then by both threads: two cores, half the time.
    const rows = this.#loadRows(header);
    await Promise.all([
      this.#snapshot.readCodes(
        header,
        this.#matrix.codes(0, extent),
        this.#options.scanHelper,
        rows,
      ),
      rows,
    ]);
    this.#header = header;
  }

  async #loadRows(header: SnapshotHeader): Promise<void> {
    const generation = ++this.#generation;
    const { segments } = this.#manifest;
    // Read ahead: each segment's files take several trips to the thread pool, which the codes'
    // reads keep busy, and a segment read only once the one before was placed left the event
    // loop waiting between them.
    const read = (segment: number) => {
      const rows = Promise.all([
        this.#checkIndexFile(segment, header.segments[String(segment)]!.index),
        this.#snapshot.readRows(header, segment),
      ]).then(([, rows]) => rows);
      // Awaited in turn below: one that fails before its turn is not an unhandled rejection.
      rows.catch(() => undefined);
      return rows;
    };
    const reading = segments.slice(0, ROWS_AHEAD).map(read);
    for (const [i, segment] of segments.entries()) {
      const chunks = await reading[i]!;
      if (i + ROWS_AHEAD < segments.length) reading.push(read(segments[i + ROWS_AHEAD]!));
      const positions: Array<string | undefined> = [];
      for (const rows of chunks) {
        const slots = new Uint32Array(rows.ids.length);
        for (const [row, id] of rows.ids.entries()) {
          const position = rows.position[row]!;
          positions[position] = id;
          const slot = this.#slotAt(segment, position);
          slots[row] = slot;
          this.#keep(id, slot);
          this.#setRef(slot, rows.textAt[row]!, rows.textLength[row]!, rows.crc[row]!, generation);
          this.#matrix.assign(slot, id, rows.scale[row]!);
        }
        this.#table.setColumns(slots, rows);
      }
      this.#positions.set(segment, positions);
      this.#written.set(segment, positions.length);
    }
  }

  /**
   * A vectra file whose size is not the one the snapshot recorded (truncated, say) is rewritten
   * from the snapshot by the flush that ends the open. Its content is not read: that would cost
   * what the snapshot saves.
   */
  async #checkIndexFile(segment: number, bytes: number): Promise<void> {
    const file = join(this.#options.directory, segmentFile(segment));
    const size = await stat(file).then(
      (s) => s.size,
      () => -1,
    );
    if (size === bytes) return;
    this.#options.log.warn(
      { file, bytes: size, expected: bytes },
      "memory index file damaged or missing; rewriting it from the snapshot",
    );
    this.#markDirty(segment);
  }

  /**
   * Opens from vectra's index files, writing each segment's snapshot block on the way. A
   * segment holding more records than a segment's slots (written with a larger segment size)
   * keeps the first ones; the rest move to new segments, as if added again. `logged`: the log
   * holds entries after the checkpoint (see `#checkIndexSize`).
   */
  async #loadIndexFiles(logged: boolean): Promise<LogValue[]> {
    const moved: LogValue[] = [];
    let unwritten: unknown;
    for (const segment of this.#manifest.segments) {
      const items = await this.#readIndexFile(segment);
      const size = await this.#checkIndexSize(segment, logged);
      const positions: Array<string | undefined> = [];
      this.#positions.set(segment, positions);
      this.#matrix.reserve(segment * this.#segmentSize);
      const entries: Array<SnapshotEntry | undefined> = [];
      for (const item of items) {
        const record = toRecord(item);
        const hash = String(item.metadata.hash);
        if (positions.length >= this.#segmentSize) {
          moved.push({ op: "put", record, hash, unit: unitVector(item.vector) });
          this.#markDirty(segment);
          continue;
        }
        const unit = unitVector(item.vector);
        const slot = this.#slotAt(segment, positions.length);
        positions.push(record.id);
        // Its text stays in RAM until the snapshot holds it (see below).
        this.#remember(record.id, slot, { text: record.text, unit }, withoutText(record), hash);
        this.#matrix.set(slot, record.id, unit);
        entries.push({
          record: withoutText(record),
          text: record.text,
          hash,
          unit,
          scale: this.#matrix.scaleAt(slot),
        });
      }
      // Reads need no write: on a disk too full for the snapshot (a flush that failed for want
      // of room left it behind the index files) the memory opens all the same, its texts kept
      // in RAM, and the next flush writes the segment. The open had failed, and with it every
      // event, search and backfill of the repository until someone freed space (found by a
      // review).
      const written: Array<[number, Fresh]> = [];
      try {
        await this.#writeSnapshotBlock(segment, entries, size, written);
      } catch (error) {
        unwritten ??= error;
        this.#markDirty(segment, "all");
        continue;
      }
      for (const [slot, fresh] of written)
        if (this.#fresh.get(slot) === fresh) this.#dropFresh(slot);
      this.#written.set(segment, positions.length);
    }
    if (unwritten === undefined) {
      try {
        await this.#snapshot.sync();
        await this.#snapshot.writeHeader(this.#header);
      } catch (error) {
        // Its blocks hold the texts; without the header the next open could not use them, so
        // the next flush writes them all again, header included.
        unwritten = error;
        for (const segment of this.#manifest.segments) this.#markDirty(segment, "all");
      }
    }
    if (unwritten !== undefined) {
      this.#options.log.warn(
        { err: unwritten, directory: this.#options.directory },
        "memory snapshot not written (a full disk?); opened from the index files, the next flush writes it",
      );
    }
    return moved;
  }

  /**
   * The size of a segment's index file, which must not be shorter than the manifest recorded
   * at the checkpoint. Cut at an item's end, a file still reads whole, as a smaller segment:
   * opened so, its lost records were gone for good once the open's flush wrote the manifest.
   * Shorter is right in one case: a flush renamed in a rewritten segment that lost records
   * (a removal, a shorter text) and a crash came before its manifest; the log then still holds
   * what that flush wrote, from the checkpoint on, and replays over the file.
   */
  async #checkIndexSize(segment: number, logged: boolean): Promise<number> {
    const file = join(this.#options.directory, segmentFile(segment));
    const { size } = await stat(file);
    const recorded = this.#manifest.indexBytes?.[String(segment)];
    if (recorded === undefined || size >= recorded) return size;
    if (!logged)
      throw new MemoryCorruptError(
        `${file} is ${size} bytes, shorter than the ${recorded} ${MANIFEST} records, and no snapshot covers it: records at its end are lost. Restore it, or delete the directory and run a backfill to rebuild the memory.`,
      );
    this.#options.log.warn(
      { file, bytes: size, recorded },
      "memory index file shorter than its last checkpoint but whole (a crash mid-flush); reading it and replaying the log over it",
    );
    return size;
  }

  async #readIndexFile(segment: number): Promise<SegmentItem[]> {
    const file = join(this.#options.directory, segmentFile(segment));
    let items: SegmentItem[];
    try {
      // Never empty when written (its version field comes first, records or not), and vectra
      // reads an empty one as an index of no records: that is damage, not an empty segment.
      if ((await stat(file)).size === 0)
        throw new MemoryCorruptError(
          `${file} is empty (0 bytes): its records are lost, and no snapshot covers it. Restore it, or delete the directory and run a backfill to rebuild the memory.`,
        );
      items = await readSegment(this.#storage, file);
    } catch (error) {
      if (error instanceof MemoryCorruptError) throw error;
      throw new MemoryCorruptError(
        (error as NodeJS.ErrnoException).code === "ENOENT"
          ? `${file} is listed in ${MANIFEST} but missing`
          : (error as Error).message,
        { cause: error },
      );
    }
    for (const item of items) {
      if (item.vector.length !== this.#manifest.dimension) {
        throw new MemoryCorruptError(
          `${file}: ${item.id} has ${item.vector.length} dimensions, not ${this.#manifest.dimension}`,
        );
      }
    }
    return items;
  }
}

interface TextIndexes {
  keywords: Bm25Index;
  duplicates: NearDuplicateIndex;
}

/** Both results, once both have settled: a failure never leaves the other running unseen. */
async function settled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === "rejected") throw x.reason;
  if (y.status === "rejected") throw y.reason;
  return [x.value, y.value];
}

const isDefined = <T>(value: T | undefined): value is T => value !== undefined;

function toFrame(value: LogValue): LogFrame {
  if (value.op !== "put") return { value };
  const { unit, ...rest } = value;
  return { value: rest, bytes: new Uint8Array(unit.buffer, unit.byteOffset, unit.byteLength) };
}

function fromLog({ value, bytes, seq, entry }: LogEntry<LoggedValue>): LogValue {
  if (value.op !== "put") return value;
  const { vector, ...rest } = value;
  // Copied out of the segment as read, where a frame's bytes need not be 4-byte aligned.
  const raw = new Uint8Array(vector === undefined ? bytes : Buffer.from(vector, "base64"));
  if (raw.byteLength % 4 !== 0)
    throw new MemoryCorruptError(
      `log ${seq} entry ${entry} has a vector of ${raw.byteLength} bytes`,
    );
  return {
    ...rest,
    unit: unitVector(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)),
  };
}

/** What a record takes in RAM beyond the record table, which counts its own bytes. */
const recordBytes = (id: string) => id.length * 2 + RECORD_OVERHEAD_BYTES;

/** A fresh text and vector's bytes in RAM. */
const freshBytes = ({ text, unit }: Fresh) => text.length * 2 + unit.byteLength;

function toItem({ record, text, hash, unit }: SnapshotEntry): SegmentRecord {
  const metadata: Record<string, MetadataValue> = {
    kind: record.kind,
    repo: record.repo,
    text,
    created_at: record.createdAt,
    hash,
  };
  if (record.number !== undefined) metadata.number = record.number;
  if (record.author !== undefined) metadata.author = record.author;
  if (record.url !== undefined) metadata.url = record.url;
  if (record.state !== undefined) metadata.state = record.state;
  for (const [key, value] of Object.entries(record.metadata ?? {})) metadata[`x.${key}`] = value;
  return { id: record.id, vector: unit, norm: 1, metadata };
}

function toRecord(item: SegmentItem): MemoryRecord {
  const m = item.metadata;
  const extra = Object.fromEntries(
    Object.entries(m)
      .filter(([key]) => key.startsWith("x."))
      .map(([key, value]) => [key.slice(2), value]),
  );
  return {
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
}

/**
 * Cuts each index file longer than the manifest recorded back to that size when what lies past
 * it is an append that a crash interrupted (half-written), whose records the log still holds.
 * A file that is longer yet reads whole is kept: a flush renamed a rewritten segment in (an
 * edit that lengthens a text makes it longer) and a crash came before the manifest. Cutting
 * that would destroy records whose log is long gone; kept, the snapshot no longer matches it,
 * so the open reads it whole and the log, still there from the old checkpoint, replays over it.
 * A torn append never reads whole: its last item's length points past the end of the file.
 */
async function cutTornTails(
  directory: string,
  manifest: Manifest,
  storage: AtomicFileStorage,
  log: Logger,
): Promise<void> {
  for (const [segment, bytes] of Object.entries(manifest.indexBytes ?? {})) {
    const file = join(directory, segmentFile(Number(segment)));
    const size = await stat(file).then(
      (s) => s.size,
      () => undefined,
    );
    if (size === undefined || size <= bytes) continue;
    const whole = await readSegment(storage, file).then(
      () => true,
      () => false,
    );
    if (whole) {
      log.warn(
        { file, bytes: size, recorded: bytes },
        "memory index file longer than its last checkpoint but whole (a crash mid-flush); reading it",
      );
      continue;
    }
    log.warn(
      { file, bytes: size, kept: bytes },
      "memory index file cut back to its last checkpoint",
    );
    await truncate(file, bytes);
  }
}

/**
 * Refuses a directory with no manifest that holds a memory. A memory's first open writes its
 * manifest, and log segments are deleted only once a manifest covers them, so without one the
 * log still starts at its first segment unless the manifest was lost (deleted, a bad copy). The
 * log holds all of the memory then, and index files beside it are those of a first flush a
 * crash cut short, removed as unlisted. With no log at all, only index, rows or words files
 * say a memory was there (a crash in the first open leaves only the snapshot's files, which
 * hold no record). Opened, the memory started empty, its index files were deleted as unlisted,
 * and only what the log held since the last flush came back.
 */
function refuseMemoryWithoutManifest(
  directory: string,
  names: readonly string[],
  logs: readonly LogSegmentFile[],
): void {
  const first = logs[0];
  const held = names.filter(isRecordFile);
  if (first ? first.seq === 1 : held.length === 0) return;
  const found = first
    ? `its log starts at ${first.name}, past its first segment`
    : `it holds ${held.slice(0, 3).join(", ")}`;
  throw new MemoryCorruptError(
    `${directory} has no ${MANIFEST}, but ${found}: the memory in this directory cannot be opened without it, and nothing in it was changed. Restore ${MANIFEST}, or delete the directory and run a backfill to rebuild the memory.`,
  );
}

/** An index, rows or words file: what holds a memory's records, or is counted from them. */
const isRecordFile = (name: string) =>
  SEGMENT_FILE.test(name) || ROWS_FILE.test(name) || WORDS_FILE.test(name);

/** Whether a log segment after the checkpoint holds anything: a flush, or adds, came after it. */
async function isLogAfter(
  directory: string,
  logs: readonly LogSegmentFile[],
  checkpoint: number,
): Promise<boolean> {
  for (const { seq, name } of logs) {
    if (seq > checkpoint && (await stat(join(directory, name))).size > 0) return true;
  }
  return false;
}

/** Temporary files of an interrupted write, and index and rows files a crash left unlisted. */
async function removeLeftovers(directory: string, segments: number[]): Promise<void> {
  const listed = new Set(segments.flatMap((s) => [segmentFile(s), rowsFile(s), wordsFile(s)]));
  for (const name of await readdir(directory)) {
    const indexOrRows = isRecordFile(name);
    if (name.endsWith(".tmp") || (indexOrRows && !listed.has(name))) {
      await unlink(join(directory, name));
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

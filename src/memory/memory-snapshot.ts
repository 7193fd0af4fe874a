import { constants } from "node:fs";
import { open, readFile, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { crc32Zeros } from "./crc32-zeros.js";
import { z } from "zod";
import { appendAtSize } from "../append-at-size.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import { writeAt } from "../write-at.js";
import type { RecordMetadata } from "./memory-store.js";
import { encodeColumns, HASH_BYTES, type Rare, type RecordColumns } from "./record-table.js";
import { claimsFor, readClaimed, type ScanHelper } from "./scan-helper.js";

/**
 * The binary snapshot a store opens from in well under a second, next to vectra's index files
 * (the durable, interoperable format, whose protobuf decode takes ~20 s at 100,000 records).
 *
 * - `vectors.i8`: every slot's int8 codes, `stride` bytes a slot, slot s at byte s × stride.
 *   Opening reads it straight into the search matrix's WebAssembly memory, with no decoding.
 * - `vectors.f32`: every slot's float32 unit vector, for exact rescoring and for rewriting a
 *   vectra segment; read a row at a time, never whole.
 * - `rows-NNNNNN.bin`, one per segment: chunks of a little-endian u32 length, a rows block of
 *   that many bytes (each record's id, slot position, metadata, scale, text hash and vector
 *   checksum, in columns: see `encodeRows`), then those records' texts, read one at a time
 *   when shown. A flush that only adds records appends a chunk: it then costs its batch, not
 *   the segment's thousand rows. Past a few chunks, or on any other change, the file is
 *   rewritten as one.
 * - `snapshot.json`, written last: the format, the log checkpoint it covers and the checksums
 *   of each segment's rows blocks and codes. A snapshot of another format is not read: the
 *   store opens from the vectra files and writes one in this format.
 *
 * Slot s belongs to segment ⌊s / segmentSize⌋ + 1: a flush rewrites only the blocks of the
 * segments it touches. Nothing here is trusted unchecked: the header must name the manifest's
 * checkpoint, and the codes and rows must match its checksums, or the store opens from the
 * vectra files and writes a new snapshot; a float32 row must match its checksum and a text its
 * hash when read, or they are read from the vectra files.
 */
export const SNAPSHOT_FILES = {
  header: "snapshot.json",
  codes: "vectors.i8",
  vectors: "vectors.f32",
} as const;
export const ROWS_FILE = /^rows-\d+\.bin$/;
export const rowsFile = (segment: number) => `rows-${String(segment).padStart(6, "0")}.bin`;
/**
 * 2: rows blocks in columns. Format 1 held them as JSON, whose parse, and the objects it made,
 * were most of the main thread's work in a cold open.
 */
export const SNAPSHOT_FORMAT = 2;

const SnapshotHeader = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  model: z.string(),
  dimension: z.number().int().positive(),
  segmentSize: z.number().int().positive(),
  checkpoint: z.number().int().nonnegative(),
  /**
   * Per segment: the crc32 of its rows blocks (its chunks' in order), of its texts and of its
   * block of codes, and the size of its vectra file (a truncated one is rewritten from the
   * snapshot); and the rows file's size, chunks and crc32.
   */
  segments: z.record(
    z.string(),
    z.object({
      rows: z.number().int(),
      texts: z.number().int(),
      codes: z.number().int(),
      index: z.number().int(),
      bytes: z.number().int(),
      chunks: z.number().int(),
      file: z.number().int(),
    }),
  ),
});
export type SnapshotHeader = z.infer<typeof SnapshotHeader>;

/**
 * One chunk's records as a rows file holds them: row i's id, its metadata and text hash as the
 * record table's columns, its position in the segment, its codes' scale, its float32 row's
 * crc32, and where its text is.
 */
export interface SnapshotRows extends RecordColumns {
  ids: string[];
  position: Uint32Array;
  scale: Float32Array;
  crc: Uint32Array;
  /** The text's byte offset in the rows file, once read (in a chunk, from its texts' start). */
  textAt: Uint32Array;
  textLength: Uint32Array;
}

/** A record to write into a segment's block. */
export interface SnapshotEntry {
  record: RecordMetadata;
  text: string;
  hash: string;
  /** The float32 unit vector, checksummed; written where the flush's runs of codes are. */
  unit: Float32Array;
  scale: number;
}

export interface SnapshotLayout {
  model: string;
  dimension: number;
  /** Bytes of a slot's codes. */
  stride: number;
  segmentSize: number;
}

/** Where a record's text and float32 row are, once a snapshot holds them. */
export interface StoredRef {
  /** Absolute byte offset and length of the text in its rows file. */
  at: number;
  length: number;
  crc: number;
}

export type SegmentSums = SnapshotHeader["segments"][string];

/** A segment's codes as a flush writes them: see `MemorySnapshot.captureCodes`. */
export interface SegmentCodes {
  crc: number;
  /** The rows `crc` covers as they are; it takes the rest of the block for zeros. */
  rows: number;
  runs: Array<{ from: number; bytes: Uint8Array }>;
}

export class SnapshotUnusable extends Error {
  override name = "SnapshotUnusable";
}

const LENGTH_BYTES = 4;
// A rows file of this many chunks is rewritten as one at its next change: opening reads each
// chunk's rows block with a read of its own.
export const MAX_CHUNKS = 16;
const READ_CHUNK = 4 * 2 ** 20;

export class MemorySnapshot {
  readonly #directory: string;
  readonly #layout: SnapshotLayout;
  readonly #codes: FileHandle;
  readonly #vectors: FileHandle;
  // Per segment, the crc32 of its first `rows` rows of codes when a flush last took them.
  readonly #heads = new Map<number, { rows: number; crc: number }>();

  private constructor(
    directory: string,
    layout: SnapshotLayout,
    codes: FileHandle,
    vectors: FileHandle,
  ) {
    this.#directory = directory;
    this.#layout = layout;
    this.#codes = codes;
    this.#vectors = vectors;
  }

  static async open(directory: string, layout: SnapshotLayout): Promise<MemorySnapshot> {
    // Read-write without truncating or appending: blocks are written in place, at their offset.
    const flags = constants.O_RDWR | constants.O_CREAT;
    const codes = await open(join(directory, SNAPSHOT_FILES.codes), flags);
    try {
      const vectors = await open(join(directory, SNAPSHOT_FILES.vectors), flags);
      return new MemorySnapshot(directory, layout, codes, vectors);
    } catch (error) {
      await codes.close();
      throw error;
    }
  }

  get #rowBytes(): number {
    return this.#layout.dimension * 4;
  }

  /** The header, if it covers `checkpoint` with this layout; otherwise why not. */
  async readHeader(checkpoint: number, segments: readonly number[]): Promise<SnapshotHeader> {
    let header: SnapshotHeader;
    try {
      const text = await readFile(join(this.#directory, SNAPSHOT_FILES.header), "utf8");
      const parsed = JSON.parse(text) as { format?: unknown };
      if (parsed.format !== SNAPSHOT_FORMAT)
        throw new SnapshotUnusable(
          `it is in format ${String(parsed.format)}, this version reads ${SNAPSHOT_FORMAT}`,
        );
      header = SnapshotHeader.parse(parsed);
    } catch (error) {
      if (error instanceof SnapshotUnusable) throw error;
      throw new SnapshotUnusable(
        (error as NodeJS.ErrnoException).code === "ENOENT"
          ? "there is no snapshot yet"
          : `its header is damaged (${(error as Error).message.slice(0, 200)})`,
      );
    }
    const { model, dimension, segmentSize } = this.#layout;
    if (header.model !== model || header.dimension !== dimension)
      throw new SnapshotUnusable(`it holds ${header.model} vectors`);
    if (header.segmentSize !== segmentSize)
      throw new SnapshotUnusable(`its segments hold ${header.segmentSize} records`);
    if (header.checkpoint !== checkpoint)
      throw new SnapshotUnusable(
        `it covers log ${header.checkpoint}, the index files ${checkpoint}`,
      );
    const listed = Object.keys(header.segments).map(Number);
    if (listed.length !== segments.length || segments.some((s) => !(String(s) in header.segments)))
      throw new SnapshotUnusable(`it lists other segments than the manifest`);
    return header;
  }

  /**
   * Reads the codes of every slot up to `into.length` bytes, then checks them. Faulting in the
   * memory's fresh pages is most of it (13 µs a 4 KB page on this project's VM, where copying
   * the bytes is a twentieth of that), done by the thread that reads. With a helper, it starts
   * at once, and this thread claims chunks beside it once `after` (the rows' load) has settled.
   * At 100,000 records, eight opens of each in turn: the helper alone 943 ms (median), both
   * from the start 788, this thread after its rows 753.
   */
  async readCodes(
    header: SnapshotHeader,
    into: Uint8Array,
    helper?: ScanHelper,
    after?: Promise<unknown>,
  ): Promise<void> {
    const block = this.#layout.segmentSize * this.#layout.stride;
    const blocks = Math.ceil(into.length / block);
    const job = {
      length: into.length,
      block,
      // Straight into the search's memory, in chunks of whole blocks: on this project's 2-core
      // VM one 154 MB read() took 300 ms where 4 MB reads into the same memory took 16 ms.
      chunk: Math.max(1, Math.floor(READ_CHUNK / block)) * block,
      claims: claimsFor(blocks),
    };
    const here = (claims: SharedArrayBuffer) =>
      readClaimed({ ...job, claims }, into, (bytes, at, length) =>
        this.#codes.read(bytes, at, length, at),
      );
    const shared = into.buffer instanceof SharedArrayBuffer ? into.buffer : undefined;
    const [helped] = await Promise.all([
      helper && shared
        ? helper.load({
            ...job,
            into: shared,
            offset: into.byteOffset,
            file: join(this.#directory, SNAPSHOT_FILES.codes),
          })
        : true,
      // Its rows' load failing is the caller's to act on: the codes are read all the same.
      (after?.catch(() => undefined) ?? Promise.resolve()).then(() => here(job.claims)),
    ]);
    // A helper that stopped may have left a chunk it claimed unread: all of them, here.
    if (!helped) await here((job.claims = claimsFor(blocks)));
    const crcs = new Uint32Array(job.claims, 4, blocks);
    for (const [segment, sums] of Object.entries(header.segments)) {
      if (crcs[Number(segment) - 1] !== sums.codes)
        throw new SnapshotUnusable(`the codes of segment ${segment} do not match their checksum`);
    }
  }

  /** A segment's rows, a chunk at a time, checked against the header's checksum. */
  async readRows(header: SnapshotHeader, segment: number): Promise<SnapshotRows[]> {
    const file = join(this.#directory, rowsFile(segment));
    const sums = header.segments[String(segment)]!;
    let handle: FileHandle;
    try {
      handle = await open(file, "r");
    } catch (error) {
      throw new SnapshotUnusable(
        `${rowsFile(segment)} cannot be read (${(error as Error).message})`,
      );
    }
    try {
      // Past the recorded size is the torn tail of an append a crash cut short: not read.
      const end = sums.bytes;
      const chunks: SnapshotRows[] = [];
      const length = Buffer.alloc(LENGTH_BYTES);
      let crc = 0;
      let at = 0;
      while (at + LENGTH_BYTES <= end) {
        await handle.read(length, 0, LENGTH_BYTES, at);
        const blockBytes = Math.min(length.readUInt32LE(0), end - at - LENGTH_BYTES);
        // Its own buffer, at offset 0: the columns are typed arrays over it, aligned.
        const block = new Uint8Array(blockBytes);
        const { bytesRead } = await handle.read(block, 0, blockBytes, at + LENGTH_BYTES);
        if (bytesRead !== blockBytes) break;
        crc = crc32(block, crc);
        const { rows, textBytes } = decodeRows(block);
        const base = at + LENGTH_BYTES + blockBytes;
        for (let i = 0; i < rows.textAt.length; i++) rows.textAt[i]! += base;
        at = base + textBytes;
        chunks.push(rows);
      }
      if (at !== end || crc !== sums.rows)
        throw new SnapshotUnusable(`${rowsFile(segment)} does not match its checksum`);
      return chunks;
    } catch (error) {
      // Damage that the checksum would have caught, had the chunks' lengths led to it.
      if (error instanceof SnapshotUnusable) throw error;
      throw new SnapshotUnusable(
        `${rowsFile(segment)} is damaged (${(error as Error).message.slice(0, 200)})`,
      );
    } finally {
      await handle.close();
    }
  }

  /** The float32 unit vector in `slot`, or undefined when it does not match `crc`. */
  async readVector(slot: number, crc: number): Promise<Float32Array | undefined> {
    const row = Buffer.alloc(this.#rowBytes);
    const { bytesRead } = await this.#vectors.read(row, 0, row.length, slot * this.#rowBytes);
    if (bytesRead !== row.length || crc32(row) !== crc) return undefined;
    return new Float32Array(row.buffer, row.byteOffset, this.#layout.dimension);
  }

  /**
   * A segment's whole rows file, to slice its texts from (a flush, a keyword index build), or
   * undefined when its texts do not match `sums.texts`.
   */
  async readTexts(segment: number, sums: SegmentSums): Promise<Buffer | undefined> {
    let content: Buffer;
    try {
      content = await readFile(join(this.#directory, rowsFile(segment)));
    } catch {
      return undefined;
    }
    return content.length >= sums.bytes && crc32(content.subarray(0, sums.bytes)) === sums.file
      ? content
      : undefined;
  }

  /** A segment's float32 rows, one read; each row is checked by the caller with `rowOf`. */
  async readVectors(segment: number): Promise<Float32Array> {
    const { segmentSize, dimension } = this.#layout;
    const block = new Float32Array(segmentSize * dimension);
    const bytes = new Uint8Array(block.buffer);
    await this.#vectors.read(bytes, 0, bytes.length, (segment - 1) * segmentSize * this.#rowBytes);
    return block;
  }

  /** Row `position` of a block from `readVectors`, if it matches `crc`. */
  rowOf(block: Float32Array, position: number, crc: number): Float32Array | undefined {
    const { dimension } = this.#layout;
    const row = block.subarray(position * dimension, (position + 1) * dimension);
    return crc32(new Uint8Array(row.buffer, row.byteOffset, row.byteLength)) === crc
      ? row
      : undefined;
  }

  /** The text at `ref` in a segment's rows file, or undefined when it does not match `hash`. */
  async readText(
    segment: number,
    ref: StoredRef,
    check: (text: string) => boolean,
  ): Promise<string | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(join(this.#directory, rowsFile(segment)), "r");
    } catch {
      return undefined;
    }
    try {
      const bytes = Buffer.alloc(ref.length);
      const { bytesRead } = await handle.read(bytes, 0, ref.length, ref.at);
      const text = bytes.toString("utf8", 0, bytesRead);
      return bytesRead === ref.length && check(text) ? text : undefined;
    } finally {
      await handle.close();
    }
  }

  /**
   * Writes a segment's block: its float32 rows and codes in place, and its rows file (texts
   * included). `entries[p]` is the record at position p, or undefined for a hole; `codes`
   * (from `captureCodes`) holds the runs of positions whose vectors changed (a put or a delete),
   * whose float32 rows and codes are written, and the block's checksum.
   *
   * With `after`, the segment's sums as the header holds them, the entries are only the records
   * added since (the rest undefined) and go in a chunk appended to the rows file; undefined,
   * having appended nothing, when the file is not as `after` describes it: the caller writes
   * the block whole (the float32 rows and codes written in place meanwhile are the same ones;
   * until then the header's checksums no longer vouch for the block, as after a crash in a
   * flush). Otherwise the rows file is replaced atomically, and the block's float32 rows and
   * codes from `codes.rows` to its end are zeroed where the files reach (see `#zeroTail`).
   * Call `sync()` and then `writeHeader()` once every changed segment is written.
   */
  async writeSegment(
    segment: number,
    entries: ReadonlyArray<SnapshotEntry | undefined>,
    codes: SegmentCodes,
    indexBytes: number,
    after?: SegmentSums,
  ): Promise<{ sums: SegmentSums; refs: Map<string, StoredRef> } | undefined> {
    const { segmentSize, stride } = this.#layout;
    const first = (segment - 1) * segmentSize;
    const file = join(this.#directory, rowsFile(segment));
    const start = after?.bytes ?? 0;
    const { chunk, refs, sums } = encodeRows(entries, start, after);
    // Only the rows that changed, a run of neighbours at a time: the others are on disk
    // already, and the flush's cost is then the batch's, not the segment's. An emptied row is
    // written as zeros. The float32 rows go as they are, gathered by writev, rather than copied
    // into a buffer for the run first. All at once, beside the rows file: each call's end waits
    // for a turn of the event loop, which the adds going on meanwhile make long.
    const zero = new Uint8Array(this.#rowBytes);
    const inPlace = codes.runs.map(async ({ from, bytes }) => {
      const to = from + bytes.length / stride;
      const rows: Uint8Array[] = [];
      for (let position = from; position < to; position++) {
        const unit = entries[position]?.unit;
        rows.push(unit ? bytesOf(unit) : zero);
      }
      // Whole, or an error: a short write (a full disk) is not left for the next open's
      // checksum to find.
      await Promise.all([
        writeAt(this.#vectors, rows, (first + from) * this.#rowBytes),
        writeAt(this.#codes, bytes, (first + from) * stride),
      ]);
    });
    const [rowsWritten, ...runs] = await Promise.allSettled([
      after
        ? appendAtSize(file, chunk, start, true)
        : writeFileAtomically(file, chunk).then(() => true),
      ...inPlace,
      after ? undefined : this.#zeroTail(segment, codes.rows),
    ]);
    for (const result of [rowsWritten, ...runs])
      if (result!.status === "rejected") throw result!.reason;
    if (rowsWritten!.status === "fulfilled" && !rowsWritten!.value) return undefined;
    return { sums: { ...sums, codes: codes.crc, index: indexBytes }, refs };
  }

  /**
   * Zeros the segment's float32 rows and codes from `from` to its end, as far as each file
   * reaches, the checksum taking them for zeros. In a block rewritten from its vectra file,
   * which keeps no holes, the records are renumbered 0..count−1, and the rows from `count` on
   * held the records that followed a removed one: left there, every later open found the
   * codes not matching their checksum and read the vectra files again (20 s at 100,000
   * records; found by a review). Blocks of another segment size (an open that moves records
   * into new segments) leave the same. In a running store there is nothing but zeros there,
   * if anything: it costs the two stats. A full segment has no such rows.
   */
  async #zeroTail(segment: number, from: number): Promise<void> {
    const { segmentSize, stride } = this.#layout;
    if (from >= segmentSize) return;
    const first = (segment - 1) * segmentSize;
    const zero = async (handle: FileHandle, rowBytes: number) => {
      const start = (first + from) * rowBytes;
      const end = Math.min((first + segmentSize) * rowBytes, (await handle.stat()).size);
      if (end > start) await writeAt(handle, new Uint8Array(end - start), start);
    };
    await Promise.all([zero(this.#codes, stride), zero(this.#vectors, this.#rowBytes)]);
  }

  /**
   * A segment's block of codes (`block`, live in the search's memory) as a flush finds it: its
   * crc32, and copies of the runs of positions it writes (`changed`, or all `count`). Adds go on
   * changing the block while the flush writes.
   *
   * The rows from `count` on hold no record, and are zeros in `block`; on disk too, once
   * `writeSegment` has written the block (it zeros them). The crc32 is of the first `count`
   * rows, taken on from the last flush's when only rows after those changed (adds, the usual
   * case), then extended by the zeros without reading them: a flush then checksums its
   * batch, not the segment, and touches no page of rows not yet written. Were a row past
   * `count` not zeros, the checksum would not match the block, and the next open would refuse
   * the snapshot and read the vectra files.
   */
  captureCodes(
    segment: number,
    block: Uint8Array,
    changed: ReadonlySet<number> | undefined,
    count: number,
  ): SegmentCodes {
    const { stride } = this.#layout;
    const runs = runsOf(changed ?? range(count), count).map(([from, to]) => ({
      from,
      bytes: block.slice(from * stride, to * stride),
    }));
    const last = this.#heads.get(segment);
    const head =
      last && changed && count >= last.rows && [...changed].every((p) => p >= last.rows)
        ? last
        : { rows: 0, crc: 0 };
    const crc = crc32(block.subarray(head.rows * stride, count * stride), head.crc);
    this.#heads.set(segment, { rows: count, crc });
    return { crc: crc32Zeros(crc, block.length - count * stride), rows: count, runs };
  }

  /** Makes the in-place writes durable; the header that vouches for them comes after. */
  async sync(): Promise<void> {
    await Promise.all([this.#vectors.datasync(), this.#codes.datasync()]);
  }

  async writeHeader(header: SnapshotHeader): Promise<void> {
    await writeFileAtomically(
      join(this.#directory, SNAPSHOT_FILES.header),
      `${JSON.stringify(header)}\n`,
    );
  }

  /** Stops the next open from trusting the snapshot: it reads the vectra files and rewrites it. */
  async invalidate(): Promise<void> {
    await unlink(join(this.#directory, SNAPSHOT_FILES.header)).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    });
  }

  async close(): Promise<void> {
    await this.#codes.close();
    await this.#vectors.close();
  }
}

/**
 * A rows chunk for the file at byte `start`: its rows block, then their texts; with the refs
 * that find each text in it, and the sums it leaves the file with. The block and its columns
 * are this call's own: garbage before the writes start, not held through them.
 */
function encodeRows(
  entries: ReadonlyArray<SnapshotEntry | undefined>,
  start: number,
  after: SegmentSums | undefined,
) {
  const present: Array<[number, SnapshotEntry]> = [];
  entries.forEach((entry, position) => entry && present.push([position, entry]));
  const count = present.length;
  const rows: SnapshotRows = {
    ...encodeColumns(present.map(([, entry]) => entry)),
    ids: present.map(([, entry]) => entry.record.id),
    position: Uint32Array.from(present, ([position]) => position),
    scale: Float32Array.from(present, ([, entry]) => entry.scale),
    crc: Uint32Array.from(present, ([, entry]) => crc32(bytesOf(entry.unit))),
    textAt: new Uint32Array(count),
    textLength: new Uint32Array(count),
  };
  const texts = present.map(([, entry]) => Buffer.from(entry.text, "utf8"));
  let textBytes = 0;
  texts.forEach((text, i) => {
    rows.textAt[i] = textBytes;
    rows.textLength[i] = text.length;
    textBytes += text.length;
  });
  const json = Buffer.from(
    JSON.stringify({ ids: rows.ids, strings: rows.strings, rare: rows.rare }),
    "utf8",
  );
  const head = Buffer.alloc(BLOCK_HEAD);
  head.writeUInt32LE(count, 0);
  head.writeUInt32LE(json.length, 4);
  head.writeUInt32LE(textBytes, 8);
  const padding = Buffer.alloc(align(BLOCK_HEAD + json.length) - BLOCK_HEAD - json.length);
  const block = Buffer.concat([
    head,
    json,
    padding,
    ...COLUMNS.map(([name]) => {
      const column = rows[name];
      return new Uint8Array(column.buffer, column.byteOffset, column.byteLength);
    }),
  ]);
  const length = Buffer.alloc(LENGTH_BYTES);
  length.writeUInt32LE(block.length, 0);
  const textBlob = Buffer.concat(texts);
  const chunk = Buffer.concat([length, block, textBlob]);
  const base = start + LENGTH_BYTES + block.length;
  const refs = new Map<string, StoredRef>(
    rows.ids.map((id, i) => [
      id,
      { at: base + rows.textAt[i]!, length: rows.textLength[i]!, crc: rows.crc[i]! },
    ]),
  );
  const sums = {
    rows: crc32(block, after?.rows ?? 0),
    texts: crc32(textBlob, after?.texts ?? 0),
    bytes: start + chunk.length,
    chunks: (after?.chunks ?? 0) + 1,
    file: crc32(chunk, after?.file ?? 0),
  };
  return { chunk, refs, sums };
}

// A rows block: the rows' count, the byte lengths of its JSON and of the texts after it (u32
// each), the JSON (ids, the strings the columns index, what the columns do not hold), zeros to
// a multiple of 8, then the columns in this order, wider elements first: each is then aligned
// for a typed array over the block, which an open reads as it is, making no object a row.
const BLOCK_HEAD = 12;
const COLUMNS = [
  ["number", Float64Array, 1],
  ["created", Float64Array, 1],
  ["position", Uint32Array, 1],
  ["repo", Uint32Array, 1],
  ["author", Uint32Array, 1],
  ["state", Uint32Array, 1],
  ["crc", Uint32Array, 1],
  ["textAt", Uint32Array, 1],
  ["textLength", Uint32Array, 1],
  ["scale", Float32Array, 1],
  ["kind", Uint8Array, 1],
  ["flags", Uint8Array, 1],
  ["hash", Uint8Array, HASH_BYTES],
] as const;
const ROW_BYTES = COLUMNS.reduce((sum, [, type, per]) => sum + type.BYTES_PER_ELEMENT * per, 0);

const align = (bytes: number) => Math.ceil(bytes / 8) * 8;

/** A rows block's rows, their columns over the block's own memory, and its texts' length. */
export function decodeRows(block: Uint8Array): { rows: SnapshotRows; textBytes: number } {
  if (block.byteOffset % 8 !== 0) throw new Error("a rows block must start 8-byte aligned");
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const count = view.getUint32(0, true);
  const jsonBytes = view.getUint32(4, true);
  const textBytes = view.getUint32(8, true);
  let at = align(BLOCK_HEAD + jsonBytes);
  if (at + count * ROW_BYTES !== block.length)
    throw new Error(`a rows block of ${count} rows cannot be ${block.length} bytes`);
  const { ids, strings, rare } = JSON.parse(
    Buffer.from(block.buffer, block.byteOffset + BLOCK_HEAD, jsonBytes).toString("utf8"),
  ) as { ids: string[]; strings: Array<string | null>; rare: Record<string, Rare> };
  if (!Array.isArray(ids) || ids.length !== count || !Array.isArray(strings))
    throw new Error(`a rows block's ids do not match its ${count} rows`);
  const columns: Record<string, ArrayBufferView> = {};
  for (const [name, type, per] of COLUMNS) {
    columns[name] = new type(block.buffer as ArrayBuffer, block.byteOffset + at, count * per);
    at += count * per * type.BYTES_PER_ELEMENT;
  }
  // Each column is the type COLUMNS names, which is the one SnapshotRows gives it.
  return { rows: { ...columns, ids, strings, rare } as unknown as SnapshotRows, textBytes };
}

const range = (count: number) => new Set(Array.from({ length: count }, (_, i) => i));

const bytesOf = (vector: Float32Array) =>
  new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);

/** The runs of consecutive positions in `positions` below `count`, as [from, to) pairs. */
function runsOf(positions: ReadonlySet<number>, count: number): Array<[number, number]> {
  const sorted = [...positions].filter((p) => p < count).sort((a, b) => a - b);
  const runs: Array<[number, number]> = [];
  for (const position of sorted) {
    const last = runs.at(-1);
    if (last && last[1] === position) last[1] = position + 1;
    else runs.push([position, position + 1]);
  }
  return runs;
}

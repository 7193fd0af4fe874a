import { constants } from "node:fs";
import { open, readFile, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { crc32Zeros } from "./crc32-zeros.js";
import { z } from "zod";
import { appendAtSize } from "../append-at-size.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import type { MemoryKind, RecordMetadata } from "./memory-store.js";
import type { ScanHelper } from "./scan-helper.js";

/**
 * The binary snapshot a store opens from in well under a second, next to vectra's index files
 * (the durable, interoperable format, whose protobuf decode takes ~20 s at 100,000 records).
 *
 * - `vectors.i8`: every slot's int8 codes, `stride` bytes a slot, slot s at byte s × stride.
 *   Opening reads it straight into the search matrix's WebAssembly memory, with no decoding.
 * - `vectors.f32`: every slot's float32 unit vector, for exact rescoring and for rewriting a
 *   vectra segment; read a row at a time, never whole.
 * - `rows-NNNNNN.bin`, one per segment: chunks of a little-endian u32 length, that many bytes
 *   of JSON (each record's slot position, metadata, scale, text hash and vector checksum), then
 *   those records' texts, read one at a time when shown. A flush that only adds records appends
 *   a chunk: it then costs its batch, not the segment's thousand rows. Past a few chunks, or on
 *   any other change, the file is rewritten as one.
 * - `snapshot.json`, written last: the log checkpoint it covers and the checksums of each
 *   segment's rows JSON and codes.
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

const SnapshotHeader = z.object({
  format: z.literal(1),
  model: z.string(),
  dimension: z.number().int().positive(),
  segmentSize: z.number().int().positive(),
  checkpoint: z.number().int().nonnegative(),
  /**
   * Per segment: the crc32 of its rows JSON (its chunks' in order), of its texts and of its
   * block of codes, and the size of its vectra file (a truncated one is rewritten from the
   * snapshot); and the rows file's size, chunks and crc32, which snapshots written before
   * chunks lack (their rows file is one chunk, as long as the file).
   */
  segments: z.record(
    z.string(),
    z.object({
      rows: z.number().int(),
      texts: z.number().int(),
      codes: z.number().int(),
      index: z.number().int(),
      bytes: z.number().int().optional(),
      chunks: z.number().int().optional(),
      file: z.number().int().optional(),
    }),
  ),
});
export type SnapshotHeader = z.infer<typeof SnapshotHeader>;

/** A record as a rows file holds it: without its text, which follows the JSON. */
export interface SnapshotRow {
  position: number;
  id: string;
  kind: MemoryKind;
  repo: string;
  number?: number;
  author?: string;
  url?: string;
  createdAt: string;
  state?: string;
  metadata?: Record<string, string | number | boolean>;
  /** sha256 of the text, base64: checks the text when it is read. */
  hash: string;
  /** The int8 codes' scale. */
  scale: number;
  /** crc32 of the float32 row. */
  crc: number;
  /** Byte offset and length of the text, from the end of its chunk's JSON. */
  text: [number, number];
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
  runs: Array<{ from: number; bytes: Uint8Array }>;
}

export class SnapshotUnusable extends Error {
  override name = "SnapshotUnusable";
}

const LENGTH_BYTES = 4;
// A rows file of this many chunks is rewritten as one at its next change: opening reads each
// chunk's JSON with a read of its own.
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
      header = SnapshotHeader.parse(JSON.parse(text));
    } catch (error) {
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
   * Reads the codes of every slot up to `into.length` bytes, then checks them. With a helper,
   * all of them on its thread: faulting in the memory's fresh pages and checking them is most
   * of an open besides the rows, which the caller parses meanwhile. Split half and half, the
   * caller's half delayed its rows, which at 100,000 records were done last (codes at ~0.5 s,
   * rows at ~1.0 s). With every code read on the helper and the rows files read ahead, opens
   * at 100,000 took 46 ms less on average (about 4%; faster in 10 of 14 rounds against the
   * commit before, in one sitting): this VM's page faults bound both threads.
   */
  async readCodes(header: SnapshotHeader, into: Uint8Array, helper?: ScanHelper): Promise<void> {
    const block = this.#layout.segmentSize * this.#layout.stride;
    const loaded =
      helper && into.buffer instanceof SharedArrayBuffer
        ? await helper.load({
            into: into.buffer,
            offset: into.byteOffset,
            length: into.length,
            file: join(this.#directory, SNAPSHOT_FILES.codes),
            block,
          })
        : undefined;
    // A helper that could not: they are read here.
    const crcs = loaded ?? (await this.#readCodesHere(into, block));
    for (const [segment, sums] of Object.entries(header.segments)) {
      if (crcs[Number(segment) - 1] !== sums.codes)
        throw new SnapshotUnusable(`the codes of segment ${segment} do not match their checksum`);
    }
  }

  /**
   * Reads `into.length` bytes of codes from the file's start into `into`, zero past its
   * end; returns the crc32 of each `block` bytes, each taken as soon as its bytes are in.
   */
  async #readCodesHere(into: Uint8Array, block: number): Promise<number[]> {
    // Straight into the search's memory, in chunks of whole blocks: on this project's 2-core
    // VM one 154 MB read() took 300 ms where 4 MB reads into the same memory took 16 ms.
    const chunk = Math.max(1, Math.floor(READ_CHUNK / block)) * block;
    const crcs: number[] = [];
    let read = 0;
    while (read < into.length) {
      const length = Math.min(chunk, into.length - read);
      const { bytesRead } = await this.#codes.read(into, read, length, read);
      // The file ends at the last slot written: the rest of the last segment reads as zeros.
      into.fill(0, read + bytesRead, read + length);
      for (let start = read; start < read + length; start += block)
        crcs.push(crc32(into.subarray(start, Math.min(start + block, read + length))));
      read += length;
    }
    return crcs;
  }

  /** A segment's rows, checked against the header's checksum. */
  async readRows(header: SnapshotHeader, segment: number): Promise<SnapshotRow[]> {
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
      const end = sums.bytes ?? (await handle.stat()).size;
      const rows: SnapshotRow[] = [];
      const length = Buffer.alloc(LENGTH_BYTES);
      let crc = 0;
      let at = 0;
      while (at + LENGTH_BYTES <= end) {
        await handle.read(length, 0, LENGTH_BYTES, at);
        const jsonBytes = Math.min(length.readUInt32LE(0), end - at - LENGTH_BYTES);
        const json = Buffer.alloc(jsonBytes);
        const { bytesRead } = await handle.read(json, 0, jsonBytes, at + LENGTH_BYTES);
        if (bytesRead !== jsonBytes) break;
        crc = crc32(json, crc);
        const chunk = parseRows(json);
        const base = at + LENGTH_BYTES + jsonBytes;
        at = base;
        for (const row of chunk) {
          at = Math.max(at, base + row.text[0] + row.text[1]);
          row.text[0] += base;
          rows.push(row);
        }
        // The earlier format: one chunk, whatever follows its JSON is texts.
        if (sums.bytes === undefined) at = end;
      }
      if (at !== end || crc !== sums.rows)
        throw new SnapshotUnusable(`${rowsFile(segment)} does not match its checksum`);
      return rows;
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
    if (sums.bytes !== undefined)
      return content.length >= sums.bytes && crc32(content.subarray(0, sums.bytes)) === sums.file
        ? content
        : undefined;
    if (content.length < LENGTH_BYTES) return undefined;
    const base = LENGTH_BYTES + content.readUInt32LE(0);
    return base <= content.length && crc32(content.subarray(base)) === sums.texts
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
   * flush). Otherwise the rows file is replaced atomically. Call `sync()` and then
   * `writeHeader()` once every changed segment is written.
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
    if (after && after.bytes === undefined) return undefined;
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
      await Promise.all([
        this.#vectors.writev(rows, (first + from) * this.#rowBytes),
        this.#codes.write(bytes, 0, bytes.length, (first + from) * stride),
      ]);
    });
    const [rowsWritten, ...runs] = await Promise.allSettled([
      after
        ? appendAtSize(file, chunk, start, true)
        : writeFileAtomically(file, chunk).then(() => true),
      ...inPlace,
    ]);
    for (const result of [rowsWritten, ...runs])
      if (result!.status === "rejected") throw result!.reason;
    if (rowsWritten!.status === "fulfilled" && !rowsWritten!.value) return undefined;
    return { sums: { ...sums, codes: codes.crc, index: indexBytes }, refs };
  }

  /**
   * A segment's block of codes (`block`, live in the search's memory) as a flush finds it: its
   * crc32, and copies of the runs of positions it writes (`changed`, or all `count`). Adds go on
   * changing the block while the flush writes.
   *
   * The rows from `count` on have never held a record, and are zeros. The crc32 is of the first
   * `count` rows, taken on from the last flush's when only rows after those changed (adds, the
   * usual case), then extended by the zeros without reading them: a flush then checksums its
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
    return { crc: crc32Zeros(crc, block.length - count * stride), runs };
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
 * A rows chunk for the file at byte `start`: its rows' JSON, then their texts; with the refs
 * that find each text in it, and the sums it leaves the file with. The rows and their JSON are
 * this call's own: garbage before the writes start, not held through them.
 */
function encodeRows(
  entries: ReadonlyArray<SnapshotEntry | undefined>,
  start: number,
  after: SegmentSums | undefined,
) {
  const rows: SnapshotRow[] = [];
  const texts: Buffer[] = [];
  let textBytes = 0;
  entries.forEach((entry, position) => {
    if (!entry) return;
    const { record, hash, unit, scale } = entry;
    const crc = crc32(bytesOf(unit));
    const text = Buffer.from(entry.text, "utf8");
    texts.push(text);
    // One literal, every field named: spread and then extended, a row took ~2.4 KB of V8's heap
    // (an object in dictionary mode) where this takes ~0.2, and a flush's rows were a third of
    // what the adders' process moved to the old generation. The same JSON, key for key.
    const row = {
      id: record.id,
      kind: record.kind,
      repo: record.repo,
      number: record.number,
      author: record.author,
      url: record.url,
      createdAt: record.createdAt,
      state: record.state,
      metadata: record.metadata,
      position,
      hash,
      scale,
      crc,
      text: [textBytes, text.length] as [number, number],
    } satisfies Record<keyof RecordMetadata | keyof SnapshotRow, unknown>;
    rows.push(row);
    textBytes += text.length;
  });
  const json = Buffer.from(JSON.stringify(rows), "utf8");
  const length = Buffer.alloc(LENGTH_BYTES);
  length.writeUInt32LE(json.length, 0);
  const textBlob = Buffer.concat(texts);
  const chunk = Buffer.concat([length, json, textBlob]);
  const base = start + LENGTH_BYTES + json.length;
  const refs = new Map<string, StoredRef>(
    rows.map((row) => [row.id, { at: base + row.text[0], length: row.text[1], crc: row.crc }]),
  );
  const sums = {
    rows: crc32(json, after?.rows ?? 0),
    texts: crc32(textBlob, after?.texts ?? 0),
    bytes: start + chunk.length,
    chunks: (after?.chunks ?? 0) + 1,
    file: crc32(chunk, after?.file ?? 0),
  };
  return { chunk, refs, sums };
}

// A segment's rows are parsed a run at a time, each run's text well under the size from which
// V8 gives a string fresh pages of its own (with the cost of faulting them in): a segment's
// JSON decoded as one string of ~320 KB took 118–160 ms over 100 segments, decoded in pieces
// of 100 KB 6–28 ms.
const ROWS_RUN_BYTES = 64 * 1024;
// JSON.stringify of rows whose first key is `id` has these bytes between two rows, and nowhere
// else: a quote inside a string is escaped, and metadata values are not objects.
const BETWEEN_ROWS = Buffer.from('},{"id":');

/** The rows of one chunk's JSON (an array), as `JSON.parse` gives them. */
export function parseRows(json: Buffer): SnapshotRow[] {
  const last = json.length - 1;
  if (json.length <= ROWS_RUN_BYTES || json[0] !== 0x5b || json[last] !== 0x5d)
    return JSON.parse(json.toString("utf8")) as SnapshotRow[];
  const rows: SnapshotRow[] = [];
  for (let from = 1; from < last;) {
    const between = json.indexOf(BETWEEN_ROWS, from + ROWS_RUN_BYTES);
    const end = between < 0 ? last : between + 1;
    for (const row of JSON.parse(`[${json.toString("utf8", from, end)}]`) as SnapshotRow[])
      rows.push(row);
    from = end + 1;
  }
  return rows;
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

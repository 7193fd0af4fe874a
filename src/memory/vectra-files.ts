import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type * as Vectra from "vectra";
import type { IndexItem, MetadataTypes } from "vectra";
import { appendAtSize } from "../append-at-size.js";
import { writeFileAtomically } from "../write-file-atomically.js";

// The three parts of vectra the memory uses, loaded on their own. Its entry point loads every
// part, a GPT-3 tokenizer's ranks, a web fetcher and a server among them: 520 ms, 24 MB of
// heap and 77 MB of RSS more than these three, in every process that opens a memory, and a
// larger heap for every full collection to mark. Its `exports` names only the entry point, so
// they are required by file, beside it: vectra is pinned at 0.15.0, and vectra-files.test.ts
// fails if an upgrade moves or changes them.
const require = createRequire(import.meta.url);
const lib = dirname(require.resolve("vectra"));
export const { LocalIndex } = require(join(lib, "LocalIndex.js")) as Pick<
  typeof Vectra,
  "LocalIndex"
>;
export const { LocalFileStorage } = require(join(lib, "storage", "index.js")) as Pick<
  typeof Vectra,
  "LocalFileStorage"
>;
const { ProtobufCodec } = require(join(lib, "codecs", "index.js")) as Pick<
  typeof Vectra,
  "ProtobufCodec"
>;

/**
 * vectra's file storage with atomic writes. vectra saves an index with a plain `writeFile`, so a
 * crash in the middle leaves a torn or empty file; here every write goes to a temporary file,
 * is fsynced, and is renamed over the old one.
 */
export class AtomicFileStorage extends LocalFileStorage {
  override async upsertFile(filePath: string, content: Buffer | string): Promise<void> {
    await writeFileAtomically(filePath, content);
  }

  override async createFile(filePath: string, content: Buffer | string): Promise<void> {
    if (await this.pathExists(filePath)) throw new Error(`File already exists: ${filePath}`);
    await writeFileAtomically(filePath, content);
  }
}

/**
 * Memory is kept as vectra index files (protobuf codec: float32 vectors, about a quarter of the
 * JSON codec's size), each holding a bounded segment of the records so that a flush rewrites
 * only the segments that changed. Each file opens as a vectra `LocalIndex`.
 */
export const SEGMENT_CODEC = new ProtobufCodec();

export type SegmentItem = IndexItem<Record<string, MetadataTypes>>;

export async function writeSegment(
  file: string,
  records: readonly SegmentRecord[],
): Promise<number> {
  const pieces = encodeSegment(records);
  await writeFileAtomically(file, pieces);
  return byteLengthOf(pieces);
}

/**
 * Adds records at the end of a segment file, which must be `expectedBytes` long, and returns
 * its new size; undefined, having written nothing, when it is not that long (a write that failed
 * half-way, say): the caller rewrites the file whole. An index is a protobuf message whose
 * items are a repeated field, so items appended to it are read as its last ones: a flush that
 * only adds records writes those, not the segment. A crash in the middle leaves a torn tail,
 * which the manifest's record of each file's size cuts off at the next open.
 */
export async function appendSegment(
  file: string,
  records: readonly SegmentRecord[],
  expectedBytes: number,
): Promise<number | undefined> {
  const pieces = encodeItems(new ProtoWriter(sizeHint(records)), records).finish();
  return (await appendAtSize(file, pieces, expectedBytes))
    ? expectedBytes + byteLengthOf(pieces)
    : undefined;
}

/** The items of a segment file; a file that cannot be decoded is an error naming it. */
export async function readSegment(
  storage: AtomicFileStorage,
  file: string,
): Promise<SegmentItem[]> {
  const content = await storage.readFile(file);
  try {
    return SEGMENT_CODEC.deserializeIndex(content).items as SegmentItem[];
  } catch (error) {
    throw new Error(`${file} is not a readable vectra index (${(error as Error).message})`, {
      cause: error,
    });
  }
}

/** Opens a segment file as vectra itself would, e.g. to inspect it. */
export function openSegmentIndex(directory: string, fileName: string): Vectra.LocalIndex {
  return new LocalIndex(directory, fileName, new AtomicFileStorage(), SEGMENT_CODEC);
}

/** A record to write into a segment file; its vector stays a Float32Array. */
export interface SegmentRecord {
  id: string;
  vector: Float32Array;
  norm: number;
  metadata: Record<string, MetadataTypes>;
}

/**
 * vectra's protobuf index format (its `schemas/index.proto`), encoded here rather than by its
 * codec: the codec wants each vector as a `number[]`, and copying 1,000 vectors into arrays and
 * encoding them float by float took about 80 ms of every flush. A packed `repeated float` is
 * the float32 bytes as they are, so here they are not copied at all: the file's content is
 * the pieces in order, written with one `writev`. A test checks that this writes the same bytes
 * as vectra's codec, and fails on any vectra upgrade that changes the format.
 */
export function encodeSegment(records: readonly SegmentRecord[]): Uint8Array[] {
  const writer = new ProtoWriter(sizeHint(records) + 16);
  writer.varintField(1, 1); // version
  writer.bytesField(2, new Uint8Array(0)); // metadata_config, with no indexed fields
  return encodeItems(writer, records).finish();
}

// The bytes besides the vectors, which are not copied: ids, metadata (texts included) and tags.
const sizeHint = (records: readonly SegmentRecord[]) => records.length * 512;

const byteLengthOf = (pieces: readonly Uint8Array[]) =>
  pieces.reduce((sum, piece) => sum + piece.byteLength, 0);

/**
 * The items, as the index's repeated field 3, written straight into the output: each item's and
 * metadata entry's length is counted first (protobuf puts a message's length before it), so
 * nothing is built apart and copied. Items and entries built as buffers of their own took four
 * small buffers a metadata value and a third of a flush's time on the event loop.
 */
function encodeItems(out: ProtoWriter, records: readonly SegmentRecord[]): ProtoWriter {
  for (const record of records) {
    const { id, vector, norm, metadata } = record;
    const entries = Object.entries(metadata);
    // Counted once: a value is the record's text, among others.
    const valueSizes = entries.map(([, value]) => metadataValueSize(value));
    const entrySizes = entries.map(
      ([key], i) => stringFieldSize(key) + 1 + varintBytes(valueSizes[i]!) + valueSizes[i]!,
    );
    // proto3 leaves out a field at its default value, except in a oneof.
    let size = id !== "" ? stringFieldSize(id) : 0;
    for (const entrySize of entrySizes) size += 1 + varintBytes(entrySize) + entrySize;
    const floats = vector.byteLength;
    if (floats > 0) size += 1 + varintBytes(floats) + floats;
    if (norm !== 0) size += 9;
    out.tag(3, 2);
    out.varint(size);
    if (id !== "") out.stringField(1, id);
    entries.forEach(([key, value], i) => {
      out.tag(2, 2);
      out.varint(entrySizes[i]!);
      out.stringField(1, key);
      out.tag(2, 2);
      out.varint(valueSizes[i]!);
      if (typeof value === "number") out.doubleField(2, value);
      else if (typeof value === "boolean") out.varintField(3, value ? 1 : 0);
      else out.stringField(1, String(value));
    });
    if (floats > 0)
      out.borrowedBytesField(
        3,
        new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength),
      );
    if (norm !== 0) out.doubleField(4, norm);
  }
  return out;
}

const stringFieldSize = (text: string) => {
  const length = Buffer.byteLength(text, "utf8");
  return 1 + varintBytes(length) + length;
};

/** A metadata value's message: a string (field 1), a double (2) or a bool (3). */
function metadataValueSize(value: MetadataTypes): number {
  if (typeof value === "number") return 9;
  if (typeof value === "boolean") return 2;
  return stringFieldSize(String(value));
}

function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = value; rest > 0x7f; rest = Math.floor(rest / 128)) bytes++;
  return bytes;
}

/**
 * Protocol buffers' wire format, as much of it as the index format needs, into one buffer and
 * the byte arrays it borrows. A flush's vectors copied into a new buffer took ~2 ms of its
 * 100 records' event-loop time at 250,000 records, almost all of it the first write of each
 * fresh page (~14 µs a fault on this VM).
 */
class ProtoWriter {
  #buffer: Buffer;
  #length = 0;
  // The content before `#cut` is in `#pieces` already (a buffer grown since keeps those bytes).
  readonly #pieces: Uint8Array[] = [];
  #cut = 0;

  constructor(capacity: number) {
    this.#buffer = Buffer.allocUnsafe(Math.max(16, capacity));
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  varintField(field: number, value: number): void {
    this.tag(field, 0);
    this.varint(value);
  }

  doubleField(field: number, value: number): void {
    this.tag(field, 1);
    this.#room(8);
    this.#buffer.writeDoubleLE(value, this.#length);
    this.#length += 8;
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, 2);
    this.varint(bytes.length);
    this.#room(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  stringField(field: number, text: string): void {
    const length = Buffer.byteLength(text, "utf8");
    this.tag(field, 2);
    this.varint(length);
    this.#room(length);
    this.#length += this.#buffer.write(text, this.#length, length, "utf8");
  }

  /** A bytes field whose bytes are not copied: they must not change until they are written. */
  borrowedBytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, 2);
    this.varint(bytes.length);
    this.#pieces.push(this.#buffer.subarray(this.#cut, this.#length), bytes);
    this.#cut = this.#length;
  }

  varint(value: number): void {
    this.#room(10);
    let rest = value;
    while (rest > 0x7f) {
      this.#buffer[this.#length++] = (rest & 0x7f) | 0x80;
      rest = Math.floor(rest / 128);
    }
    this.#buffer[this.#length++] = rest;
  }

  /** The content: its pieces, in order. */
  finish(): Uint8Array[] {
    return [...this.#pieces, this.#buffer.subarray(this.#cut, this.#length)];
  }

  #room(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + bytes));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}

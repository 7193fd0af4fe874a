import { open } from "node:fs/promises";
import {
  LocalFileStorage,
  LocalIndex,
  ProtobufCodec,
  type IndexItem,
  type MetadataTypes,
} from "vectra";
import { writeFileAtomically } from "../write-file-atomically.js";

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
  storage: AtomicFileStorage,
  file: string,
  records: readonly SegmentRecord[],
): Promise<number> {
  const content = encodeSegment(records);
  await storage.upsertFile(file, content);
  return content.length;
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
  let handle;
  try {
    handle = await open(file, "r+");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size !== expectedBytes) return undefined;
    const writer = new ProtoWriter();
    for (const record of records) writer.bytesField(3, encodeItem(record));
    const content = writer.finish();
    await handle.write(content, 0, content.length, size);
    await handle.datasync();
    return size + content.length;
  } finally {
    await handle.close();
  }
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
export function openSegmentIndex(directory: string, fileName: string): LocalIndex {
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
 * the float32 bytes as they are, so here it is one copy. A test checks that this writes the
 * same bytes as vectra's codec, and fails on any vectra upgrade that changes the format.
 */
export function encodeSegment(records: readonly SegmentRecord[]): Buffer {
  const writer = new ProtoWriter();
  writer.varintField(1, 1); // version
  writer.bytesField(2, Buffer.alloc(0)); // metadata_config, with no indexed fields
  for (const record of records) writer.bytesField(3, encodeItem(record));
  return writer.finish();
}

function encodeItem(record: SegmentRecord): Buffer {
  const item = new ProtoWriter();
  // proto3 leaves out a field at its default value, except in a oneof.
  if (record.id !== "") item.stringField(1, record.id);
  for (const [key, value] of Object.entries(record.metadata)) {
    const entry = new ProtoWriter();
    entry.stringField(1, key);
    entry.bytesField(2, encodeMetadataValue(value));
    item.bytesField(2, entry.finish());
  }
  const { vector } = record;
  if (vector.length > 0)
    item.bytesField(3, Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength));
  if (record.norm !== 0) item.doubleField(4, record.norm);
  return item.finish();
}

function encodeMetadataValue(value: MetadataTypes): Buffer {
  const writer = new ProtoWriter();
  if (typeof value === "number") writer.doubleField(2, value);
  else if (typeof value === "boolean") writer.varintField(3, value ? 1 : 0);
  else writer.stringField(1, String(value));
  return writer.finish();
}

/** Protocol buffers' wire format, as much of it as the index format needs. */
class ProtoWriter {
  readonly #parts: Buffer[] = [];

  varintField(field: number, value: number): void {
    this.#varint((field << 3) | 0);
    this.#varint(value);
  }

  doubleField(field: number, value: number): void {
    this.#varint((field << 3) | 1);
    const bytes = Buffer.alloc(8);
    bytes.writeDoubleLE(value, 0);
    this.#parts.push(bytes);
  }

  bytesField(field: number, bytes: Buffer): void {
    this.#varint((field << 3) | 2);
    this.#varint(bytes.length);
    this.#parts.push(bytes);
  }

  stringField(field: number, text: string): void {
    this.bytesField(field, Buffer.from(text, "utf8"));
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }

  #varint(value: number): void {
    const bytes: number[] = [];
    let rest = value;
    while (rest > 0x7f) {
      bytes.push((rest & 0x7f) | 0x80);
      rest = Math.floor(rest / 128);
    }
    bytes.push(rest);
    this.#parts.push(Buffer.from(bytes));
  }
}

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
  items: SegmentItem[],
): Promise<number> {
  const content = SEGMENT_CODEC.serializeIndex({
    version: 1,
    metadata_config: { indexed: [] },
    items,
  });
  await storage.upsertFile(file, content);
  return content.length;
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

import { createHash } from "node:crypto";
import { open, stat } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { countFields } from "./bm25-index.js";
import { fingerprintText } from "./near-duplicate.js";

/**
 * A full segment's words, counted once and kept beside its rows file, so that the keyword and
 * near-duplicate indexes of a large memory are loaded rather than rebuilt from every text on
 * the first search after a start (3 s of tokenizing at 100,000 records on this project's VM).
 * A cache, never the truth: each position carries the hash of the text it was counted from,
 * and a position whose record has another text now, or no record, is counted from its text.
 */
export interface SegmentWords {
  /** By position: the sha256 (base64) of the text counted, or null where there was none. */
  hashes: Array<string | null>;
  terms: string[];
  /** By term: how many postings it has; they follow each other in `postings`, term by term. */
  counts: Int32Array;
  /** `[position, title tf << 16 | body tf]` pairs, grouped by term. */
  postings: Int32Array;
  /** By position. */
  titleLengths: Uint32Array;
  bodyLengths: Uint32Array;
  /** Near-exact duplicate fingerprints, for the positions that have any. */
  fingerprints: Array<[number, string[]]>;
}

/** A text's SHA-256, base64: a record's hash in its store, and how a words file names a text. */
export const hashText = (text: string) => createHash("sha256").update(text).digest("base64");

export const WORDS_FILE = /^words-\d+\.bin$/;
export const wordsFile = (segment: number) => `words-${String(segment).padStart(6, "0")}.bin`;

// "TWD" and the format's version; then the JSON part's length and a crc32 of all that follows.
// The version is also the words': 2 counts CJK text as pairs of characters (`countFields`),
// where 1 counted each run as one word; 3 keeps combining marks in their word and reads NFC,
// where 2 split त्रुटि into त, र and ट. A file of another version is counted again.
const TAG = 0x445754;
const VERSION = 3;
const MAGIC = TAG | ((0x30 + VERSION) << 24);
const PREFIX_BYTES = 12;
const OPEN_AT_ONCE = 16;

/** Counts a segment's texts one at a time (so that its owner can yield between them). */
export class SegmentWordsBuilder {
  readonly #hashes: Array<string | null>;
  readonly #terms = new Map<string, number>();
  readonly #lists: number[][] = [];
  readonly #titleLengths: Uint32Array;
  readonly #bodyLengths: Uint32Array;
  readonly #fingerprints: Array<[number, string[]]> = [];

  constructor(segmentSize: number) {
    this.#hashes = new Array<string | null>(segmentSize).fill(null);
    this.#titleLengths = new Uint32Array(segmentSize);
    this.#bodyLengths = new Uint32Array(segmentSize);
  }

  /** Counts `text` as position `position`'s (under `hash`: tests forge files with it). */
  add(position: number, text: string, hash = hashText(text)): void {
    const fields = countFields(text);
    for (const [term, packed] of fields.counts) {
      let id = this.#terms.get(term);
      if (id === undefined) {
        id = this.#lists.length;
        this.#terms.set(term, id);
        this.#lists.push([]);
      }
      this.#lists[id]!.push(position, packed);
    }
    this.#hashes[position] = hash;
    this.#titleLengths[position] = fields.titleLength;
    this.#bodyLengths[position] = fields.bodyLength;
    const fingerprints = fingerprintText(text);
    if (fingerprints.length > 0) this.#fingerprints.push([position, fingerprints]);
  }

  finish(): SegmentWords {
    const counts = Int32Array.from(this.#lists, (list) => list.length / 2);
    return {
      hashes: this.#hashes,
      terms: [...this.#terms.keys()],
      counts,
      postings: Int32Array.from(this.#lists.flat()),
      titleLengths: this.#titleLengths,
      bodyLengths: this.#bodyLengths,
      fingerprints: this.#fingerprints,
    };
  }
}

/**
 * The file: magic, JSON length, crc32; the JSON (hashes, terms, fingerprints), padded to four
 * bytes; then the counts, postings and lengths as little-endian 32-bit integers.
 */
export function encodeSegmentWords(words: SegmentWords): Buffer {
  const { hashes, terms, fingerprints, counts, postings, titleLengths, bodyLengths } = words;
  const json = Buffer.from(JSON.stringify({ hashes, terms, fingerprints }), "utf8");
  const padded = Math.ceil(json.length / 4) * 4;
  const ints = [counts, postings, titleLengths, bodyLengths];
  const body = Buffer.alloc(padded + ints.reduce((sum, array) => sum + array.byteLength, 0), 0x20);
  json.copy(body);
  let at = padded;
  for (const array of ints) {
    body.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), at);
    at += array.byteLength;
  }
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.writeUInt32LE(MAGIC, 0);
  prefix.writeUInt32LE(json.length, 4);
  prefix.writeUInt32LE(crc32(body), 8);
  return Buffer.concat([prefix, body]);
}

/**
 * The words in `content`, or the reason they cannot be trusted: any damage, a file of another
 * version, or one counted for another segment size.
 */
export function decodeSegmentWords(content: Buffer, segmentSize: number): SegmentWords | string {
  if (content.length < PREFIX_BYTES) return "not a words file of this version";
  const magic = content.readUInt32LE(0);
  if (magic !== MAGIC)
    return (magic & 0xffffff) === TAG
      ? `counted by words file version ${(magic >>> 24) - 0x30}, not ${VERSION}`
      : "not a words file of this version";
  const body = content.subarray(PREFIX_BYTES);
  if (crc32(body) !== content.readUInt32LE(8)) return "does not match its checksum";
  const jsonLength = content.readUInt32LE(4);
  let parsed: Pick<SegmentWords, "hashes" | "terms" | "fingerprints">;
  try {
    parsed = JSON.parse(body.subarray(0, jsonLength).toString("utf8")) as typeof parsed;
  } catch {
    return "its JSON does not parse";
  }
  const { hashes, terms, fingerprints } = parsed;
  if (!Array.isArray(hashes) || !Array.isArray(terms) || !Array.isArray(fingerprints))
    return "its JSON is not a words file's";
  if (hashes.length !== segmentSize) return `counted for segments of ${hashes.length}`;
  // Views into the file's bytes where they are four-byte aligned (see `readWordsFiles`),
  // copies where not.
  let at = Math.ceil(jsonLength / 4) * 4;
  const ints = (count: number) => {
    const start = body.byteOffset + at;
    at += count * 4;
    if (start % 4 === 0) return new Int32Array(body.buffer, start, count);
    const array = new Int32Array(count);
    new Uint8Array(array.buffer).set(body.subarray(at - count * 4, at));
    return array;
  };
  const counts = ints(terms.length);
  let total = 0;
  for (const count of counts) {
    if (count < 0) return "a term's count is negative";
    total += count;
  }
  if (body.length !== at + (2 * total + 2 * segmentSize) * 4) return "its lengths do not add up";
  const postings = ints(2 * total);
  const unsigned = (array: Int32Array) =>
    new Uint32Array(array.buffer, array.byteOffset, array.length);
  const titleLengths = unsigned(ints(segmentSize));
  const bodyLengths = unsigned(ints(segmentSize));
  for (let i = 0; i < postings.length; i += 2) {
    const position = postings[i]!;
    if (position < 0 || position >= segmentSize) return "a posting is out of the segment";
  }
  return { hashes, terms, counts, postings, titleLengths, bodyLengths, fingerprints };
}

/**
 * Reads `files` into one buffer, each at a four-byte boundary, so that their arrays decode as
 * views into it: a buffer of a few hundred KB per file, each freed on its own, left about 30 MB
 * per 100,000 records of RSS that the allocator kept. By file: its bytes, or undefined when it
 * does not exist or was replaced while being read (a words file being rewritten).
 */
export async function readWordsFiles(files: readonly string[]): Promise<Array<Buffer | undefined>> {
  const sizes = await Promise.all(
    files.map((file) =>
      stat(file).then(
        (info) => info.size,
        (error: NodeJS.ErrnoException) => {
          if (error.code === "ENOENT") return undefined;
          throw error;
        },
      ),
    ),
  );
  const offsets: number[] = [];
  let total = 0;
  for (const size of sizes) {
    offsets.push(total);
    total += Math.ceil((size ?? 0) / 4) * 4;
  }
  // Its own memory (not the pool's), freed whole once the index is loaded.
  const all = Buffer.allocUnsafeSlow(total);
  const contents: Array<Buffer | undefined> = [];
  // A few files open at a time: a memory of 250,000 records has 250 of them.
  for (let from = 0; from < files.length; from += OPEN_AT_ONCE) {
    const batch = files.slice(from, from + OPEN_AT_ONCE).map(async (file, j) => {
      const i = from + j;
      const size = sizes[i];
      if (size === undefined) return undefined;
      const handle = await open(file, "r").catch(() => undefined);
      if (!handle) return undefined;
      try {
        if ((await handle.stat()).size !== size) return undefined;
        const view = all.subarray(offsets[i], offsets[i]! + size);
        const { bytesRead } = await handle.read(view, 0, size, 0);
        return bytesRead === size ? view : undefined;
      } finally {
        await handle.close();
      }
    });
    contents.push(...(await Promise.all(batch)));
  }
  return contents;
}

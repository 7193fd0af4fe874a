import { open, readdir, readFile, stat, truncate, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Logger } from "pino";
import { syncDirectory } from "../sync-directory.js";

/** A memory file that cannot be read as it should: names the file (and entry) and says why. */
export class MemoryCorruptError extends Error {
  override name = "MemoryCorruptError";
}

/** What an append writes: a JSON value, and bytes that go with it as they are (a vector). */
export interface LogFrame<T = unknown> {
  value: T;
  bytes?: Uint8Array;
}

export interface LogEntry<T = unknown> {
  seq: number;
  /** Its place in the segment, from 1. */
  entry: number;
  value: T;
  /** The frame's bytes (empty when it had none), a view of the segment as read. */
  bytes: Buffer;
}

const SEGMENT = /^log-(\d{10})\.(bin|jsonl)$/;
const segmentName = (seq: number) => `log-${String(seq).padStart(10, "0")}.bin`;
// A frame: u32 JSON length, u32 bytes length, u32 crc32 of the lengths, JSON and bytes; then
// the JSON and the bytes. Little-endian.
const HEADER = 12;

/**
 * An append-only log in numbered segment files of checksummed binary frames, so that a frame
 * cut short by a crash, or damaged later, is recognised. A vector goes in as its float32 bytes:
 * as JSON and base64 it cost more to encode than everything else an add does. Appends are
 * durable (fdatasync) when they resolve. The owner rotates to a new segment before writing a
 * checkpoint, and deletes the segments the checkpoint covers afterwards. Segments of the
 * earlier format (`.jsonl`, a `<crc32> <json>` line an entry) are still read.
 */
export class WriteAheadLog {
  readonly #directory: string;
  #seq: number;
  #handle: FileHandle;
  /** See `#room`. */
  #buffer = Buffer.alloc(0);
  /** The current segment's size: where a failed append's bytes start, to be cut off from. */
  #size: number;
  /** A failed append's bytes are still in the segment (cutting them off failed too). */
  #dirty = false;
  /**
   * The segment may be new, its name not yet durable: the fdatasync of its first frames makes
   * their bytes durable, not the directory entry that finds them, so a power cut could lose
   * acknowledged adds with the whole file. The first append fsyncs the directory too.
   */
  #nameUnsynced: boolean;
  /**
   * The next segment, opened ahead: a rotation then takes no trip to the disk, and the adds
   * waiting behind a flush's start go on at once.
   */
  #next: Promise<OpenSegment>;
  /**
   * Segments no longer appended to and not yet deleted, by number: their file names, and their
   * handles' closing.
   */
  readonly #sealed = new Map<number, { name: string; closing: Promise<void> }>();

  private constructor(
    directory: string,
    seq: number,
    handle: FileHandle,
    size: number,
    earlier: ReadonlyArray<{ seq: number; name: string }>,
  ) {
    this.#directory = directory;
    this.#seq = seq;
    this.#handle = handle;
    this.#size = size;
    this.#nameUnsynced = size === 0;
    for (const { seq, name } of earlier)
      this.#sealed.set(seq, { name, closing: Promise.resolve() });
    this.#next = this.#openAhead();
  }

  #openAhead(): Promise<OpenSegment> {
    const next = openSegment(this.#directory, this.#seq + 1);
    // Handled here too: the rotation that needs it opens it again, and throws only if that fails.
    next.catch(() => undefined);
    return next;
  }

  /**
   * Opens the log and returns the entries of the segments after `checkpoint`, in order.
   * A torn last frame (a crash during an append) is cut off with a warning: it was never
   * acknowledged. Damage anywhere else is an error naming the file and entry, and so is a
   * segment missing after the checkpoint (see `checkLogSequence`).
   */
  static async open<T>(
    directory: string,
    checkpoint: number,
    log: Logger,
  ): Promise<{ wal: WriteAheadLog; entries: LogEntry<T>[] }> {
    const segments = logSegmentsIn(await readdir(directory));
    checkLogSequence(directory, segments, checkpoint);
    // Appends went to the newest segment that holds anything: the one after it, if any, was
    // opened ahead of the next rotation and is empty.
    const sizes = await Promise.all(
      segments.map((s) => (s.seq > checkpoint ? fileSize(join(directory, s.name)) : 0)),
    );
    const lastWritten = segments.filter((_, i) => sizes[i]! > 0).at(-1)?.seq ?? 0;
    const entries: LogEntry<T>[] = [];
    for (const { seq, name, legacy } of segments) {
      const file = join(directory, name);
      if (seq <= checkpoint) {
        // A crash came between the checkpoint and the clean-up: the index already has these.
        await unlink(file);
        continue;
      }
      const last = seq >= lastWritten;
      const read = legacy ? readLegacySegment<T> : readSegment<T>;
      entries.push(...(await read(file, seq, last, log)));
    }
    // Appends go on in the last segment after the checkpoint, or in a new one (after a segment
    // of the earlier format too).
    const newest = segments.filter((s) => s.seq > checkpoint).at(-1);
    const seq = !newest ? checkpoint + 1 : newest.legacy ? newest.seq + 1 : newest.seq;
    const { handle, size } = await openSegment(directory, seq);
    const earlier = segments.filter((s) => s.seq > checkpoint && s.name !== segmentName(seq));
    return { wal: new WriteAheadLog(directory, seq, handle, size, earlier), entries };
  }

  /**
   * A buffer for the frames of one append, kept for the next ones until the next rotation.
   * Each append's own buffer, a vector's 6 KB an add, made V8 count external memory fast
   * enough to run a full collection every few thousand adds, and at 250,000 records in RAM
   * those windows took twice as long. Appends are serialized, and each is written before the
   * next starts.
   */
  #room(size: number): Buffer {
    if (size > this.#buffer.length)
      this.#buffer = Buffer.allocUnsafeSlow(Math.max(size, 64 * 1024));
    return this.#buffer.subarray(0, size);
  }

  /** The segment appends go to now. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Appends frames as one write and makes them durable. Callers serialize appends.
   * `whileSyncing` runs once the frames are written, while the fdatasync is under way on a
   * libuv thread: the caller's CPU work then overlaps the disk's wait instead of following it.
   * When the fdatasync fails, what it did has already happened.
   */
  async append(frames: readonly LogFrame[], whileSyncing?: () => void): Promise<void> {
    const jsons = frames.map((frame) => JSON.stringify(frame.value));
    let size = 0;
    for (const [i, json] of jsons.entries())
      size += HEADER + Buffer.byteLength(json) + (frames[i]!.bytes?.byteLength ?? 0);
    const buffer = this.#room(size);
    let at = 0;
    for (const [i, json] of jsons.entries()) {
      const bytes = frames[i]!.bytes ?? new Uint8Array(0);
      const jsonLength = buffer.write(json, at + HEADER);
      buffer.writeUInt32LE(jsonLength, at);
      buffer.writeUInt32LE(bytes.byteLength, at + 4);
      buffer.set(bytes, at + HEADER + jsonLength);
      const end = at + HEADER + jsonLength + bytes.byteLength;
      buffer.writeUInt32LE(frameCrc(buffer, at, end), at + 8);
      at = end;
    }
    // Part of a failed append left in the segment would be garbage before the next frames:
    // a replay stops at it and cuts off every acknowledged frame after it as a torn tail.
    // None goes after it until it is cut off.
    if (this.#dirty) await this.#cutBack();
    // appendFile writes until all is written: a short write must not pass as durable.
    try {
      await this.#handle.appendFile(buffer);
    } catch (error) {
      // A short write, then ENOSPC, say: cut off what it wrote. If that fails too, the next
      // append tries again first, and fails while it cannot.
      this.#dirty = true;
      await this.#cutBack().catch(() => undefined);
      throw error;
    }
    this.#size += size;
    const naming = this.#nameUnsynced;
    // Both settled before either's failure is thrown: a rotation must not close the handle
    // under a datasync still running.
    const syncing = Promise.allSettled([
      this.#handle.datasync(),
      naming ? syncDirectory(this.#directory) : undefined,
    ]);
    let results: Array<PromiseSettledResult<unknown>>;
    try {
      whileSyncing?.();
    } finally {
      results = await syncing;
    }
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
    this.#nameUnsynced = false;
  }

  async #cutBack(): Promise<void> {
    await this.#handle.truncate(this.#size);
    this.#dirty = false;
  }

  /**
   * Starts the next segment and returns the closed one's number. The next segment was opened
   * ahead, so this takes no trip to the disk unless the current one holds a failed append's
   * bytes; the closed segment's handle closes in the background (`deleteUpTo` waits for it).
   */
  async rotate(): Promise<number> {
    // Garbage left in a segment that is not the last is read as damage, not a torn tail.
    if (this.#dirty) await this.#cutBack();
    // Opened again when opening it ahead failed (a full file table, a read-only directory since
    // fixed): the failure is this rotation's only if it fails now.
    const { handle, size } = await this.#next.catch(() =>
      openSegment(this.#directory, this.#seq + 1),
    );
    const closed = this.#seq;
    this.#sealed.set(closed, {
      name: segmentName(closed),
      closing: this.#handle.close().catch(() => undefined),
    });
    this.#seq = closed + 1;
    this.#handle = handle;
    this.#size = size;
    this.#nameUnsynced = size === 0;
    this.#next = this.#openAhead();
    // A store idle from now on keeps no buffer, and a backfill's large one goes.
    this.#buffer = Buffer.alloc(0);
    return closed;
  }

  /**
   * Deletes the segments up to and including `seq`, once a checkpoint holds their entries: those
   * this log read at its open or rotated away since (the open deletes the ones before).
   */
  async deleteUpTo(seq: number): Promise<void> {
    const deleting = [...this.#sealed].filter(([sealed]) => sealed <= seq);
    await Promise.all(
      deleting.map(async ([sealed, { name, closing }]) => {
        await closing;
        await unlink(join(this.#directory, name)).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        });
        this.#sealed.delete(sealed);
      }),
    );
  }

  /** Closes the log; the segment opened ahead goes while it is empty. */
  async close(): Promise<void> {
    await this.#handle.close();
    await Promise.all([...this.#sealed.values()].map((sealed) => sealed.closing));
    const next = await this.#next.catch(() => undefined);
    if (!next) return;
    try {
      if ((await next.handle.stat()).size > 0) return;
    } finally {
      await next.handle.close();
    }
    await unlink(join(this.#directory, segmentName(this.#seq + 1)));
  }
}

const fileSize = async (file: string) => (await stat(file)).size;

/** A log segment file: its number, its name, and whether it is of the earlier format. */
export interface LogSegmentFile {
  seq: number;
  name: string;
  legacy: boolean;
}

/** The log segment files among a directory's entries, by number. */
export function logSegmentsIn(names: readonly string[]): LogSegmentFile[] {
  return names
    .map((name) => SEGMENT.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ seq: Number(m[1]), name: m[0], legacy: m[2] === "jsonl" }))
    .sort((a, b) => a.seq - b.seq);
}

/**
 * Throws unless the segments after `checkpoint` run from checkpoint + 1 without a gap. Segments
 * are numbered in turn (a binary one after a segment of the earlier format too) and deleted only
 * up to a checkpoint the manifest holds, so a missing one is no state a crash leaves: it is a
 * file lost or moved aside, with acknowledged entries in it. Replayed around, the memory opened
 * without them, and the open's checkpoint then made that for good.
 */
export function checkLogSequence(
  directory: string,
  segments: readonly LogSegmentFile[],
  checkpoint: number,
): void {
  let expected = checkpoint + 1;
  for (const { seq, name } of segments) {
    if (seq <= checkpoint) continue;
    if (seq > expected)
      throw new MemoryCorruptError(
        `${join(directory, segmentName(expected))} is missing: the log after checkpoint ${checkpoint} goes on at ${name}, so the entries it held are lost. Restore it, or move the log files after it aside to start without their entries (a backfill can restore issues and pull requests).`,
      );
    expected = seq + 1;
  }
}

interface OpenSegment {
  handle: FileHandle;
  size: number;
}

async function openSegment(directory: string, seq: number): Promise<OpenSegment> {
  const handle = await open(join(directory, segmentName(seq)), "a");
  try {
    return { handle, size: (await handle.stat()).size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

const frameCrc = (buffer: Buffer, start: number, end: number) =>
  crc32(buffer.subarray(start + HEADER, end), crc32(buffer.subarray(start, start + 8)));

/** The frame at `at`: its end and content, or undefined when it is cut short or damaged. */
function frameAt<T>(
  buffer: Buffer,
  at: number,
): { end: number; value: T; bytes: Buffer } | undefined {
  if (at + HEADER > buffer.length) return undefined;
  const jsonLength = buffer.readUInt32LE(at);
  const end = at + HEADER + jsonLength + buffer.readUInt32LE(at + 4);
  if (end > buffer.length || frameCrc(buffer, at, end) !== buffer.readUInt32LE(at + 8))
    return undefined;
  try {
    const value = JSON.parse(buffer.toString("utf8", at + HEADER, at + HEADER + jsonLength)) as T;
    return { end, value, bytes: buffer.subarray(at + HEADER + jsonLength, end) };
  } catch {
    return undefined;
  }
}

async function readSegment<T>(
  file: string,
  seq: number,
  last: boolean,
  log: Logger,
): Promise<LogEntry<T>[]> {
  const buffer = await readFile(file);
  const entries: LogEntry<T>[] = [];
  let at = 0;
  while (at < buffer.length) {
    const frame = frameAt<T>(buffer, at);
    if (!frame) break;
    entries.push({ seq, entry: entries.length + 1, value: frame.value, bytes: frame.bytes });
    at = frame.end;
  }
  if (at === buffer.length) return entries;
  // Frames are acknowledged only once durable, so damage at the end of the newest segment is a
  // write a crash cut short: it was never acknowledged, and is cut off. Damage that a whole frame
  // follows is not that.
  await cutOrReject(file, last && !wholeFrameAfter(buffer, at), entries.length + 1, at, log);
  return entries;
}

/**
 * Whether a whole frame starts anywhere after the damaged one at `at`. Not only where its lengths
 * say it ends: the damage may be in a length (a flipped bit), and a frame cut off for it took the
 * acknowledged frames after it along. A place whose two lengths reach past the end is passed over
 * at once (JSON text and vector bytes read as lengths are huge), so the scan is linear in
 * practice; past a budget of checked bytes it answers yes: the segment is refused rather than
 * cut where acknowledged frames might follow.
 */
function wholeFrameAfter(buffer: Buffer, at: number): boolean {
  let budget = 64 * buffer.length;
  for (let p = at + 1; p + HEADER <= buffer.length; p++) {
    const end = p + HEADER + buffer.readUInt32LE(p) + buffer.readUInt32LE(p + 4);
    if (end > buffer.length) continue;
    budget -= end - p;
    if (budget < 0 || frameAt(buffer, p)) return true;
  }
  return false;
}

/** The earlier format: a `<crc32 in hex> <json>` line an entry, the vector in base64. */
async function readLegacySegment<T>(
  file: string,
  seq: number,
  last: boolean,
  log: Logger,
): Promise<LogEntry<T>[]> {
  const text = await readFile(file, "utf8");
  // Every complete line ends in a newline; what follows the last one is a partly written line.
  const lines = text.split("\n");
  const decoded = lines.map((line, i) => (i < lines.length - 1 ? decodeLine<T>(line) : undefined));
  const firstBad = lines.findIndex(
    (line, i) => decoded[i] === undefined && (line !== "" || i < lines.length - 1),
  );
  const good = firstBad === -1 ? decoded.slice(0, -1) : decoded.slice(0, firstBad);
  const entries = good.map((value, i) => ({
    seq,
    entry: i + 1,
    value: value as T,
    bytes: Buffer.alloc(0),
  }));
  if (firstBad === -1) return entries;
  const tornTail = last && decoded.slice(firstBad).every((value) => value === undefined);
  const offset = Buffer.byteLength(
    lines
      .slice(0, firstBad)
      .map((l) => `${l}\n`)
      .join(""),
  );
  await cutOrReject(file, tornTail, firstBad + 1, offset, log);
  return entries;
}

async function cutOrReject(
  file: string,
  tornTail: boolean,
  entry: number,
  offset: number,
  log: Logger,
): Promise<void> {
  if (!tornTail) {
    throw new MemoryCorruptError(
      `${file} entry ${entry} (byte ${offset}) is damaged (bad checksum or JSON) and good entries follow it. Move the file aside to start without its entries (a backfill can restore issues and pull requests).`,
    );
  }
  log.warn({ file, entry }, "memory log ends in a partly written append (a crash); cutting it off");
  await truncate(file, offset);
}

function decodeLine<T>(line: string): T | undefined {
  const space = line.indexOf(" ");
  if (space !== 8) return undefined;
  const json = line.slice(9);
  if (Number.parseInt(line.slice(0, 8), 16) !== crc32(json)) return undefined;
  try {
    return JSON.parse(json) as T;
  } catch {
    return undefined;
  }
}

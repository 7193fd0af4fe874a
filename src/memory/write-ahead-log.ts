import { open, readdir, readFile, truncate, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Logger } from "pino";

/** A memory file that cannot be read as it should: names the file (and line) and says why. */
export class MemoryCorruptError extends Error {
  override name = "MemoryCorruptError";
}

export interface LogEntry<T = unknown> {
  seq: number;
  line: number;
  value: T;
}

const SEGMENT = /^log-(\d{10})\.jsonl$/;
const segmentName = (seq: number) => `log-${String(seq).padStart(10, "0")}.jsonl`;

/**
 * An append-only log in numbered segment files. Each line is `<crc32> <json>`, so a line cut
 * short by a crash, or damaged later, is recognised. Appends are durable (fdatasync) when they
 * resolve. The owner rotates to a new segment before writing a checkpoint, and deletes the
 * segments the checkpoint covers afterwards.
 */
export class WriteAheadLog {
  readonly #directory: string;
  #seq: number;
  #handle: FileHandle;

  private constructor(directory: string, seq: number, handle: FileHandle) {
    this.#directory = directory;
    this.#seq = seq;
    this.#handle = handle;
  }

  /**
   * Opens the log and returns the entries of the segments after `checkpoint`, in order.
   * A torn last line (a crash during an append) is cut off with a warning: it was never
   * acknowledged. Damage anywhere else is an error naming the file and line.
   */
  static async open<T>(
    directory: string,
    checkpoint: number,
    log: Logger,
  ): Promise<{ wal: WriteAheadLog; entries: LogEntry<T>[] }> {
    const segments = (await readdir(directory))
      .map((name) => SEGMENT.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const entries: LogEntry<T>[] = [];
    for (const seq of segments) {
      const file = join(directory, segmentName(seq));
      if (seq <= checkpoint) {
        // A crash came between the checkpoint and the clean-up: the index already has these.
        await unlink(file);
        continue;
      }
      entries.push(...(await readSegment<T>(file, seq, seq === segments.at(-1), log)));
    }
    // Appends go on in the last segment after the checkpoint, or in a new one.
    const seq = segments.filter((s) => s > checkpoint).at(-1) ?? checkpoint + 1;
    const handle = await open(join(directory, segmentName(seq)), "a");
    return { wal: new WriteAheadLog(directory, seq, handle), entries };
  }

  /** The segment appends go to now. */
  get seq(): number {
    return this.#seq;
  }

  /** Appends values as one write and makes them durable. Callers serialize appends. */
  async append(values: unknown[]): Promise<void> {
    const text = values
      .map((value) => {
        const json = JSON.stringify(value);
        return `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`;
      })
      .join("");
    await this.#handle.appendFile(text);
    await this.#handle.datasync();
  }

  /** Closes the current segment and starts the next; returns the closed segment's number. */
  async rotate(): Promise<number> {
    const closed = this.#seq;
    await this.#handle.close();
    this.#seq = closed + 1;
    this.#handle = await open(join(this.#directory, segmentName(this.#seq)), "a");
    return closed;
  }

  /** Deletes the segments up to and including `seq`, once a checkpoint holds their entries. */
  async deleteUpTo(seq: number): Promise<void> {
    for (const name of await readdir(this.#directory)) {
      const match = SEGMENT.exec(name);
      if (match && Number(match[1]) <= seq) await unlink(join(this.#directory, name));
    }
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

async function readSegment<T>(
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
  if (firstBad === -1)
    return decoded.slice(0, -1).map((value, i) => ({ seq, line: i + 1, value: value as T }));
  // Lines are acknowledged only once durable, so damage that runs to the end of the newest
  // segment is a write a crash cut short: it was never acknowledged, and is cut off. Damage
  // followed by good lines is not that.
  const tornTail = last && decoded.slice(firstBad).every((value) => value === undefined);
  if (!tornTail) {
    throw new MemoryCorruptError(
      `${file} line ${firstBad + 1} is damaged (bad checksum or JSON) and good lines follow it. Move the file aside to start without its entries (a backfill can restore issues and pull requests).`,
    );
  }
  log.warn(
    { file, line: firstBad + 1 },
    "memory log ends in a partly written append (a crash); cutting it off",
  );
  await truncate(
    file,
    Buffer.byteLength(
      lines
        .slice(0, firstBad)
        .map((l) => `${l}\n`)
        .join(""),
    ),
  );
  return decoded.slice(0, firstBad).map((value, i) => ({ seq, line: i + 1, value: value as T }));
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

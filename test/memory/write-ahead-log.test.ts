import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type * as FsPromises from "node:fs/promises";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// The directory fsyncs the log asks for, each held until the test lets it go.
// With `released`, they are let go at once.
const directorySyncs = vi.hoisted(() => ({
  calls: [] as Array<{ directory: string; release: () => void }>,
  released: false,
}));
vi.mock("../../src/sync-directory.js", () => ({
  syncDirectory: (directory: string) =>
    new Promise<void>((resolve) => {
      directorySyncs.calls.push({ directory, release: resolve });
      if (directorySyncs.released) resolve();
    }),
}));

// Opens, through to the real ones, until a test makes one fail.
const opens = vi.hoisted(() => ({ failing: undefined as RegExp | undefined }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  return {
    ...actual,
    open: (path: string, ...rest: unknown[]) =>
      opens.failing?.test(String(path))
        ? Promise.reject(
            Object.assign(new Error(`EMFILE: too many open files, open '${path}'`), {
              code: "EMFILE",
            }),
          )
        : (actual.open as (...args: unknown[]) => unknown)(path, ...rest),
  };
});

const { MemoryCorruptError, WriteAheadLog } = await import("../../src/memory/write-ahead-log.js");

const log = pino({ level: "silent" });
const frame = (n: number) => ({ value: { n }, bytes: new Uint8Array([n]) });

/** Whether `promise` has settled once pending I/O callbacks have run. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  return settled;
}

describe("WriteAheadLog", () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), "talos-wal-"));
    directorySyncs.calls.length = 0;
    directorySyncs.released = false;
    opens.failing = undefined;
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it("acknowledges the first append to a new segment only once the directory holding its name is fsynced", async () => {
    const { wal } = await WriteAheadLog.open(directory, 0, log);
    const first = wal.append([frame(1)]);
    expect(await settledSoon(first)).toBe(false);
    expect(directorySyncs.calls.map((call) => call.directory)).toEqual([directory]);
    directorySyncs.calls[0]!.release();
    await first;

    // The segment's name is durable now: later appends to it wait on their fdatasync alone.
    await wal.append([frame(2)]);
    expect(directorySyncs.calls).toHaveLength(1);

    // A rotation creates the next segment, whose name is new again.
    expect(await wal.rotate()).toBe(1);
    const afterRotation = wal.append([frame(3)]);
    expect(await settledSoon(afterRotation)).toBe(false);
    expect(directorySyncs.calls).toHaveLength(2);
    directorySyncs.calls[1]!.release();
    await afterRotation;
    await wal.close();

    expect(readdirSync(directory).sort()).toEqual(["log-0000000001.bin", "log-0000000002.bin"]);
    const { wal: reopened, entries } = await WriteAheadLog.open<{ n: number }>(directory, 0, log);
    expect(entries.map((entry) => entry.value.n)).toEqual([1, 2, 3]);
    // Reopened with frames in it, the last segment's name was synced before they were acknowledged.
    await reopened.append([frame(4)]);
    expect(directorySyncs.calls).toHaveLength(2);
    await reopened.close();
  });

  it("rotates to the segment it opened ahead, deletes the ones it sealed, and leaves no empty one at its close", async () => {
    directorySyncs.released = true;
    const { wal } = await WriteAheadLog.open(directory, 0, log);
    await wal.append([frame(1)]);
    expect(await wal.rotate()).toBe(1);
    await wal.append([frame(2)]);
    expect(await wal.rotate()).toBe(2);
    await wal.append([frame(3)]);
    // The next segment is there before any rotation asks for it.
    expect(readdirSync(directory).sort()).toEqual([
      "log-0000000001.bin",
      "log-0000000002.bin",
      "log-0000000003.bin",
      "log-0000000004.bin",
    ]);
    await wal.deleteUpTo(1);
    await wal.close();
    expect(readdirSync(directory).sort()).toEqual(["log-0000000002.bin", "log-0000000003.bin"]);

    // The segments read at an open are deleted as the ones rotated away are. Opened at the
    // checkpoint that deleted segment 1, as its owner's manifest records it.
    const { wal: reopened, entries } = await WriteAheadLog.open<{ n: number }>(directory, 1, log);
    expect(entries.map((entry) => entry.value.n)).toEqual([2, 3]);
    expect(await reopened.rotate()).toBe(3);
    await reopened.deleteUpTo(3);
    await reopened.close();
    expect(readdirSync(directory)).toEqual(["log-0000000004.bin"]);
  });

  it("cuts off a torn last append when the segment opened ahead of the next rotation follows it", async () => {
    directorySyncs.released = true;
    const { wal } = await WriteAheadLog.open(directory, 0, log);
    await wal.append([frame(1), frame(2)]);
    // A crash in the middle of the next append, as the disk holds it: a copy, taken while the
    // segment opened ahead is there, with part of a frame at the end of the current one.
    const crashed = mkdtempSync(join(tmpdir(), "talos-wal-crashed-"));
    cpSync(directory, crashed, { recursive: true });
    await wal.close();
    const current = join(crashed, "log-0000000001.bin");
    const good = readFileSync(current).length;
    appendFileSync(current, Buffer.from([40, 0, 0, 0, 1, 0]));
    expect(readdirSync(crashed).sort()).toEqual(["log-0000000001.bin", "log-0000000002.bin"]);

    try {
      const warnings: unknown[] = [];
      const { wal: reopened, entries } = await WriteAheadLog.open<{ n: number }>(
        crashed,
        0,
        pino({ level: "warn" }, { write: (line: string) => warnings.push(JSON.parse(line)) }),
      );
      expect(entries.map((entry) => entry.value.n)).toEqual([1, 2]);
      expect(readFileSync(current).length).toBe(good);
      expect(warnings).toEqual([
        expect.objectContaining({ file: current, msg: expect.stringContaining("partly written") }),
      ]);
      await reopened.append([frame(3)]);
      await reopened.close();
      const { wal: again, entries: all } = await WriteAheadLog.open<{ n: number }>(crashed, 0, log);
      expect(all.map((entry) => entry.value.n)).toEqual([1, 2, 3]);
      await again.close();
    } finally {
      rmSync(crashed, { recursive: true, force: true });
    }
  });

  /** Segments 1 to 4, a frame each, as a process whose flushes failed leaves them. */
  async function fourSegments() {
    directorySyncs.released = true;
    const { wal } = await WriteAheadLog.open(directory, 0, log);
    for (let n = 1; n <= 4; n++) {
      await wal.append([frame(n)]);
      if (n < 4) await wal.rotate();
    }
    await wal.close();
    expect(readdirSync(directory).sort()).toEqual([1, 2, 3, 4].map((n) => `log-000000000${n}.bin`));
  }

  it.each([
    ["before the last", 0, 3],
    ["first after the checkpoint", 1, 2],
  ])(
    "refuses a log whose segment %s is missing, naming it, and deletes nothing",
    async (_, checkpoint, missing) => {
      await fourSegments();
      const file = join(directory, `log-000000000${missing}.bin`);
      unlinkSync(file);
      const before = readdirSync(directory).sort();
      const error = await WriteAheadLog.open(directory, checkpoint, log).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MemoryCorruptError);
      expect((error as Error).message).toContain(`${file} is missing`);
      // Not even the segments the checkpoint covers: the open stops before it changes anything.
      expect(readdirSync(directory).sort()).toEqual(before);
    },
  );

  it("reads on from a segment of the earlier format into the binary one after it", async () => {
    directorySyncs.released = true;
    const json = JSON.stringify({ n: 1 });
    writeFileSync(
      join(directory, "log-0000000001.jsonl"),
      `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`,
    );
    const { wal } = await WriteAheadLog.open(directory, 0, log);
    await wal.append([frame(2)]);
    await wal.close();
    expect(readdirSync(directory).sort()).toEqual(["log-0000000001.jsonl", "log-0000000002.bin"]);
    const { wal: reopened, entries } = await WriteAheadLog.open<{ n: number }>(directory, 0, log);
    expect(entries.map((entry) => entry.value.n)).toEqual([1, 2]);
    await reopened.close();
  });

  it("opens the next segment again at a rotation when opening it ahead failed", async () => {
    directorySyncs.released = true;
    opens.failing = /log-0000000002\.bin$/;
    const { wal } = await WriteAheadLog.open(directory, 0, log);
    await wal.append([frame(1)]);
    // Still failing when the rotation needs it: that rotation fails, and nothing is lost.
    await expect(wal.rotate()).rejects.toThrow("EMFILE");
    await wal.append([frame(2)]);
    opens.failing = undefined;
    expect(await wal.rotate()).toBe(1);
    await wal.append([frame(3)]);
    await wal.close();
    const { wal: reopened, entries } = await WriteAheadLog.open<{ n: number }>(directory, 0, log);
    expect(entries.map((entry) => [entry.seq, entry.value.n])).toEqual([
      [1, 1],
      [1, 2],
      [2, 3],
    ]);
    await reopened.close();
  });
});

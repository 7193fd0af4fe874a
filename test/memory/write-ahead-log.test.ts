import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// The directory fsyncs the log asks for, each held until the test lets it go.
const directorySyncs = vi.hoisted(() => ({
  calls: [] as Array<{ directory: string; release: () => void }>,
}));
vi.mock("../../src/sync-directory.js", () => ({
  syncDirectory: (directory: string) =>
    new Promise<void>((resolve) => directorySyncs.calls.push({ directory, release: resolve })),
}));

const { WriteAheadLog } = await import("../../src/memory/write-ahead-log.js");

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
});

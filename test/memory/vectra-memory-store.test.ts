import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { pino } from "pino";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { MemorySnapshot } from "../../src/memory/memory-snapshot.js";
import { InvalidMemoryError } from "../../src/memory/memory-store.js";
import { openSegmentIndex, readSegment, AtomicFileStorage } from "../../src/memory/vectra-files.js";
import { MemoryMismatchError } from "../../src/memory/vectra-memory-store.js";
import { MemoryCorruptError, WriteAheadLog } from "../../src/memory/write-ahead-log.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { makeDataDir } from "../helpers/test-app.js";
import {
  countingEmbedder,
  issueMemory,
  LATE,
  openTestStore,
  overflowingEmbedder,
  said,
  seedThreadToForget,
  writeLateToThread7,
} from "../helpers/test-memory.js";

const ISSUES: Array<[number, string]> = [
  [1, "App crashes when saving a widget on Windows"],
  [2, "Dark mode colours are wrong in the settings page"],
  [3, "Saving a widget fails with permission denied"],
  [4, "Add support for exporting widgets to CSV"],
  [5, "Crash on startup after updating to 2.0"],
];

/**
 * A test store, closed when the test ends if the test left it open (as a crash leaves one):
 * its file handles, else closed by the garbage collector (a deprecation warning, later an error).
 */
async function openStore(directory: string, options: Parameters<typeof openTestStore>[1] = {}) {
  const store = await openTestStore(directory, options);
  onTestFinished(() => store.close().catch(() => undefined));
  return store;
}

/** A lock that locks nothing: the store it opens can be left open, as a crash leaves one. */
const crashable = { lockDirectory: async () => async () => undefined };

async function seeded(directory = makeDataDir(), options = {}) {
  const store = await openStore(directory, options);
  await store.addMany(ISSUES.map(([n, text]) => issueMemory(n, text)));
  return { store, directory };
}

const ids = (hits: Array<{ record: { id: string } }>) => hits.map((h) => h.record.id);

/** Holds the next flush's snapshot header write until `release`; `spy` sees it called. */
function holdHeaderWrite() {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const writeHeader = MemorySnapshot.prototype.writeHeader;
  const spy = vi
    .spyOn(MemorySnapshot.prototype, "writeHeader")
    .mockImplementationOnce(async function (this: MemorySnapshot, header) {
      await held;
      return writeHeader.call(this, header);
    });
  return { spy, release };
}

/** Every text the directory's memory holds once opened again, sorted. */
async function textsOnReopen(directory: string): Promise<string[]> {
  const reopened = await openStore(directory);
  try {
    return (await reopened.list()).map((r) => r.text).sort();
  } finally {
    await reopened.close();
  }
}

/** Vectors that say nothing about the words: only the keyword index can find by them. */
const blind = {
  model: "blind",
  relatedScore: 0.5,
  dimension: 8,
  embed: async (texts: string[]) =>
    texts.map((text) =>
      Float32Array.from({ length: 8 }, (_, i) => Math.sin(text.length * (i + 1))),
    ),
};

describe("the vectra memory store", () => {
  it("makes an added memory searchable at once and durable before it resolves", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, crashable);
    await store.add(issueMemory(1, "App crashes when saving a widget on Windows"));

    expect((await store.search("saving a widget crashes on windows", { k: 1 }))[0]?.record.id).toBe(
      "issue-1",
    );
    // No flush, no close: a crash now must not lose it.
    const reopened = await openStore(directory);
    expect((await reopened.get("issue-1"))?.text).toBe(
      "App crashes when saving a widget on Windows",
    );
    await reopened.close();
  });

  it("updates a re-added source instead of duplicating it, and never embeds the same text twice", async () => {
    const { embedder, texts } = countingEmbedder();
    const store = await openStore(makeDataDir(), { embedder });
    await store.add(issueMemory(1, "Crash on save"));
    await store.add(issueMemory(1, "Crash on save", { state: "closed" }));
    await store.add(issueMemory(1, "Crash on save (edited)"));

    expect(await store.list()).toHaveLength(1);
    expect(await store.get("issue-1")).toMatchObject({
      text: "Crash on save (edited)",
      state: "open",
    });
    expect(texts).toEqual(["Crash on save", "Crash on save (edited)"]);
    await store.close();
  });

  it("lists its records a segment a page, each once, flushed or not; one removed and added again meanwhile comes again", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { segmentSize: 3, batchSize: 1_000 });
    await store.addMany(
      Array.from({ length: 8 }, (_, i) => issueMemory(i + 1, `Issue text ${i + 1}`)),
    );
    await store.remove("issue-2");
    await store.flush();
    // Two more, in the log only.
    await store.addMany([issueMemory(9, "Issue text 9"), issueMemory(10, "Issue text 10")]);

    const pages: Array<{ ids: string[]; next: string | undefined }> = [];
    let cursor: string | undefined;
    do {
      const page = await store.listPage(cursor);
      pages.push({ ids: page.records.map((r) => r.id), next: page.next });
      cursor = page.next;
      if (pages.length === 1) {
        // Changed once its page was read: in its place, so not again.
        await store.add(issueMemory(3, "Issue text 3, edited"));
        // Removed and added again (a thread forgotten, then written anew): in a later place.
        await store.remove("issue-1");
        await store.add(issueMemory(1, "Issue text 1, again"));
      }
    } while (cursor !== undefined);

    expect(pages).toEqual([
      { ids: ["issue-1", "issue-3"], next: "1" },
      { ids: ["issue-4", "issue-5", "issue-6"], next: "2" },
      { ids: ["issue-7", "issue-8", "issue-9"], next: "3" },
      { ids: ["issue-10", "issue-1"], next: undefined },
    ]);
    expect((await store.listPage("3")).records.at(-1)).toMatchObject({
      id: "issue-1",
      text: "Issue text 1, again",
    });
    // The pages together are the list.
    const listed = (await store.list()).map((r) => r.id).sort();
    const paged = new Set(pages.flatMap((p) => p.ids));
    expect([...paged].sort()).toEqual(listed);
  });

  it("keeps the newer version of a source when an older one is written after it, after a replay too", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, crashable);
    const version = (text: string, updatedAt: string) =>
      issueMemory(1, text, { metadata: { updatedAt } });
    await store.add(version("Newer", "2026-11-02T10:00:00Z"));
    await store.add(version("Older", "2026-11-01T10:00:00.000+00:00"));
    expect((await store.get("issue-1"))?.text).toBe("Newer");
    // In one batch too, whichever comes last.
    await store.addMany([
      version("Latest", "2026-11-03T10:00:00Z"),
      version("Old", "2026-11-01T00:00:00Z"),
    ]);
    await expect(store.add(version("Bad", "yesterday"))).rejects.toThrow(InvalidMemoryError);
    // Never flushed: the second open replays the log, stale writes and all, and decides the same.
    const reopened = await openStore(directory);
    expect(await reopened.get("issue-1")).toMatchObject({
      text: "Latest",
      metadata: { updatedAt: "2026-11-03T10:00:00.000Z" },
    });
    // A write without a version (a summary, a backfill) still replaces it.
    await reopened.add(issueMemory(1, "Unversioned"));
    expect((await reopened.get("issue-1"))?.text).toBe("Unversioned");
    await reopened.close();
  });

  it("keeps every one of many concurrent adds", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 7, ...crashable });
    await Promise.all(
      Array.from({ length: 120 }, (_, i) => store.add(issueMemory(i + 1, `issue number ${i + 1}`))),
    );
    expect(await store.list()).toHaveLength(120);
    // The last add may have queued a flush; a second store (the lock is bypassed here) would
    // clear that flush's temporary files as leftovers of a crash, so let it finish first.
    await store.flush();
    const reopened = await openStore(directory);
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual(
      Array.from({ length: 120 }, (_, i) => `issue-${i + 1}`).sort(),
    );
    await store.close();
    await reopened.close();
  });

  it("writes a batch once: one flush per batch, rewriting only the index files it touched", async () => {
    const metrics = createMetrics();
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 10, segmentSize: 25, metrics });
    const flushes = async () => (await metrics.memoryFlushes.get()).values[0]?.value ?? 0;
    const afterOpen = await flushes();

    for (let i = 1; i <= 9; i++) await store.add(issueMemory(i, `issue ${i}`));
    expect(await flushes()).toBe(afterOpen);
    await store.add(issueMemory(10, "issue 10"));
    await store.flush(); // waits for the flush the tenth add queued; nothing is left for a second
    expect(await flushes()).toBe(afterOpen + 1);

    for (let i = 11; i <= 40; i++) await store.add(issueMemory(i, `issue ${i}`));
    await store.flush();
    const segmentOne = readFileSync(join(directory, "segment-000001.pb"));
    await store.add(issueMemory(41, "issue 41"));
    await store.flush();
    // Records 26 and on live in the second file; the first is not rewritten.
    expect(readFileSync(join(directory, "segment-000001.pb")).equals(segmentOne)).toBe(true);
    await store.close();
  });

  it("goes on adding while a flush writes, and the flush covers what came before it", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000, ...crashable });
    for (let i = 1; i <= 3; i++) await store.add(issueMemory(i, `issue ${i}`));
    // The flush's header write is held until the test lets it go.
    const { spy, release } = holdHeaderWrite();
    let flushed = false;
    const flush = store.flush().then(() => (flushed = true));
    await vi.waitFor(() => expect(spy).toHaveBeenCalled(), { timeout: 10_000 });
    // Durable and found while the flush waits; a second flush waits for the first.
    await store.add(issueMemory(4, "added while the flush writes"));
    expect((await store.get("issue-4"))?.text).toBe("added while the flush writes");
    const second = store.flush();
    expect(flushed).toBe(false);
    release();
    await flush;
    await second;
    const manifest = JSON.parse(readFileSync(join(directory, "manifest.json"), "utf8")) as {
      checkpoint: number;
    };
    expect(spy).toHaveBeenCalledTimes(2);
    // A crash now (the store is left open) loses nothing: the index files hold all four.
    const reopened = await openStore(directory);
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual([
      "issue-1",
      "issue-2",
      "issue-3",
      "issue-4",
    ]);
    expect(manifest.checkpoint).toBeGreaterThan(1);
    await reopened.close();
    vi.restoreAllMocks();
  });

  it("keeps a record removed and added again with the same text while a flush writes", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000, segmentSize: 3 });
    for (let i = 1; i <= 3; i++) await store.add(issueMemory(i, `issue ${i}`));
    await store.flush();
    // Segment 2, full: issue 4 at its first place.
    for (let i = 4; i <= 6; i++) await store.add(issueMemory(i, `issue ${i}`));
    // While the flush writes segment 2, issue 4 leaves it and comes back, to segment 3.
    const flushing = store.flush();
    const removed = store.remove("issue-4");
    const readded = store.add(issueMemory(4, "issue 4"));
    await Promise.all([flushing, removed, readded]);
    expect((await store.get("issue-4"))?.text).toBe("issue 4");
    await store.flush();
    await store.close();
    const reopened = await openStore(directory, { segmentSize: 3 });
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual(
      Array.from({ length: 6 }, (_, i) => `issue-${i + 1}`).sort(),
    );
    expect((await reopened.get("issue-4"))?.text).toBe("issue 4");
    await reopened.close();
  });

  it("keeps a record's new text when it is replaced while a flush writes its old one", async () => {
    const directory = makeDataDir();
    const { store } = await seeded(directory, { batchSize: 1_000, ...crashable });
    // The flush is held once its blocks are written and its records point into them, before
    // it lets go of the texts it wrote.
    const { spy, release } = holdHeaderWrite();
    const flush = store.flush();
    await vi.waitFor(() => expect(spy).toHaveBeenCalled(), { timeout: 10_000 });
    const replaced = "Dark mode colours are fixed, but the borders are not";
    await store.add(issueMemory(2, replaced));
    release();
    await flush;
    // The flush wrote the old text; the new one stays in RAM, and in the log, until the next.
    expect((await store.get("issue-2"))?.text).toBe(replaced);
    expect((await store.list()).find((r) => r.id === "issue-2")?.text).toBe(replaced);
    // A crash now (the store is left open): the log gives it back.
    expect(await textsOnReopen(directory)).toContain(replaced);
    vi.restoreAllMocks();
  });

  it("reads texts right while a flush rewrites their rows file, without calling the snapshot damaged", async () => {
    const directory = makeDataDir();
    const lines: string[] = [];
    const log = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
    const { store } = await seeded(directory, { batchSize: 1_000, log });
    await store.flush();
    // A longer first text moves every other text in the rewritten rows file.
    await store.add(issueMemory(1, `${ISSUES[0]![1]}, and again after a reinstall`));
    // The flush is held after the rows file is replaced, before the records point into it.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const writeSegment = MemorySnapshot.prototype.writeSegment;
    const spy = vi
      .spyOn(MemorySnapshot.prototype, "writeSegment")
      .mockImplementationOnce(async function (this: MemorySnapshot, ...args) {
        const result = await writeSegment.apply(this, args);
        await held;
        return result;
      });
    const flush = store.flush();
    await vi.waitFor(() => expect(spy).toHaveBeenCalled(), { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const one = store.get("issue-3");
    const all = store.list();
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    await flush;
    expect((await one)?.text).toBe(ISSUES[2]![1]);
    expect((await all).map((r) => r.text).sort()).toEqual(
      [
        `${ISSUES[0]![1]}, and again after a reinstall`,
        ...ISSUES.slice(1).map(([, t]) => t),
      ].sort(),
    );
    expect(lines).toEqual([]);
    await store.close();
    vi.restoreAllMocks();
  });

  it("applies a batch while the log's fdatasync runs, resolves its adds only after it, and rejects them when it fails", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, crashable);
    await store.add(issueMemory(1, "issue 1"));
    // FileHandle is not exported: its prototype, from a handle.
    const probe = await open(join(directory, "probe"), "w");
    const prototype = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const datasync = prototype.datasync;
    let release!: (error?: Error) => void;
    const spy = vi.spyOn(prototype, "datasync").mockImplementationOnce(async function (
      this: FileHandle,
    ) {
      await datasync.call(this);
      const error = await new Promise<Error | undefined>((resolve) => (release = resolve));
      if (error) throw error;
    });
    let resolved = false;
    const adding = store.add(issueMemory(2, "issue 2")).then(() => (resolved = true));
    await vi.waitFor(() => expect(spy).toHaveBeenCalled(), { timeout: 10_000 });
    // Applied while the disk syncs: found, and not yet acknowledged.
    expect((await store.get("issue-2"))?.text).toBe("issue 2");
    expect(resolved).toBe(false);
    release();
    await adding;

    spy.mockImplementationOnce(async function (this: FileHandle) {
      await datasync.call(this);
      throw new Error("EIO: i/o error, fdatasync");
    });
    await expect(store.add(issueMemory(3, "issue 3"))).rejects.toThrow("EIO");
    // In the log file all the same, so kept, as a replay after a crash would keep it.
    expect((await store.get("issue-3"))?.text).toBe("issue 3");
    spy.mockRestore();
    await store.add(issueMemory(4, "issue 4"));
    await store.close();
    expect(await textsOnReopen(directory)).toEqual(["issue 1", "issue 2", "issue 3", "issue 4"]);
  });

  it("refuses an add whose vector is not finite before logging it, so a crash after it loses nothing", async () => {
    const directory = makeDataDir();
    const embedder = overflowingEmbedder();
    const store = await openStore(directory, { embedder, batchSize: 1_000, ...crashable });
    await store.add(issueMemory(1, "App crashes when saving a widget on Windows"));
    await expect(store.add(issueMemory(2, "Numeric overflow in the exporter"))).rejects.toThrow(
      new InvalidMemoryError("the embedding of memory issue-2 holds a value that is not finite"),
    );
    await store.add(issueMemory(3, "Dark mode colours are wrong in the settings page"));
    expect(await store.get("issue-2")).toBeUndefined();

    // The process dies before the next flush (the store is left open): the log is replayed.
    // Logged, the refused put had made every later open fail on its frame.
    const reopened = await openStore(directory, { embedder });
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual(["issue-1", "issue-3"]);
  });

  it("rejects only the add whose vector is not finite, not the adds that shared its group commit", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, {
      embedder: overflowingEmbedder(),
      batchSize: 1_000,
      ...crashable,
    });
    // Started in one turn: they share one log append and one fdatasync.
    const results = await Promise.allSettled([
      store.add(issueMemory(1, "Numeric overflow in the exporter")),
      store.add(issueMemory(2, "App crashes when saving a widget on Windows")),
    ]);
    expect(results[0]).toMatchObject({
      status: "rejected",
      reason: expect.any(InvalidMemoryError),
    });
    expect(results[1]!.status).toBe("fulfilled");
    expect((await store.get("issue-2"))?.text).toBe("App crashes when saving a widget on Windows");
    expect(await store.get("issue-1")).toBeUndefined();
  });

  it("cuts off what a failed log append wrote, so that the adds acknowledged after it survive a crash", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000, ...crashable });
    await store.add(issueMemory(1, "issue 1"));
    const probe = await open(join(directory, "probe"), "w");
    const prototype = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    // A full disk: the append writes part of its frame, then fails.
    vi.spyOn(prototype, "appendFile").mockImplementationOnce(async function (
      this: FileHandle,
      data: unknown,
    ) {
      await this.write(data as Buffer, 0, 40);
      throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
    });
    await expect(store.add(issueMemory(2, "issue 2"))).rejects.toThrow("ENOSPC");
    vi.restoreAllMocks();
    // Room again: acknowledged, then the process dies (the store is left open).
    for (let i = 3; i <= 5; i++) await store.add(issueMemory(i, `issue ${i}`));
    const reopened = await openStore(directory);
    const ids = (await reopened.list()).map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining(["issue-1", "issue-3", "issue-4", "issue-5"]));
    await reopened.close();
  });

  it("when cutting off a failed append's bytes fails too, cuts them off before the next append", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000, ...crashable });
    await store.add(issueMemory(1, "issue 1"));
    const probe = await open(join(directory, "probe"), "w");
    const prototype = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    vi.spyOn(prototype, "appendFile").mockImplementationOnce(async function (
      this: FileHandle,
      data: unknown,
    ) {
      await this.write(data as Buffer, 0, 40);
      throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
    });
    vi.spyOn(prototype, "truncate").mockRejectedValueOnce(new Error("EIO: i/o error, ftruncate"));
    await expect(store.add(issueMemory(2, "issue 2"))).rejects.toThrow("ENOSPC");
    vi.restoreAllMocks();
    for (let i = 3; i <= 5; i++) await store.add(issueMemory(i, `issue ${i}`));
    const reopened = await openStore(directory);
    const ids = (await reopened.list()).map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining(["issue-1", "issue-3", "issue-4", "issue-5"]));
    await reopened.close();
  });

  it("leaves what a failed flush did not write to the next, losing nothing", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000 });
    for (let i = 1; i <= 3; i++) await store.add(issueMemory(i, `issue ${i}`));
    vi.spyOn(MemorySnapshot.prototype, "writeHeader").mockRejectedValueOnce(
      new Error("ENOSPC: no space left on device"),
    );
    await expect(store.flush()).rejects.toThrow("ENOSPC");
    expect((await store.stats()).pending).toBe(3);
    await store.add(issueMemory(4, "issue 4"));
    await store.flush();
    expect((await store.stats()).pending).toBe(0);
    await store.close();
    vi.restoreAllMocks();
    expect(await textsOnReopen(directory)).toEqual(["issue 1", "issue 2", "issue 3", "issue 4"]);
  });

  it("opens, to search and write, on a disk too full to write its snapshot or compact its log", async () => {
    // A flush a full disk failed leaves the snapshot behind the index files: the open rebuilt
    // it, failed for want of room, and the memory could not be opened at all (every event,
    // search and backfill of the repository failed) until someone freed space.
    const directory = makeDataDir();
    const first = await openStore(directory, { segmentSize: 8 });
    for (let i = 1; i <= 20; i++) await first.add(issueMemory(i, `issue ${i} crashes on save`));
    await first.close();
    rmSync(join(directory, "snapshot.json"));
    const second = await openStore(directory, { segmentSize: 8, batchSize: 1_000, ...crashable });
    await second.add(issueMemory(21, "issue 21 crashes on save"));
    // Left open, as a crash leaves it: the next open replays its log.

    const noRoom = () => Promise.reject(new Error("ENOSPC: no space left on device"));
    const blocks = vi.spyOn(MemorySnapshot.prototype, "writeSegment").mockImplementation(noRoom);
    vi.spyOn(MemorySnapshot.prototype, "writeHeader").mockImplementation(noRoom);
    const full = await openStore(directory, { segmentSize: 8 });
    expect(blocks).toHaveBeenCalled();
    expect((await full.list()).map((r) => r.text).sort()).toEqual(
      Array.from({ length: 21 }, (_, i) => `issue ${i + 1} crashes on save`).sort(),
    );
    expect(ids(await full.search("crashes on save", { k: 3 }))).toHaveLength(3);
    await full.add(issueMemory(22, "issue 22 crashes on save"));

    // Room again: the next flush writes the snapshot, and nothing was lost.
    vi.restoreAllMocks();
    await full.close();
    const texts = await textsOnReopen(directory);
    expect(texts).toHaveLength(22);
    expect(texts).toContain("issue 22 crashes on save");
  });

  it("fails a flush whose snapshot rows a full disk wrote only in part, and writes them whole at the next", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000 });
    for (let i = 1; i <= 3; i++) await store.add(issueMemory(i, `issue ${i}`));
    // The store's handle on its float32 rows, found by the file it has open.
    const fds = readdirSync("/proc/self/fd").map(Number);
    const vectorsFd = fds.find((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === join(directory, "vectors.f32");
      } catch {
        return false;
      }
    });
    expect(vectorsFd).toBeDefined();
    const probe = await open(join(directory, "probe"), "w");
    const prototype = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const writev = prototype.writev;
    // A full disk: the first piece is written, and the call says so, without an error.
    const spy = vi.spyOn(prototype, "writev").mockImplementation(async function (
      this: FileHandle,
      pieces: readonly NodeJS.ArrayBufferView[],
      position?: number,
    ) {
      if (this.fd !== vectorsFd) return writev.call(this, pieces, position);
      return writev.call(this, pieces.slice(0, 1), position);
    });
    await expect(store.flush()).rejects.toThrow(/wrote \d+ of \d+ bytes/);
    expect((await store.stats()).pending).toBe(3);
    spy.mockRestore();
    await store.add(issueMemory(4, "issue 4"));
    await store.flush();
    expect((await store.stats()).pending).toBe(0);
    await store.close();
    // Every row is whole: each is read back from the snapshot, not from vectra's files.
    const reopened = await openStore(directory);
    const readVector = vi.spyOn(MemorySnapshot.prototype, "readVector");
    const hits = await reopened.search("issue 2", { k: 4 });
    expect(hits).toHaveLength(4);
    const vectors = await Promise.all(readVector.mock.results.map((result) => result.value));
    expect(vectors.length).toBeGreaterThan(0);
    expect(vectors.every((vector) => vector instanceof Float32Array)).toBe(true);
    await reopened.close();
    vi.restoreAllMocks();
  });

  it("appends a batch of new records to their index file, and rewrites it when a record in it changes", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 100, segmentSize: 25 });
    const file = join(directory, "segment-000001.pb");
    for (let i = 1; i <= 10; i++) await store.add(issueMemory(i, `issue ${i}`));
    await store.flush();
    const first = readFileSync(file);
    for (let i = 11; i <= 15; i++) await store.add(issueMemory(i, `issue ${i}`));
    await store.flush();
    // Appended: the file starts with what it held, and vectra reads all 15, in order.
    const appended = readFileSync(file);
    expect(appended.subarray(0, first.length).equals(first)).toBe(true);
    const ids = (await readSegment(new AtomicFileStorage(), file)).map((item) => item.id);
    expect(ids).toEqual(Array.from({ length: 15 }, (_, i) => `issue-${i + 1}`));
    // A changed record and a removed one: rewritten whole, without the removed one.
    await store.add(issueMemory(3, "issue 3, edited"));
    await store.remove("issue-4");
    await store.flush();
    const items = await readSegment(new AtomicFileStorage(), file);
    expect(items.map((item) => item.id)).toHaveLength(14);
    expect(items.find((item) => item.id === "issue-3")?.metadata.text).toBe("issue 3, edited");
    expect(readFileSync(file).subarray(0, first.length).equals(first)).toBe(false);
    await store.close();
    // Opened from vectra's files alone, every record is there with its text.
    unlinkSync(join(directory, "snapshot.json"));
    const reopened = await openStore(directory, { segmentSize: 25 });
    const texts = (await reopened.list()).map((r) => r.text);
    expect(texts).toHaveLength(14);
    expect(texts).toContain("issue 3, edited");
    expect(texts).toContain("issue 15");
    await reopened.close();
  });

  it("cuts back the torn tail of an append that a crash interrupted; the log holds its records", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 100, ...crashable });
    for (let i = 1; i <= 5; i++) await store.add(issueMemory(i, `issue ${i}`));
    await store.flush();
    const file = join(directory, "segment-000001.pb");
    const size = readFileSync(file).length;
    // Durable in the log, then the process dies in the middle of appending them.
    for (let i = 6; i <= 8; i++) await store.add(issueMemory(i, `issue ${i}`));
    appendFileSync(file, readFileSync(file).subarray(60, 900));
    // Without the snapshot too, so that vectra's files are what is read.
    unlinkSync(join(directory, "snapshot.json"));
    const reopened = await openStore(directory);
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual(
      Array.from({ length: 8 }, (_, i) => `issue-${i + 1}`).sort(),
    );
    await reopened.close();
    // The open's checkpoint wrote the file again, whole and readable.
    expect(readFileSync(file).length).toBeGreaterThan(size);
    expect(await readSegment(new AtomicFileStorage(), file)).toHaveLength(8);
  });

  it("keeps an index file a flush rewrote longer when a crash comes before the manifest", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000, ...crashable });
    for (let i = 1; i <= 5; i++) await store.add(issueMemory(i, `issue ${i}`));
    await store.flush();
    const manifest = join(directory, "manifest.json");
    const oldManifest = readFileSync(manifest);
    const file = join(directory, "segment-000001.pb");
    const size = readFileSync(file).length;
    // An edit that lengthens a text: the next flush rewrites the segment whole, longer.
    const edited = `issue 1, edited:${" a much longer body".repeat(40)}`;
    await store.add(issueMemory(1, edited));
    // The manifest's rename fails (a directory in its way), as a crash after the segment's
    // rename and before the manifest's would leave it; then the process dies.
    renameSync(manifest, `${manifest}.aside`);
    mkdirSync(manifest);
    await expect(store.flush()).rejects.toThrow();
    rmSync(manifest, { recursive: true });
    writeFileSync(manifest, oldManifest);
    rmSync(`${manifest}.aside`);
    expect(readFileSync(file).length).toBeGreaterThan(size);

    const reopened = await openStore(directory);
    const texts = new Map((await reopened.list()).map((r) => [r.id, r.text]));
    expect([...texts.keys()].sort()).toEqual(
      Array.from({ length: 5 }, (_, i) => `issue-${i + 1}`).sort(),
    );
    expect(texts.get("issue-1")).toBe(edited);
    await reopened.close();
  });

  it("keeps an index file a flush rewrote shorter when a crash comes before the manifest", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000, ...crashable });
    for (let i = 1; i <= 5; i++) await store.add(issueMemory(i, `issue ${i}`));
    await store.flush();
    const manifest = join(directory, "manifest.json");
    const oldManifest = readFileSync(manifest);
    const file = join(directory, "segment-000001.pb");
    const size = readFileSync(file).length;
    // A removal: the next flush rewrites the segment whole, shorter than the manifest records.
    await store.remove("issue-2");
    // As a crash after the segment's rename and before the manifest's leaves it (see above).
    renameSync(manifest, `${manifest}.aside`);
    mkdirSync(manifest);
    await expect(store.flush()).rejects.toThrow();
    rmSync(manifest, { recursive: true });
    writeFileSync(manifest, oldManifest);
    rmSync(`${manifest}.aside`);
    expect(readFileSync(file).length).toBeLessThan(size);

    // Not taken for a file cut short: the log still holds the removal, and replays over it.
    const reopened = await openStore(directory);
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual([
      "issue-1",
      "issue-3",
      "issue-4",
      "issue-5",
    ]);
    await reopened.close();
  });

  it("gives back every record's URL as given, GitHub's own or another host's, before and after a reopen", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory);
    const records = [
      issueMemory(1, "on github.com"),
      {
        ...issueMemory(2, "a pull request"),
        kind: "pull_request" as const,
        url: "https://github.com/acme/widgets/pull/2",
      },
      {
        ...issueMemory(3, "on an Enterprise host"),
        url: "https://ghe.example/acme/widgets/issues/3",
      },
      { ...issueMemory(4, "with no URL"), url: undefined },
    ];
    await store.addMany(records);
    const urls = async (s: typeof store) =>
      Object.fromEntries((await s.list()).map((r) => [r.id, r.url]));
    const expected = Object.fromEntries(records.map((r) => [r.id, r.url]));
    expect(await urls(store)).toEqual(expected);
    await store.close();
    const reopened = await openStore(directory);
    expect(await urls(reopened)).toEqual(expected);
    expect((await reopened.get("issue-1"))?.url).toBe("https://github.com/acme/widgets/issues/1");
    const [hit] = await reopened.search("an Enterprise host", { k: 1 });
    expect(hit?.record.url).toBe("https://ghe.example/acme/widgets/issues/3");
    await reopened.close();
    // And vectra's files hold them too.
    const items = await readSegment(new AtomicFileStorage(), join(directory, "segment-000001.pb"));
    expect(Object.fromEntries(items.map((item) => [item.id, item.metadata.url]))).toEqual(expected);
  });

  it("finds by meaning, with kind, state, time and exclusion filters and a minimum score", async () => {
    const { store } = await seeded();
    await store.add({
      ...issueMemory(9, "Saving crashes the app"),
      id: "answer-900",
      kind: "answer",
      number: undefined,
    });
    await store.add(
      issueMemory(6, "Saving crashes the app", {
        state: "closed",
        createdAt: "2025-01-01T00:00:00Z",
      }),
    );

    const query = "the app crashes when saving";
    expect(ids(await store.search(query, { k: 3, kinds: ["answer"] }))).toEqual(["answer-900"]);
    expect(ids(await store.search(query, { k: 10, state: "closed" }))).toEqual(["issue-6"]);
    expect(ids(await store.search(query, { k: 10, since: "2026-01-01T00:00:00Z" }))).not.toContain(
      "issue-6",
    );
    expect(ids(await store.search(query, { k: 10, excludeIds: ["issue-1"] }))).not.toContain(
      "issue-1",
    );
    const strict = await store.search("App crashes when saving a widget on Windows please", {
      k: 5,
      minScore: 0.8,
    });
    expect(ids(strict)).toEqual(["issue-1"]);
    await store.close();
  });

  it("finds a keyword match that the vectors miss, for short and long queries alike", async () => {
    const { store } = await seeded(makeDataDir(), { embedder: blind });
    const short = await store.search("CSV export", { k: 2, minScore: 0.99 });
    // A short query's keyword hit is kept below the minimum score, as its words say more.
    expect(short[0]).toMatchObject({ record: { id: "issue-4" }, keyword: true });
    const question = "a long question about exporting widgets to CSV files";
    const long = await store.search(question, { k: 2 });
    expect(long[0]).toMatchObject({ record: { id: "issue-4" }, keyword: true });
    // A long query shares a word with almost anything: its keyword hits must reach the score.
    expect(await store.search(question, { k: 2, minScore: 0.99 })).toEqual([]);
    await store.close();
  });

  it("ranks a near-exact duplicate (the same panic message) first, whatever the score", async () => {
    const { store } = await seeded();
    await store.addMany([
      issueMemory(
        10,
        "ICE when compiling a generic function\n\nthread 'rustc' panicked at 'assertion failed: !ty.has_escaping_regions()', src/librustc/middle/traits.rs:123:5",
      ),
      issueMemory(
        11,
        "Compiler crash with closures in trait objects\n\nThe compiler crashes with closures in trait objects and generic closures.",
      ),
    ]);
    const hits = await store.search(
      "Compiler crash with closures in trait objects\n\nthread 'rustc' panicked at 'assertion failed: !ty.has_escaping_regions()', /home/me/rust/src/librustc/middle/traits.rs:130:9",
      { k: 3, minScore: 0.99 },
    );
    expect(hits.map((h) => [h.record.id, h.keyword])).toEqual([["issue-10", true]]);
    await store.close();
  });

  it("keeps its keyword index through a replayed log and a reopen, and in step with replaces and removes", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { ...crashable, embedder: blind });
    await store.addMany(ISSUES.map(([n, text]) => issueMemory(n, text)));
    const csv = async (s: typeof store) =>
      (await s.search("CSV", { k: 5 })).filter((h) => h.keyword).map((h) => h.record.id);
    expect(await csv(store)).toEqual(["issue-4"]);
    // Never flushed: the second open finds the records in the log only, and indexes them.
    const replayed = await openStore(directory, { embedder: blind });
    expect(await csv(replayed)).toEqual(["issue-4"]);
    const bytes = replayed.estimateBytes();
    await replayed.add(issueMemory(4, "Add support for exporting widgets to JSON"));
    await replayed.add(issueMemory(7, "CSV import drops the last row"));
    expect(await csv(replayed)).toEqual(["issue-7"]);
    await replayed.remove("issue-7");
    expect(await csv(replayed)).toEqual([]);
    expect(replayed.estimateBytes()).toBeGreaterThan(0);
    expect(Math.abs(replayed.estimateBytes() - bytes)).toBeLessThan(bytes);
    await replayed.close();
    // From the index files this time.
    const reopened = await openStore(directory, { embedder: blind });
    expect(await csv(reopened)).toEqual([]);
    expect(
      (await reopened.search("exporting JSON", { k: 5 })).filter((h) => h.keyword)[0]?.record.id,
    ).toBe("issue-4");
    await reopened.close();
  });

  it("removes a memory for good", async () => {
    const { store, directory } = await seeded(makeDataDir(), crashable);
    expect(await store.remove("issue-2")).toBe(true);
    expect(await store.remove("issue-2")).toBe(false);
    expect(await store.get("issue-2")).toBeUndefined();
    const reopened = await openStore(directory);
    expect(await reopened.get("issue-2")).toBeUndefined();
    expect(await reopened.list()).toHaveLength(4);
    await reopened.close();
  });

  it("forgets a deleted thread for good: its issue, answers and comments go, its notes stay, and nothing of it but a note is written again", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, crashable);
    const kept = await seedThreadToForget(store);

    expect(await store.forgetThread(7)).toBe(4);
    expect(await store.forgetThread(7)).toBe(0);
    expect(await store.forgetThread(9)).toBe(0);
    expect(await store.get("answer-70")).toBeUndefined();
    expect(await store.get("issue-7")).toBeUndefined();
    // An answer written just before thread 11 is forgotten, waiting in the write queue with
    // the forgetting: applied after it in log order, the forgetting removes it, unseen before.
    const answering = store.add(said("answer-110", "answer", 11, "Written as the issue went"));
    await new Promise(setImmediate);
    expect(await store.forgetThread(11)).toBe(0);
    await answering;
    expect(await store.get("answer-110")).toBeUndefined();
    await writeLateToThread7(store);
    expect((await store.list()).map((r) => r.id).sort()).toEqual(kept);
    expect(ids(await store.search("sk-live-1234 key leaked", { k: 5 }))).not.toContain("answer-70");
    // No flush, no close: a crash now must not bring them back (the log holds the forgetting).
    const replayed = await openStore(directory);
    expect((await replayed.list()).map((r) => r.id).sort()).toEqual(kept);
    await replayed.add(issueMemory(7, "Back from the log?", LATE));
    expect(await replayed.get("issue-7")).toBeUndefined();
    await replayed.close();
    // From the manifest the close wrote, the log gone.
    const reopened = await openStore(directory);
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual(kept);
    expect(await reopened.get("summary-7")).toBeUndefined();
    expect(await reopened.forgottenThreads()).toEqual([7, 9, 11]);
    await reopened.add(issueMemory(7, "Back from the manifest?", LATE));
    await reopened.add(said("answer-75", "answer", 7, "Back from the manifest?"));
    expect(await reopened.get("issue-7")).toBeUndefined();
    expect(await reopened.get("answer-75")).toBeUndefined();
    await reopened.close();
  });

  it("keeps its memories in vectra index files that vectra itself can open", async () => {
    const { store, directory } = await seeded();
    await store.flush();
    const index = openSegmentIndex(directory, "segment-000001.pb");
    const items = await index.listItems();
    expect(items.map((i) => i.id).sort()).toEqual([
      "issue-1",
      "issue-2",
      "issue-3",
      "issue-4",
      "issue-5",
    ]);
    expect(items[0]?.vector).toHaveLength(512);
    expect(items.find((i) => i.id === "issue-4")?.metadata).toMatchObject({
      kind: "issue",
      number: 4,
      repo: "acme/widgets",
    });
    await store.close();
  });

  it("refuses to mix embedders, with an error that says what to do", async () => {
    const { store, directory } = await seeded();
    await store.close();
    const other = {
      model: "text-embedding-3-small",
      dimension: 1536,
      relatedScore: 0.7,
      embed: async () => [],
    };
    await expect(openStore(directory, { embedder: other })).rejects.toThrow(MemoryMismatchError);
    await expect(openStore(directory, { embedder: other })).rejects.toThrow(
      /embedded with talos-local-hash-v2 \(512 dimensions\), but the configured embedder is text-embedding-3-small \(1536 dimensions\)/,
    );
  });
});

describe("flushes that fail, and a crash in the middle of one", () => {
  const enospc = () =>
    Promise.reject(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }));

  it("keeps accepting adds while every flush fails, losing nothing, and writes it all once the disk has room", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 2, segmentSize: 4 });
    for (let i = 1; i <= 4; i++) await store.add(issueMemory(i, `issue ${i} text`));
    await store.flush();
    vi.spyOn(MemorySnapshot.prototype, "writeSegment").mockImplementation(enospc);
    vi.spyOn(MemorySnapshot.prototype, "writeHeader").mockImplementation(enospc);
    for (let i = 5; i <= 40; i++) await store.add(issueMemory(i, `issue ${i} text`));
    await store.remove("issue-2");
    await store.forgetThread(3);
    await expect(store.flush()).rejects.toThrow("ENOSPC");
    expect((await store.stats()).records).toBe(38);

    vi.restoreAllMocks();
    await store.close();
    const reopened = await openStore(directory, { segmentSize: 4 });
    const ids = (await reopened.list()).map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => `issue-${i + 1}`)
        .filter((id) => id !== "issue-2" && id !== "issue-3")
        .sort(),
    );
    await reopened.close();
    // The logs the failed flushes sealed went with the checkpoint that covered them.
    expect(readdirSync(directory).filter((n) => n.startsWith("log-")).length).toBeLessThanOrEqual(
      2,
    );
  });

  const note = (n: number, thread?: number) => ({
    id: `note-${n}`,
    kind: "note" as const,
    text: `note ${n}`,
    repo: "acme/widgets",
    createdAt: "2026-11-24T00:00:00Z",
    ...(thread === undefined ? {} : { number: thread }),
  });
  const answer = (n: number, thread: number) => ({
    id: `answer-${n}`,
    kind: "answer" as const,
    text: `answer ${n} on thread ${thread}`,
    repo: "acme/widgets",
    number: thread,
    createdAt: "2026-11-24T00:00:00Z",
  });

  it.each([
    ["before its snapshot header and manifest", () => MemorySnapshot.prototype, "sync"],
    [
      "after its manifest, before its snapshot header",
      () => MemorySnapshot.prototype,
      "writeHeader",
    ],
    ["after its manifest, before its log is deleted", () => WriteAheadLog.prototype, "deleteUpTo"],
  ] as const)(
    "loses nothing, applies nothing twice and brings back nothing removed or forgotten after a crash %s",
    async (_, prototype, step) => {
      const directory = makeDataDir();
      // Not closed at the end: it is the dead process's, its flush hung for good.
      const store = await openTestStore(directory, {
        batchSize: 1_000,
        segmentSize: 4,
        ...crashable,
      });
      for (let i = 1; i <= 6; i++) await store.add(issueMemory(i, `issue ${i} text`));
      await store.add(answer(1, 5));
      await store.add(note(1, 5));
      await store.flush();
      // The batch the crash cuts short: an edit that lengthens a text, a removal, a forgotten
      // thread, an append to a segment, and a put refused because its thread is forgotten.
      await store.add(issueMemory(1, `issue 1 text, edited:${" longer".repeat(30)}`));
      await store.remove("issue-2");
      await store.forgetThread(5);
      await store.add(answer(2, 5));
      for (let i = 7; i <= 9; i++) await store.add(issueMemory(i, `issue ${i} text`));
      await store.add(note(2));

      const spy = vi
        .spyOn(prototype() as unknown as Record<string, () => Promise<void>>, step)
        .mockImplementationOnce(() => new Promise<never>(() => undefined));
      void store.flush();
      await vi.waitFor(() => expect(spy).toHaveBeenCalled());
      vi.restoreAllMocks();
      // Opened twice: the first open compacts.
      for (let round = 0; round < 2; round++) {
        const reopened = await openStore(directory, { segmentSize: 4 });
        const records = await reopened.list();
        const kept = records.map((r) => r.id);
        expect(new Set(kept).size, `duplicates: ${kept.join(",")}`).toBe(kept.length);
        expect(kept.sort()).toEqual([
          "issue-1",
          "issue-3",
          "issue-4",
          "issue-6",
          "issue-7",
          "issue-8",
          "issue-9",
          "note-1",
          "note-2",
        ]);
        expect(records.find((r) => r.id === "issue-1")!.text).toContain("edited");
        expect(await reopened.forgottenThreads()).toEqual([5]);
        expect(ids(await reopened.search("issue 5 text", { k: 10 }))).not.toContain("issue-5");
        await reopened.close();
      }
    },
  );
});

describe("damaged memory files", () => {
  const logFiles = (directory: string) =>
    readdirSync(directory).filter((n) => n.startsWith("log-"));

  it("cuts off a log entry a crash left half-written, keeping everything before it", async () => {
    const { store, directory } = await seeded(makeDataDir(), crashable);
    await store.add(issueMemory(6, "one more"));
    const [log] = logFiles(directory);
    const path = join(directory, log!);
    const whole = readFileSync(path);
    await store.add(issueMemory(7, "cut short"));
    // The process died in the middle of writing the second append: only part of it is there.
    truncateSync(path, whole.length + 100);
    const reopened = await openStore(directory);
    expect((await reopened.list()).map((r) => r.id)).not.toContain("issue-7");
    expect(await reopened.list()).toHaveLength(6);
    await reopened.close();
  });

  /** The seeded five in one append, then six and seven: the log as a crash leaves it. */
  async function logOfSeven() {
    const { store, directory } = await seeded(makeDataDir(), crashable);
    await store.add(issueMemory(6, "six"));
    await store.add(issueMemory(7, "seven"));
    const [log] = logFiles(directory);
    const path = join(directory, log!);
    return { directory, path, content: readFileSync(path) };
  }

  it("rejects a log damaged in the middle, naming the file and entry, and leaves it in place", async () => {
    const { directory, path, content } = await logOfSeven();
    const at = content.indexOf('"text":"six"') + 9;
    content[at] = "I".charCodeAt(0);
    writeFileSync(path, content);
    const start = content.lastIndexOf('{"op":"put"', at) - 12;

    const error = await openStore(directory).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemoryCorruptError);
    // The five seeded records are one append, then six and seven: six is the sixth entry.
    expect((error as Error).message).toContain(`${path} entry 6 (byte ${start}) is damaged`);
    expect(readFileSync(path)).toEqual(content);
  });

  it.each([
    ["JSON length", 3, 0x40],
    ["bytes length", 5, 0x01],
  ])(
    "rejects a log whose first frame's %s is damaged, rather than cut the acknowledged frames after it",
    async (_, offset, bit) => {
      const { directory, path, content } = await logOfSeven();
      // Its lengths now lead nowhere whole: it looked like a torn last append, and was cut off
      // with six and seven behind it.
      content.writeUInt8(content.readUInt8(offset) ^ bit, offset);
      writeFileSync(path, content);
      const error = await openStore(directory).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MemoryCorruptError);
      expect((error as Error).message).toContain(`${path} entry 1 (byte 0) is damaged`);
      expect(readFileSync(path)).toEqual(content);
    },
  );

  /** A memory of one add, closed, and its log open past the checkpoint: to write what it replays. */
  async function logAfterOneAdd() {
    const directory = makeDataDir();
    const store = await openStore(directory);
    await store.add(issueMemory(1, "written before"));
    await store.close();
    const { checkpoint } = JSON.parse(readFileSync(join(directory, "manifest.json"), "utf8")) as {
      checkpoint: number;
    };
    const { wal } = await WriteAheadLog.open(directory, checkpoint, pino({ level: "silent" }));
    return { directory, wal };
  }

  it("refuses, naming the log entry, a whole frame that holds no change it can apply", async () => {
    const { directory, wal } = await logAfterOneAdd();
    await wal.append([
      {
        value: { op: "put", record: { id: "issue-3" }, hash: "x" },
        bytes: new Uint8Array(new Float32Array(512).fill(0.1).buffer),
      },
    ]);
    await wal.close();
    const error = await openStore(directory).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemoryCorruptError);
    expect((error as Error).message).toMatch(
      /^log \d+ entry 1 of .* is not a change this store can apply \(/,
    );
  });

  it("skips, with a warning, a put whose vector is not finite that an earlier version logged", async () => {
    const { directory, wal } = await logAfterOneAdd();
    const frame = (n: number, vector: Float32Array) => {
      const record = { ...issueMemory(n, `issue ${n}`), createdAt: "2026-11-01T10:00:00.000Z" };
      const hash = createHash("sha256").update(record.text).digest("base64");
      return { value: { op: "put", record, hash }, bytes: new Uint8Array(vector.buffer) };
    };
    // As an earlier version logged an add whose vector held Infinity (its unit vector, NaN),
    // between two good ones of the same group commit.
    const good = () => Float32Array.from({ length: 512 }, (_, i) => Math.cos(i));
    const bad = good();
    bad[0] = Number.NaN;
    await wal.append([frame(2, good()), frame(3, bad), frame(4, good())]);
    await wal.close();
    const warnings: unknown[] = [];
    const log = pino(
      { level: "warn" },
      { write: (line: string) => warnings.push(JSON.parse(line)) },
    );
    const reopened = await openStore(directory, { log });
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual([
      "issue-1",
      "issue-2",
      "issue-4",
    ]);
    expect(warnings).toEqual([
      expect.objectContaining({
        id: "issue-3",
        msg: "memory log entry with a vector that is not finite skipped",
      }),
    ]);
  });

  it("replays a log written in the earlier format (a JSON line an entry, the vector in base64)", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory);
    await store.add(issueMemory(1, "written before"));
    await store.close();
    const manifest = JSON.parse(readFileSync(join(directory, "manifest.json"), "utf8")) as {
      checkpoint: number;
    };
    const vector = Buffer.from(Float32Array.from({ length: 512 }, (_, i) => Math.cos(i)).buffer);
    const record = {
      ...issueMemory(2, "left in an old log"),
      createdAt: "2026-11-01T10:00:00.000Z",
    };
    const json = JSON.stringify({
      op: "put",
      record,
      hash: createHash("sha256").update(record.text).digest("base64"),
      vector: vector.toString("base64"),
    });
    // As the earlier version leaves it: its own log segment, and no binary one.
    for (const name of logFiles(directory)) unlinkSync(join(directory, name));
    const legacy = join(
      directory,
      `log-${String(manifest.checkpoint + 1).padStart(10, "0")}.jsonl`,
    );
    writeFileSync(legacy, `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`);

    const reopened = await openStore(directory);
    expect((await reopened.get("issue-2"))?.text).toBe("left in an old log");
    await reopened.add(issueMemory(3, "after the upgrade"));
    await reopened.close();
    // The open's checkpoint took the old log in; the new entries went to a binary one.
    expect(logFiles(directory).some((name) => name.endsWith(".jsonl"))).toBe(false);
    const again = await openStore(directory);
    expect((await again.list()).map((r) => r.id).sort()).toEqual(["issue-1", "issue-2", "issue-3"]);
    await again.close();
  });

  it("rewrites a truncated index file from the snapshot, losing nothing", async () => {
    const { store, directory } = await seeded();
    await store.close();
    const file = join(directory, "segment-000001.pb");
    truncateSync(file, 100);
    expect(await textsOnReopen(directory)).toEqual(ISSUES.map(([, text]) => text).sort());
    expect(await readSegment(new AtomicFileStorage(), file)).toHaveLength(ISSUES.length);
  });

  it("rejects a truncated index file that no snapshot covers, naming it, and never opens empty", async () => {
    const { store, directory } = await seeded();
    await store.close();
    const file = join(directory, "segment-000001.pb");
    truncateSync(file, 100);
    unlinkSync(join(directory, "snapshot.json"));
    await expect(openStore(directory)).rejects.toThrow(`${file} is not a readable vectra index`);
  });

  it("rejects an index file cut at an item's end that no snapshot covers, naming it, and never opens smaller", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory, { batchSize: 1_000 });
    await store.addMany(ISSUES.slice(0, 3).map(([n, text]) => issueMemory(n, text)));
    await store.flush();
    const file = join(directory, "segment-000001.pb");
    const firstSize = readFileSync(file).length;
    // The next flush appends the other two to the same file.
    await store.addMany(ISSUES.slice(3).map(([n, text]) => issueMemory(n, text)));
    await store.close();
    const manifest = JSON.parse(readFileSync(join(directory, "manifest.json"), "utf8")) as {
      indexBytes: Record<string, number>;
    };
    expect(manifest.indexBytes["1"]).toBe(readFileSync(file).length);
    // It loses its last two items and still reads whole, and the snapshot is gone.
    truncateSync(file, firstSize);
    unlinkSync(join(directory, "snapshot.json"));
    expect(await readSegment(new AtomicFileStorage(), file)).toHaveLength(3);
    // It had opened with three records, and its checkpoint recorded the short file as right.
    await refusedUnchanged(
      directory,
      `${file} is ${firstSize} bytes, shorter than the ${manifest.indexBytes["1"]} manifest.json records`,
    );
  });

  it.each([
    ["its manifest records its size", false],
    ["its manifest is older than the record of sizes", true],
  ])(
    "rejects an empty index file that no snapshot covers, naming it, when %s",
    async (_, oldManifest) => {
      const { store, directory } = await seeded();
      await store.close();
      if (oldManifest) {
        const manifestFile = join(directory, "manifest.json");
        const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as {
          indexBytes?: unknown;
        };
        delete manifest.indexBytes;
        writeFileSync(manifestFile, JSON.stringify(manifest));
      }
      const file = join(directory, "segment-000001.pb");
      truncateSync(file, 0);
      unlinkSync(join(directory, "snapshot.json"));
      // vectra reads it as an index of no records: the memory had opened empty.
      await refusedUnchanged(directory, `${file} is empty (0 bytes)`);
    },
  );

  it.each([
    ["a damaged", "{ not json"],
    ["an empty", ""],
  ])("rejects %s manifest, naming it", async (_, content) => {
    const { store, directory } = await seeded();
    await store.close();
    writeFileSync(join(directory, "manifest.json"), content);
    await expect(openStore(directory)).rejects.toThrow(
      `${join(directory, "manifest.json")} is damaged`,
    );
    expect(readdirSync(directory)).toContain("segment-000001.pb");
  });

  /** Opening `directory` fails with a MemoryCorruptError holding `message`, changing no file. */
  async function refusedUnchanged(directory: string, message: string) {
    const files = () =>
      new Map(readdirSync(directory).map((name) => [name, readFileSync(join(directory, name))]));
    const before = files();
    const error = await openStore(directory).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MemoryCorruptError);
    expect((error as Error).message).toContain(message);
    expect(files()).toEqual(before);
  }

  it("refuses a memory whose manifest is missing, naming the directory, and deletes nothing", async () => {
    const { store, directory } = await seeded();
    await store.close();
    // Two more, acknowledged and in the log only: then the process dies.
    const second = await openStore(directory, crashable);
    await second.addMany([issueMemory(6, "six"), issueMemory(7, "seven")]);
    unlinkSync(join(directory, "manifest.json"));
    // It had opened with the two in the log alone, the index files deleted as unlisted, and
    // its checkpoint then wrote a manifest of the two.
    await refusedUnchanged(directory, `${directory} has no manifest.json, but its log starts at`);
  });

  it("refuses a memory whose manifest and log are missing, naming the directory", async () => {
    const { store, directory } = await seeded();
    await store.close();
    unlinkSync(join(directory, "manifest.json"));
    for (const name of logFiles(directory)) unlinkSync(join(directory, name));
    await refusedUnchanged(
      directory,
      `${directory} has no manifest.json, but it holds rows-000001.bin, segment-000001.pb`,
    );
  });

  it("opens, from its log, a memory whose first flush a crash cut short before it had a manifest", async () => {
    const directory = makeDataDir();
    // The first open's checkpoint fails (a full disk): no manifest yet, the log starts at 1.
    vi.spyOn(WriteAheadLog.prototype, "rotate").mockRejectedValueOnce(new Error("ENOSPC"));
    // Not closed at the end: it is the dead process's, its flush hung for good.
    const store = await openTestStore(directory, { batchSize: 1_000, ...crashable });
    vi.restoreAllMocks();
    expect(readdirSync(directory)).not.toContain("manifest.json");
    await store.addMany(ISSUES.map(([n, text]) => issueMemory(n, text)));
    // The first flush writes the index and rows files, then the process dies before its
    // snapshot header and manifest.
    const never = new Promise<never>(() => undefined);
    vi.spyOn(MemorySnapshot.prototype, "sync").mockImplementationOnce(() => never);
    void store.flush();
    await vi.waitFor(() => expect(MemorySnapshot.prototype.sync).toHaveBeenCalled());
    vi.restoreAllMocks();
    expect(readdirSync(directory)).toContain("segment-000001.pb");
    expect(readdirSync(directory)).not.toContain("manifest.json");
    expect(logFiles(directory).sort()[0]).toBe("log-0000000001.bin");

    expect(await textsOnReopen(directory)).toEqual(ISSUES.map(([, text]) => text).sort());
    expect(readdirSync(directory)).toContain("manifest.json");
  });

  it("opens empty a directory a crash left in its first open, with only the snapshot's files", async () => {
    const directory = makeDataDir();
    writeFileSync(join(directory, "vectors.i8"), "");
    writeFileSync(join(directory, "vectors.f32"), "");
    expect(await textsOnReopen(directory)).toEqual([]);
  });

  /** The seeded five in one append, then six and seven in a log segment after a failed flush. */
  async function logAfterFailedFlush() {
    const { store, directory } = await seeded(makeDataDir(), { batchSize: 1_000, ...crashable });
    await store.flush();
    await store.add(issueMemory(6, "six"));
    // A flush that fails (a full disk) seals the log segment holding six.
    vi.spyOn(MemorySnapshot.prototype, "writeSegment").mockRejectedValueOnce(new Error("ENOSPC"));
    await expect(store.flush()).rejects.toThrow("ENOSPC");
    vi.restoreAllMocks();
    await store.add(issueMemory(7, "seven"));
    return directory;
  }

  it("refuses a log with a segment missing after the checkpoint, naming it, and deletes nothing", async () => {
    const directory = await logAfterFailedFlush();
    const { checkpoint } = JSON.parse(readFileSync(join(directory, "manifest.json"), "utf8")) as {
      checkpoint: number;
    };
    const missing = join(directory, `log-${String(checkpoint + 1).padStart(10, "0")}.bin`);
    expect(logFiles(directory).length).toBeGreaterThan(2);
    unlinkSync(missing);
    // It had opened without six, and the open's checkpoint made that for good.
    await refusedUnchanged(directory, `${missing} is missing`);
  });

  it("refuses a log with a segment missing before its last one, as well as its first", async () => {
    const directory = await logAfterFailedFlush();
    const logs = logFiles(directory).sort();
    const middle = logs.at(-2)!;
    unlinkSync(join(directory, middle));
    await refusedUnchanged(directory, `${join(directory, middle)} is missing`);
  });
});

describe("the directory lock", () => {
  it("keeps a second opener out while the first is open, naming the directory", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory);
    await expect(openStore(directory)).rejects.toThrow(
      `${directory} is in use by process ${process.pid}`,
    );
    await store.close();
    await (await openStore(directory)).close();
  });

  it("is released when closing a file fails, so this process can open the memory again", async () => {
    const directory = makeDataDir();
    const store = await openStore(directory);
    await store.add(issueMemory(1, "issue 1"));
    const close = MemorySnapshot.prototype.close;
    vi.spyOn(MemorySnapshot.prototype, "close").mockImplementationOnce(async function (
      this: MemorySnapshot,
    ) {
      await close.call(this);
      throw new Error("EIO: i/o error, close");
    });
    await expect(store.close()).rejects.toThrow("EIO");
    vi.restoreAllMocks();
    const reopened = await openStore(directory);
    expect((await reopened.get("issue-1"))?.text).toBe("issue 1");
    await reopened.close();
  });
});

describe("the index files", () => {
  it("reads index files back with the same records", async () => {
    const { store, directory } = await seeded();
    await store.flush();
    const items = await readSegment(new AtomicFileStorage(), join(directory, "segment-000001.pb"));
    expect(items.map((i) => i.metadata.text)).toContain("Add support for exporting widgets to CSV");
    await store.close();
  });
});

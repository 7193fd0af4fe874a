import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_CHUNKS, MemorySnapshot } from "../../src/memory/memory-snapshot.js";
import { SEGMENT_CODEC } from "../../src/memory/vectra-files.js";
import { makeDataDir } from "../helpers/test-app.js";
import { ISSUE_TEXTS, issueMemory, openTestStore } from "../helpers/test-memory.js";

// Three segments of 4: a damaged block is one of several.
const SEGMENT_SIZE = 4;
const TEXTS = ISSUE_TEXTS;

afterEach(() => vi.restoreAllMocks());

async function seeded() {
  const directory = makeDataDir();
  const store = await openTestStore(directory, { segmentSize: SEGMENT_SIZE });
  await store.addMany(TEXTS.map((text, i) => issueMemory(i + 1, text)));
  const before = await store.search("saving a widget crashes", { k: 3 });
  await store.close();
  return { directory, before };
}

/** Opens `directory`, counting vectra index files decoded and errors logged. */
async function reopen(directory: string, segmentSize = SEGMENT_SIZE) {
  const decode = vi.spyOn(SEGMENT_CODEC, "deserializeIndex");
  const logged: string[] = [];
  const log = pino(
    { level: "warn" },
    { write: (line: string) => logged.push(JSON.parse(line).msg as string) },
  );
  const store = await openTestStore(directory, { segmentSize, log });
  return { store, decoded: () => decode.mock.calls.length, logged };
}

const flip = (file: string, at: number) => {
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(file, bytes);
};

/** A segment's checksums and sizes as the snapshot's header holds them. */
const segmentSums = (directory: string, segment = 1) =>
  (
    JSON.parse(readFileSync(join(directory, "snapshot.json"), "utf8")) as {
      segments: Record<string, { chunks?: number; bytes?: number }>;
    }
  ).segments[String(segment)]!;

const summary = (hits: Array<{ record: { id: string }; score: number }>) =>
  hits.map((hit) => [hit.record.id, hit.score.toFixed(6)]);

describe("the memory snapshot", () => {
  it("opens a memory without decoding its vectra files, with the same records and search results", async () => {
    const { directory, before } = await seeded();
    const { store, decoded, logged } = await reopen(directory);
    expect(decoded()).toBe(0);
    expect(logged).toEqual([]);
    expect((await store.list()).map((r) => r.text)).toEqual(TEXTS);
    expect(await store.get("issue-7")).toMatchObject({ text: TEXTS[6], number: 7, state: "open" });
    expect(summary(await store.search("saving a widget crashes", { k: 3 }))).toEqual(
      summary(before),
    );
    await store.close();
  });

  it("never trusts damaged codes: it reads the vectra files instead and writes a new snapshot", async () => {
    const { directory, before } = await seeded();
    flip(join(directory, "vectors.i8"), 2 * 1536 + 10);
    const first = await reopen(directory);
    expect(first.decoded()).toBe(3);
    expect(summary(await first.store.search("saving a widget crashes", { k: 3 }))).toEqual(
      summary(before),
    );
    await first.store.close();
    vi.restoreAllMocks();
    const second = await reopen(directory);
    expect(second.decoded()).toBe(0);
    await second.store.close();
  });

  it("never trusts damaged rows, whichever segment's (the rows files are read ahead)", async () => {
    for (const segment of [1, 2, 3]) {
      const { directory, before } = await seeded();
      flip(join(directory, `rows-00000${segment}.bin`), 8);
      const { store, decoded } = await reopen(directory);
      expect(decoded()).toBe(3);
      expect(summary(await store.search("saving a widget crashes", { k: 3 }))).toEqual(
        summary(before),
      );
      expect((await store.list()).map((r) => r.text)).toEqual(TEXTS);
      await store.close();
      vi.restoreAllMocks();
    }
  });

  it("never trusts a snapshot of another checkpoint (a crash between it and the manifest)", async () => {
    const { directory } = await seeded();
    const header = join(directory, "snapshot.json");
    const parsed = JSON.parse(readFileSync(header, "utf8")) as { checkpoint: number };
    writeFileSync(header, JSON.stringify({ ...parsed, checkpoint: parsed.checkpoint + 1 }));
    const { store, decoded } = await reopen(directory);
    expect(decoded()).toBe(3);
    expect(await store.list()).toHaveLength(TEXTS.length);
    await store.close();
  });

  it("reads a damaged float32 row or text from the vectra file, says so, and repairs the block at the next flush", async () => {
    const { directory, before } = await seeded();
    // issue-1 is slot 0: its float32 row, and the first text of rows-000001.bin.
    flip(join(directory, "vectors.f32"), 12);
    const rows = join(directory, "rows-000001.bin");
    const content = readFileSync(rows);
    const textStart = 4 + content.readUInt32LE(0);
    flip(rows, textStart + 2);

    const { store, decoded, logged } = await reopen(directory);
    expect(decoded()).toBe(0);
    expect(summary(await store.search("saving a widget crashes", { k: 3 }))).toEqual(
      summary(before),
    );
    expect((await store.get("issue-1"))?.text).toBe(TEXTS[0]);
    expect(logged.some((msg) => msg.startsWith("memory snapshot damaged"))).toBe(true);
    expect(decoded()).toBeGreaterThan(0);
    await store.close();

    vi.restoreAllMocks();
    const repaired = await reopen(directory);
    expect((await repaired.store.get("issue-1"))?.text).toBe(TEXTS[0]);
    expect(summary(await repaired.store.search("saving a widget crashes", { k: 3 }))).toEqual(
      summary(before),
    );
    expect(repaired.decoded()).toBe(0);
    expect(repaired.logged).toEqual([]);
    await repaired.store.close();
  });

  it("moves records a larger segment size left behind into new segments, losing none", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: 8 });
    await store.addMany(TEXTS.map((text, i) => issueMemory(i + 1, text)));
    await store.close();
    // A memory from before the snapshot: no segment size in its manifest, no snapshot.
    const manifestFile = join(directory, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as { segmentSize?: number };
    delete manifest.segmentSize;
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const { store: reopened } = await reopen(directory);
    expect((await reopened.list()).map((r) => r.text).sort()).toEqual([...TEXTS].sort());
    expect((await reopened.stats()).segments).toBe(3);
    await reopened.close();
    vi.restoreAllMocks();
    const again = await reopen(directory);
    expect(again.decoded()).toBe(0);
    expect((await again.store.list()).map((r) => r.text).sort()).toEqual([...TEXTS].sort());
    await again.store.close();
  });

  it("opens from the snapshot after moving records, where the blocks of the larger segment size held others", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: 8 });
    await store.addMany(TEXTS.map((text, i) => issueMemory(i + 1, text)));
    await store.flush();
    // Slot 9 keeps issue-10's codes; read back, issue-10 is slot 4 and slot 8 is the last.
    await store.remove("issue-9");
    await store.close();
    const manifestFile = join(directory, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as { segmentSize?: number };
    delete manifest.segmentSize;
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const kept = TEXTS.filter((_, i) => i !== 8).sort();
    const { store: reopened } = await reopen(directory);
    expect((await reopened.list()).map((r) => r.text).sort()).toEqual(kept);
    await reopened.close();
    vi.restoreAllMocks();
    const again = await reopen(directory);
    expect(again.decoded()).toBe(0);
    expect(again.logged).toEqual([]);
    expect((await again.store.list()).map((r) => r.text).sort()).toEqual(kept);
    await again.store.close();
  });

  it("keeps texts and float32 vectors out of RAM once a flush has written them", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: SEGMENT_SIZE });
    const long = "x".repeat(10_000);
    await store.addMany(TEXTS.map((text, i) => issueMemory(i + 1, `${text} ${long}`)));
    const pending = store.estimateBytes();
    await store.flush();
    const flushed = store.estimateBytes();
    // 10 texts of 10 KB (two bytes a character) and 10 float32 vectors leave.
    expect(pending - flushed).toBeGreaterThanOrEqual(10 * 20_000);
    expect((await store.get("issue-3"))?.text).toBe(`${TEXTS[2]} ${long}`);
    await store.close();
  });

  it("appends a chunk to the rows file for the records a flush adds, and opens from the chunks", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: 64 });
    const sizes: number[] = [];
    for (let i = 0; i < 5; i++) {
      await store.add(issueMemory(i + 1, TEXTS[i]!));
      await store.flush();
      sizes.push(readFileSync(join(directory, "rows-000001.bin")).length);
      expect(segmentSums(directory)).toMatchObject({ chunks: i + 1, bytes: sizes[i] });
    }
    // Each flush wrote its record, not the segment again.
    const growth = sizes.slice(1).map((size, i) => size - sizes[i]!);
    expect(Math.max(...growth)).toBeLessThan(sizes[0]! * 2);
    await store.close();

    const { store: reopened, decoded, logged } = await reopen(directory, 64);
    expect(decoded()).toBe(0);
    expect(logged).toEqual([]);
    expect((await reopened.list()).map((r) => r.text)).toEqual(TEXTS.slice(0, 5));
    for (let i = 0; i < 5; i++) expect((await reopened.get(`issue-${i + 1}`))?.text).toBe(TEXTS[i]);
    // Up to MAX_CHUNKS chunks; the flush after that writes the file as one.
    for (let i = 5; i < MAX_CHUNKS; i++) {
      await reopened.add(issueMemory(i + 1, `issue ${i + 1}`));
      await reopened.flush();
    }
    expect(segmentSums(directory).chunks).toBe(MAX_CHUNKS);
    await reopened.add(issueMemory(100, "one more"));
    await reopened.flush();
    expect(segmentSums(directory).chunks).toBe(1);
    await reopened.close();
    const again = await reopen(directory, 64);
    expect(again.decoded()).toBe(0);
    expect(await again.store.list()).toHaveLength(MAX_CHUNKS + 1);
    expect((await again.store.get("issue-100"))?.text).toBe("one more");
    await again.store.close();
  });

  it("keeps the codes' checksum right flush after flush: adds, a record replaced and one removed", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: 8 });
    // Adds only: each flush takes the checksum on from the last one's.
    for (let i = 0; i < 5; i++) {
      await store.add(issueMemory(i + 1, TEXTS[i]!));
      await store.flush();
    }
    // A row before the last flush's end changes, and one goes: the block is checksummed whole.
    await store.add(issueMemory(2, TEXTS[9]!));
    await store.remove("issue-4");
    await store.flush();
    await store.add(issueMemory(6, TEXTS[5]!));
    await store.flush();
    const before = await store.search(TEXTS[9]!, { k: 3 });
    await store.close();

    const { store: reopened, decoded, logged } = await reopen(directory, 8);
    expect(decoded()).toBe(0);
    expect(logged).toEqual([]);
    expect(summary(await reopened.search(TEXTS[9]!, { k: 3 }))).toEqual(summary(before));
    expect(before[0]!.record.id).toBe("issue-2");
    expect((await reopened.list()).map((r) => r.id).sort()).toEqual([
      "issue-1",
      "issue-2",
      "issue-3",
      "issue-5",
      "issue-6",
    ]);
    await reopened.close();
  });

  it("ignores the torn tail of a rows chunk a crash cut short, and writes over it", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: 64 });
    await store.addMany(TEXTS.slice(0, 3).map((text, i) => issueMemory(i + 1, text)));
    await store.close();
    const rows = join(directory, "rows-000001.bin");
    // An append that the crash stopped before the header vouched for it.
    writeFileSync(rows, Buffer.concat([readFileSync(rows), Buffer.from([200, 0, 0, 0, 91, 123])]));

    const { store: reopened, decoded, logged } = await reopen(directory, 64);
    expect(decoded()).toBe(0);
    expect(logged).toEqual([]);
    expect((await reopened.list()).map((r) => r.text)).toEqual(TEXTS.slice(0, 3));
    await reopened.add(issueMemory(4, TEXTS[3]!));
    await reopened.flush();
    expect(segmentSums(directory)).toMatchObject({
      chunks: 2,
      bytes: readFileSync(rows).length,
    });
    await reopened.close();
    const again = await reopen(directory, 64);
    expect(again.decoded()).toBe(0);
    expect((await again.store.list()).map((r) => r.text)).toEqual(TEXTS.slice(0, 4));
    await again.store.close();
  });

  it("reads the vectra files for a snapshot of the earlier format, and writes one in this format", async () => {
    const { directory, before } = await seeded();
    const header = join(directory, "snapshot.json");
    const parsed = JSON.parse(readFileSync(header, "utf8")) as { format: number };
    expect(parsed.format).toBe(2);
    writeFileSync(header, JSON.stringify({ ...parsed, format: 1 }));
    const { store, decoded } = await reopen(directory);
    expect(decoded()).toBe(3);
    expect((await store.list()).map((r) => r.text)).toEqual(TEXTS);
    expect(summary(await store.search("saving a widget crashes", { k: 3 }))).toEqual(
      summary(before),
    );
    await store.close();
    expect((JSON.parse(readFileSync(header, "utf8")) as { format: number }).format).toBe(2);
    vi.restoreAllMocks();
    const again = await reopen(directory);
    expect(again.decoded()).toBe(0);
    expect((await again.store.list()).map((r) => r.text)).toEqual(TEXTS);
    await again.store.close();
  });

  // A vectra file keeps no holes: read back, a segment's survivors are renumbered 0..count-1,
  // and its rows from `count` on, which the checksum takes for zeros, held the old records.
  it.each([
    ["a crash between it and the manifest", (header: string) => unlinkSync(header)],
    ["a damaged header", (header: string) => writeFileSync(header, "{")],
    [
      "the earlier format",
      (header: string) =>
        writeFileSync(
          header,
          JSON.stringify({ ...JSON.parse(readFileSync(header, "utf8")), format: 1 }),
        ),
    ],
  ])(
    "reads the vectra files once after %s, segments with removed records included",
    async (_, spoil) => {
      const directory = makeDataDir();
      const store = await openTestStore(directory, { segmentSize: SEGMENT_SIZE });
      // Segment 1 full (issues 1-4) and not the last; segment 2 holds 5 and 6.
      await store.addMany(TEXTS.slice(0, 6).map((text, i) => issueMemory(i + 1, text)));
      await store.flush();
      await store.remove("issue-2");
      await store.remove("issue-5");
      await store.close();
      spoil(join(directory, "snapshot.json"));
      const kept = ["issue-1", "issue-3", "issue-4", "issue-6"];

      const first = await reopen(directory);
      expect(first.decoded()).toBe(2);
      expect((await first.store.list()).map((r) => r.id).sort()).toEqual(kept);
      const before = await first.store.search(TEXTS[5]!, { k: 3 });
      await first.store.close();
      // Every open after it (an LRU eviction's, a restart's) from the snapshot.
      for (let open = 0; open < 2; open++) {
        vi.restoreAllMocks();
        const again = await reopen(directory);
        expect(again.decoded()).toBe(0);
        expect(again.logged).toEqual([]);
        expect((await again.store.list()).map((r) => r.id).sort()).toEqual(kept);
        expect(summary(await again.store.search(TEXTS[5]!, { k: 3 }))).toEqual(summary(before));
        await again.store.close();
      }
    },
  );

  it("gives back every record's metadata as it was added, from the rows' columns", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: SEGMENT_SIZE });
    const records = [
      issueMemory(1, TEXTS[0]!),
      { ...issueMemory(2, TEXTS[1]!), url: "https://ghe.example/acme/widgets/issues/2" },
      {
        ...issueMemory(3, TEXTS[2]!),
        id: "comment:3.x_y",
        author: undefined,
        state: undefined,
        metadata: { label: "bug", weight: 2, pinned: true },
      },
      {
        id: "note-4",
        kind: "note" as const,
        text: TEXTS[3]!,
        repo: "other/repo",
        createdAt: "1999-12-31T23:59:59.999Z",
      },
      { ...issueMemory(5, TEXTS[4]!), kind: "pull_request" as const, state: "merged" },
    ];
    // One chunk for the first three, appended ones for the rest, in a second segment too.
    await store.addMany(records.slice(0, 3));
    await store.flush();
    for (const record of records.slice(3)) {
      await store.add(record);
      await store.flush();
    }
    const added = await Promise.all(records.map((r) => store.get(r.id)));
    await store.close();
    const { store: reopened, decoded } = await reopen(directory);
    expect(decoded()).toBe(0);
    expect(await Promise.all(records.map((r) => reopened.get(r.id)))).toEqual(added);
    expect(added.map((r) => r?.url)).toEqual([
      "https://github.com/acme/widgets/issues/1",
      "https://ghe.example/acme/widgets/issues/2",
      "https://github.com/acme/widgets/issues/3",
      undefined,
      // Not the URL GitHub gives a pull request: kept as it was given.
      "https://github.com/acme/widgets/issues/5",
    ]);
    expect(added[2]).toMatchObject({
      metadata: { label: "bug", weight: 2, pinned: true },
      author: undefined,
      state: undefined,
    });
    await reopened.close();
  });

  it("fails a flush whose append the rows file refuses, and the next rewrites the segment, losing nothing", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: 64 });
    await store.add(issueMemory(1, TEXTS[0]!));
    await store.flush();
    await store.add(issueMemory(2, TEXTS[1]!));
    // As if another writer had cut the rows file between the flush's start and its append.
    vi.spyOn(MemorySnapshot.prototype, "writeSegment").mockResolvedValueOnce(undefined);
    await expect(store.flush()).rejects.toThrow("changed while a flush was appending");
    vi.restoreAllMocks();
    await store.add(issueMemory(3, TEXTS[2]!));
    await store.close();
    expect(segmentSums(directory)).toMatchObject({ chunks: 1 });
    const { store: reopened, decoded } = await reopen(directory, 64);
    expect(decoded()).toBe(0);
    expect((await reopened.list()).map((r) => r.text)).toEqual(TEXTS.slice(0, 3));
    await reopened.close();
  });

  it("trusts its own appends: a file changed under it between two flushes fails the next, and the one after rewrites the segment, losing nothing", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory, { segmentSize: 64 });
    await store.add(issueMemory(1, TEXTS[0]!));
    await store.flush();
    await store.add(issueMemory(2, TEXTS[1]!));
    await store.flush();
    expect(segmentSums(directory)).toMatchObject({ chunks: 2 });
    // Only another writer could: the data directory's lock keeps them out. The store no longer
    // looks at the files' sizes before each append; the append itself finds them wrong.
    const index = join(directory, "segment-000001.pb");
    writeFileSync(index, Buffer.concat([readFileSync(index), Buffer.from([0])]));
    await store.add(issueMemory(3, TEXTS[2]!));
    await expect(store.flush()).rejects.toThrow("changed while a flush was appending");
    await store.add(issueMemory(4, TEXTS[3]!));
    await store.flush();
    expect(segmentSums(directory)).toMatchObject({ chunks: 1 });
    await store.close();
    const { store: reopened, decoded } = await reopen(directory, 64);
    expect(decoded()).toBe(0);
    expect((await reopened.list()).map((r) => r.text)).toEqual(TEXTS.slice(0, 4));
    await reopened.close();
  });
});

import { readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { describe, expect, it, vi } from "vitest";
import { SEGMENT_CODEC } from "../../src/memory/vectra-files.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";
import { QuantizedMatrix } from "../../src/memory/quantized-matrix.js";
import { claimsFor, readClaimed, ScanHelper } from "../../src/memory/scan-helper.js";

// Past the matrix's threshold for sharing a scan (16,384 rows), with an odd count so that the
// halves differ.
const ROWS = 20_001;
const DIMENSION = 32;

function filled(helper?: ScanHelper): QuantizedMatrix {
  const matrix = new QuantizedMatrix(DIMENSION, ROWS, helper);
  let state = 7;
  const next = () => (state = (state * 1_103_515_245 + 12_345) >>> 0) / 2 ** 32 - 0.5;
  for (let slot = 0; slot < ROWS; slot++)
    matrix.set(slot, `r${slot}`, Array.from({ length: DIMENSION }, next));
  return matrix;
}

const queries = Array.from({ length: 5 }, (_, q) =>
  Array.from({ length: DIMENSION }, (_, i) => Math.sin(q * 31 + i)),
);

/** Candidates of every query: all rows' scores feed the top 50, so both halves count. */
const rank = (matrix: QuantizedMatrix) =>
  queries.map((query) => matrix.candidates(query, 50, () => true));

describe("the scan helper", () => {
  const alone = rank(filled());

  it("scans half the rows on its thread, with the same results as one thread", async () => {
    const helper = new ScanHelper();
    try {
      expect(rank(filled(helper))).toEqual(alone);
      expect(helper.scans).toBe(queries.length);
      expect(helper.broken).toBeUndefined();
      // Once scans pause, the worker collects, letting go of the memories it was sent: one
      // collection for the burst.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(helper.collections).toBe(1);
      // A small matrix is scanned on the caller's thread: waking the helper would cost more.
      const small = new QuantizedMatrix(DIMENSION, 100, helper);
      small.set(0, "a", queries[0]!);
      expect(small.candidates(queries[0]!, 1, () => true)[0]!.id).toBe("a");
      expect(helper.scans).toBe(queries.length);
    } finally {
      await helper.close();
    }
  });

  it("collects as soon as a store lets go of a memory it scanned, without waiting for scans to pause", async () => {
    // No pause in scans is long enough for the worker to collect on its own here.
    const helper = new ScanHelper({ collectAfterMs: 3_600_000 });
    try {
      const directory = makeDataDir();
      const store = await openTestStore(directory, { scanHelper: helper });
      await store.addMany(Array.from({ length: 3 }, (_, i) => issueMemory(i + 1, `issue ${i}`)));
      rank(filled(helper));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(helper.collections).toBe(0);
      // Closing the store releases its memory: one collection, for it and any released with it.
      await store.close();
      await vi.waitFor(() => expect(helper.collections).toBe(1), { timeout: 10_000 });
    } finally {
      await helper.close();
    }
  });

  it("is stopped when it misses its deadline, and the caller scans its half", async () => {
    const helper = new ScanHelper({
      deadlineMs: 100,
      source: `require("node:worker_threads").parentPort.on("message", () => { for (;;); });`,
    });
    try {
      expect(rank(filled(helper))).toEqual(alone);
      expect(helper.broken).toBe("no answer within 100 ms");
      expect(helper.scans).toBe(0);
    } finally {
      await helper.close();
    }
  });

  it("turns itself off when its thread dies, and searches go on", async () => {
    const helper = new ScanHelper({ source: `throw new Error("worker failed to start");` });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(helper.broken).toBe("worker failed to start");
    expect(rank(filled(helper))).toEqual(alone);
    await helper.close();
  });

  it("reads a file of codes into shared memory on its thread, zero past the file's end, with each block's crc32", async () => {
    const helper = new ScanHelper();
    const job = (length: number, block: number, chunk: number) => ({
      length,
      block,
      chunk,
      claims: claimsFor(Math.ceil(length / block)),
    });
    try {
      const file = join(makeDataDir(), "codes");
      const content = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) % 256));
      writeFileSync(file, content);
      const into = new SharedArrayBuffer(16 + 12_000);
      const alone = job(12_000, 4_000, 8_000);
      expect(await helper.load({ ...alone, into, offset: 16, file })).toBe(true);
      const read = new Uint8Array(into, 16, 12_000);
      const expected = Buffer.concat([content, Buffer.alloc(2_000)]);
      expect(Buffer.from(read)).toEqual(expected);
      const blockCrcs = [0, 4_000, 8_000].map((at) => crc32(expected.subarray(at, at + 4_000)));
      expect([...new Uint32Array(alone.claims, 4)]).toEqual(blockCrcs);
      expect(helper.loads).toBe(1);

      // The caller claims chunks of the same load beside it: each is read once, by one of them.
      const handle = await open(file, "r");
      const shared = new SharedArrayBuffer(12_000);
      const both = job(12_000, 1_000, 1_000);
      const reads: number[] = [];
      const [helped] = await Promise.all([
        helper.load({ ...both, into: shared, offset: 0, file }),
        readClaimed(both, new Uint8Array(shared), (bytes, at, length) => {
          reads.push(at);
          return handle.read(bytes, at, length, at);
        }),
      ]);
      await handle.close();
      expect(helped).toBe(true);
      expect(Buffer.from(new Uint8Array(shared))).toEqual(expected);
      expect([...new Uint32Array(both.claims, 4)]).toEqual(
        Array.from({ length: 12 }, (_, b) => crc32(expected.subarray(b * 1_000, (b + 1) * 1_000))),
      );
      // 12 chunks claimed, then one claim past the end by each reader.
      expect(new Int32Array(both.claims, 0, 1)[0]).toBe(14);
      expect(reads.every((at) => at % 1_000 === 0)).toBe(true);

      // A file it cannot read: false, and the caller reads it itself.
      expect(await helper.load({ ...job(100, 50, 50), into, offset: 0, file: `${file}.x` })).toBe(
        false,
      );
      expect(helper.broken).toBeUndefined();
    } finally {
      await helper.close();
    }
    expect(
      await helper.load({ ...job(8, 8, 8), into: new SharedArrayBuffer(8), offset: 0, file: "x" }),
    ).toBe(false);
  });

  it("opens a store's snapshot whole when the helper stops in the middle of reading the codes", async () => {
    const directory = makeDataDir();
    const seed = await openTestStore(directory, { segmentSize: 4 });
    await seed.addMany(
      Array.from({ length: 14 }, (_, i) =>
        issueMemory(i + 1, `issue number ${i + 1} about widgets`),
      ),
    );
    const before = await seed.search("widgets 2", { k: 5 });
    await seed.close();
    // It claims every chunk, reads none, and dies.
    const helper = new ScanHelper({
      source: `require("node:worker_threads").parentPort.on("message", ({ claims }) => {
        Atomics.store(new Int32Array(claims, 0, 1), 0, 1_000_000);
        process.exit(3);
      });`,
    });
    // Started, so that it claims them before this thread has loaded the rows.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const decode = vi.spyOn(SEGMENT_CODEC, "deserializeIndex");
    try {
      const store = await openTestStore(directory, { segmentSize: 4, scanHelper: helper });
      expect(helper.broken).toBe("exited with code 3");
      expect(decode).not.toHaveBeenCalled();
      expect(await store.search("widgets 2", { k: 5 })).toEqual(before);
      await store.close();
    } finally {
      vi.restoreAllMocks();
      await helper.close();
    }
  });

  it("opens a store's snapshot with the helper reading the codes, with the same results", async () => {
    const directory = makeDataDir();
    const seed = await openTestStore(directory, { segmentSize: 4 });
    await seed.addMany(
      Array.from({ length: 14 }, (_, i) =>
        issueMemory(i + 1, `issue number ${i + 1} about widgets ${i % 3}`),
      ),
    );
    const before = await seed.search("widgets 2", { k: 5 });
    await seed.close();
    const helper = new ScanHelper();
    try {
      const store = await openTestStore(directory, { segmentSize: 4, scanHelper: helper });
      expect(helper.loads).toBe(1);
      expect(await store.search("widgets 2", { k: 5 })).toEqual(before);
      await store.close();
      // Damage the helper finds is the caller's to act on: the vectra files are read.
      const codes = join(directory, "vectors.i8");
      const bytes = readFileSync(codes);
      bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff;
      writeFileSync(codes, bytes);
      const decode = vi.spyOn(SEGMENT_CODEC, "deserializeIndex");
      const reopened = await openTestStore(directory, { segmentSize: 4, scanHelper: helper });
      expect(decode).toHaveBeenCalled();
      expect(await reopened.search("widgets 2", { k: 5 })).toEqual(before);
      await reopened.close();
    } finally {
      vi.restoreAllMocks();
      await helper.close();
    }
  });
});

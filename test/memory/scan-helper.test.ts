import { describe, expect, it } from "vitest";
import { QuantizedMatrix } from "../../src/memory/quantized-matrix.js";
import { ScanHelper } from "../../src/memory/scan-helper.js";

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
});

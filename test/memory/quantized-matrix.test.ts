import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DOT_KERNEL_WASM } from "../../src/memory/dot-kernel.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { unitVector } from "../../src/memory/hybrid-search.js";
import { QuantizedMatrix, quantize } from "../../src/memory/quantized-matrix.js";
// @ts-expect-error: a plain JavaScript build script, without type declarations.
import { compileDotKernel, renderDotKernel } from "../../scripts/build-dot-kernel.js";
import { seededRandom } from "../helpers/seeded-random.js";

const ROOT = new URL("../../", import.meta.url);

function randomUnit(next: () => number, dimension: number): Float32Array {
  const vector = new Float32Array(dimension);
  for (let i = 0; i < dimension; i++) vector[i] = next() - 0.5;
  const norm = Math.sqrt(cosine(vector, vector));
  for (let i = 0; i < dimension; i++) vector[i] = vector[i]! / norm;
  return vector;
}

/** The exact float32 cosine of unit vectors. Typed for Float32Array only: a monomorphic loop. */
function cosine(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

function integerDot(a: Int8Array, b: Int8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/**
 * Recall@k of search with rescoring, as the store does it: the matrix's top `pool` candidates
 * rescored with exact float32 cosines, best k kept, against a brute-force exact top k. Ties
 * count: a hit scoring as well as the exact k-th is right, whichever of equal vectors it is.
 */
function recallAfterRescoring(
  vectors: Float32Array[],
  queries: Float32Array[],
  k: number,
  pool: number,
): number {
  const matrix = new QuantizedMatrix(vectors[0]!.length);
  vectors.forEach((vector, slot) => matrix.set(slot, String(slot), vector));
  let found = 0;
  for (const query of queries) {
    const exact = vectors.map((vector) => cosine(vector, query)).sort((a, b) => b - a);
    const kth = exact[k - 1]!;
    const rescored = matrix
      .candidates(query, pool, () => true)
      .map(({ slot }) => cosine(vectors[slot]!, query))
      .sort((a, b) => b - a)
      .slice(0, k);
    found += rescored.filter((score) => score >= kth - 1e-6).length;
  }
  return found / (queries.length * k);
}

function jsonFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return jsonFiles(path);
    return entry.name.endsWith(".json") ? [path] : [];
  });
}

/**
 * A few thousand distinct, realistic texts: issue titles and bodies from the fixtures (and the
 * hostile corpus's texts), and the README, each cut into sentences, pairs of neighbouring
 * sentences and whole paragraphs, so that texts overlap as issues of one repository do.
 */
function loadTexts(): string[] {
  const documents: string[] = [];
  const collect = (value: unknown, key?: string): void => {
    if (typeof value === "string") {
      if (key === "title" || key === "body" || key === "text") documents.push(value);
    } else if (Array.isArray(value)) {
      for (const item of value) collect(item, key);
    } else if (value && typeof value === "object") {
      for (const [name, item] of Object.entries(value)) collect(item, name);
    }
  };
  for (const file of jsonFiles(new URL("fixtures", ROOT).pathname)) {
    collect(JSON.parse(readFileSync(file, "utf8")));
  }
  documents.push(readFileSync(new URL("README.md", ROOT), "utf8"));
  const texts = new Set<string>();
  for (const document of documents) {
    for (const paragraph of document.split(/\n\s*\n/)) {
      const sentences = paragraph
        .replace(/\s+/g, " ")
        .split(/(?<=[.!?:;])\s+/)
        .filter((sentence) => sentence.split(" ").length >= 3);
      sentences.forEach((sentence, i) => {
        texts.add(sentence);
        if (i > 0) texts.add(`${sentences[i - 1]} ${sentence}`);
      });
      if (sentences.length > 2) texts.add(sentences.join(" "));
    }
  }
  return [...texts];
}

describe("the int8 dot kernel", () => {
  it("computes the integer dot product a plain loop does", () => {
    const next = seededRandom(1);
    const module = new WebAssembly.Module(Buffer.from(DOT_KERNEL_WASM, "base64"));
    const memory = new WebAssembly.Memory({ initial: 17, maximum: 65_536, shared: true });
    const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as {
      scores(query: number, rows: number, count: number, stride: number, out: number): void;
    };
    // The kernel takes rows six at a time and the rest one by one: counts below, at and past
    // multiples of six, and strides of one, three and 96 steps of 16 bytes.
    for (const stride of [16, 48, 1536]) {
      for (const count of [1, 5, 6, 7, 12, 33]) {
        const bytes = new Int8Array(memory.buffer);
        const codes = bytes.subarray(0, (count + 1) * stride);
        for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(next() * 256) - 128;
        // The extremes too: -128 * -128 is the largest product.
        if (count === 33) codes.fill(-128, 0, stride).fill(-128, 32 * stride, 33 * stride);
        const out = (count + 1) * stride;
        kernel.scores(0, stride, count, stride, out);
        const query = codes.subarray(0, stride);
        const expected = Array.from({ length: count }, (_, r) =>
          integerDot(query, codes.subarray((r + 1) * stride, (r + 2) * stride)),
        );
        expect(Array.from(new Int32Array(memory.buffer, out, count))).toEqual(expected);
      }
    }
  });

  it("runs the kernel compiled from dot-kernel.wat, byte for byte", async () => {
    const committed = readFileSync(new URL("src/memory/dot-kernel.ts", ROOT), "utf8");
    expect(committed).toBe(renderDotKernel(await compileDotKernel()));
  });
});

describe("quantize", () => {
  it("maps the largest magnitude to ±127 and the rest in proportion", () => {
    const out = new Int8Array(4);
    const scale = quantize([0.5, -1, 0.25, 0], out);
    expect(scale).toBeCloseTo(1 / 127, 10);
    expect(Array.from(out)).toEqual([64, -127, 32, 0]);
    expect(quantize([0, 0, 0, 0], out)).toBe(0);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
    expect(() => quantize([1, Number.NaN, 0, 0], out)).toThrow("must be finite");
  });
});

describe("the quantized matrix", () => {
  it("pads rows to 16 bytes and names slots, with holes", () => {
    const matrix = new QuantizedMatrix(37, 4);
    expect(matrix.stride).toBe(48);
    expect([matrix.size, matrix.extent, matrix.capacity]).toEqual([0, 0, 4]);
    const next = seededRandom(2);
    matrix.set(0, "a", randomUnit(next, 37));
    matrix.set(5, "b", randomUnit(next, 37));
    expect([matrix.size, matrix.extent]).toEqual([2, 6]);
    expect(matrix.capacity).toBeGreaterThanOrEqual(6);
    expect([0, 1, 5, 6, 100].map((slot) => matrix.idAt(slot))).toEqual([
      "a",
      undefined,
      "b",
      undefined,
      undefined,
    ]);
    expect(matrix.approximate(1)).toBeUndefined();

    matrix.clear(5);
    matrix.clear(1);
    matrix.clear(1_000);
    // The extent stays: slot 5 is a hole now, as a snapshot file would keep it.
    expect([matrix.size, matrix.extent, matrix.idAt(5), matrix.scaleAt(5)]).toEqual([
      1,
      6,
      undefined,
      0,
    ]);
    expect(Array.from(matrix.codes(5, 1))).toEqual(new Array(48).fill(0));
    expect(() => matrix.set(1, "c", [1, 2])).toThrow("vector for c has 2 dimensions, not 37");
    expect(() => matrix.set(-1, "c", randomUnit(next, 37))).toThrow(RangeError);
    expect(() => matrix.candidates([1], 3, () => true)).toThrow("has 1 dimensions, not 37");
  });

  it("stores unit vectors, replacing a slot's vector and id", () => {
    const matrix = new QuantizedMatrix(3);
    matrix.set(0, "a", [30, 0, 40]);
    expect(matrix.scaleAt(0)).toBeCloseTo(0.8 / 127, 8);
    expect(Array.from(matrix.approximate(0)!)).toEqual([
      expect.closeTo(0.6, 2),
      0,
      expect.closeTo(0.8, 6),
    ]);
    // Values whose squares overflow a double still make a unit vector.
    matrix.set(0, "huge", [3e200, 0, 4e200]);
    expect(matrix.scaleAt(0)).toBeCloseTo(0.8 / 127, 8);
    matrix.set(0, "b", [0, -2, 0]);
    expect([matrix.size, matrix.idAt(0)]).toEqual([1, "b"]);
    expect(Array.from(matrix.approximate(0)!)).toEqual([0, expect.closeTo(-1, 6), 0]);
    expect(matrix.candidates([0, -5, 0], 3, () => true)).toEqual([
      { slot: 0, id: "b", score: expect.closeTo(1, 6) },
    ]);
    matrix.set(1, "zero", [0, 0, 0]);
    expect(matrix.candidates([0, 1, 0], 2, () => true)).toEqual([
      { slot: 1, id: "zero", score: 0 },
      { slot: 0, id: "b", score: expect.closeTo(-1, 6) },
    ]);
    expect(matrix.candidates([0, 1, 0], 0, () => true)).toEqual([]);
  });

  it("finds candidates among non-empty slots that the filter accepts, asking it little", () => {
    const matrix = new QuantizedMatrix(2, 4);
    // Slot s lies at an angle of s / 10 from the query, so scores fall with the slot.
    for (let slot = 0; slot < 12; slot++) {
      matrix.set(slot, `v${slot}`, [Math.cos(slot / 10), Math.sin(slot / 10)]);
    }
    matrix.clear(1);
    const asked: string[] = [];
    const found = matrix.candidates([1, 0], 3, (id) => {
      asked.push(id);
      return id !== "v2";
    });
    expect(found.map((hit) => hit.id)).toEqual(["v0", "v3", "v4"]);
    expect(found[1]!.score).toBeCloseTo(Math.cos(0.3), 2);
    // Rows come best first here: once the top 3 are full, nothing else gets in to be asked.
    expect(asked).toEqual(["v0", "v2", "v3", "v4"]);
  });

  it("keeps earlier rows as it grows", () => {
    const next = seededRandom(3);
    const matrix = new QuantizedMatrix(40, 8);
    const vectors = Array.from({ length: 1_000 }, () => randomUnit(next, 40));
    // Each row as it was set, before the doublings that followed.
    const asSet = vectors.map((vector, slot) => {
      matrix.set(slot, `v${slot}`, vector);
      return matrix.approximate(slot);
    });
    expect([matrix.size, matrix.extent]).toEqual([1_000, 1_000]);
    expect(matrix.capacity).toBe(1_024);
    vectors.forEach((_, slot) => expect(matrix.approximate(slot)).toEqual(asSet[slot]));
    vectors.slice(0, 10).forEach((query, slot) => {
      const [best] = matrix.candidates(query, 1, () => true);
      expect(best).toEqual({ slot, id: `v${slot}`, score: expect.closeTo(1, 2) });
    });
  });

  it("quantizes a float32 vector with the kernel's SIMD loops as the JavaScript loops do", () => {
    const next = seededRandom(9);
    const matrix = new QuantizedMatrix(1536, 4);
    const codes = new Int8Array(1536);
    for (let slot = 0; slot < 200; slot++) {
      const vector = Float32Array.from(randomUnit(next, 1536));
      matrix.set(slot, `v${slot}`, vector);
      const scale = quantize(vector, codes);
      expect(matrix.scaleAt(slot)).toBeCloseTo(scale, 6);
      // Rounded in float32, ties to even: a code may differ by one where JavaScript's double
      // lands on the other side of a half.
      const approximate = matrix.approximate(slot)!;
      let differ = 0;
      for (let i = 0; i < 1536; i++) {
        const code = Math.round(approximate[i]! / matrix.scaleAt(slot));
        expect(Math.abs(code - codes[i]!)).toBeLessThanOrEqual(1);
        if (code !== codes[i]) differ++;
      }
      expect(differ).toBeLessThan(4);
    }
    // Zero, and NaN, as the JavaScript loops treat them.
    matrix.set(0, "zero", new Float32Array(1536));
    expect(matrix.scaleAt(0)).toBe(0);
    expect(Array.from(matrix.codes(0, 1)).every((code) => code === 0)).toBe(true);
    const bad = new Float32Array(1536);
    bad[700] = Number.NaN;
    expect(() => matrix.set(1, "bad", bad)).toThrow("must be finite");
    // Squares past float32's range fall back to the JavaScript loops.
    const huge = new Float32Array(1536);
    huge[0] = 3e37;
    huge[2] = 4e37;
    matrix.set(2, "huge", huge);
    expect(matrix.scaleAt(2)).toBeCloseTo(0.8 / 127, 8);
  });

  it("reads and writes a slot's codes as a snapshot file holds them", () => {
    const next = seededRandom(4);
    const source = new QuantizedMatrix(100);
    for (const slot of [0, 1, 2, 4, 6]) source.set(slot, `v${slot}`, randomUnit(next, 100));
    const file = Buffer.from(source.codes(0, source.extent));
    expect(file.length).toBe(7 * 112);

    const copy = new QuantizedMatrix(100, 1);
    copy.codes(0, 7).set(file);
    for (const slot of [0, 1, 2, 4, 6]) copy.assign(slot, `v${slot}`, source.scaleAt(slot));
    expect([copy.size, copy.extent]).toEqual([5, 7]);
    for (let i = 0; i < 5; i++) {
      const query = randomUnit(next, 100);
      expect(copy.candidates(query, 3, () => true)).toEqual(
        source.candidates(query, 3, () => true),
      );
    }
    expect(() => copy.assign(100, "x", 0.01)).toThrow("write them through codes() first");
  });

  it("counts the memory its rows take, and refuses more than 32-bit WebAssembly memory holds", () => {
    const matrix = new QuantizedMatrix(1_536, 1_000);
    const next = seededRandom(8);
    const empty = matrix.bytes;
    expect(empty).toBeLessThan(20_000);
    for (let slot = 0; slot < 1_000; slot++) matrix.set(slot, `v${slot}`, randomUnit(next, 1_536));
    expect(matrix.bytes - empty).toBeGreaterThan(1_000 * (1_536 + 8));
    expect(matrix.bytes).toBeLessThan(1_700_000);
    // Room reserved and not yet written takes no RAM, and is not counted.
    const filled = matrix.bytes;
    matrix.reserve(4_000);
    expect(matrix.capacity).toBe(4_000);
    expect(matrix.bytes).toBe(filled);
    matrix.set(1_000, "v1000", randomUnit(next, 1_536));
    expect(matrix.bytes - filled).toBeGreaterThan(1_536);
    expect(matrix.bytes - filled).toBeLessThan(2 * 1_536);
    expect(() => matrix.reserve(3_000_000)).toThrow(
      "one memory index cannot hold 3000000 vectors of 1536 dimensions: 4406 MiB is past the 4 GiB",
    );
    expect(matrix.capacity).toBe(4_000);
  });

  it("ranks 5,000 random vectors so that rescoring 20 candidates finds the exact top 5", () => {
    const next = seededRandom(5);
    const vectors = Array.from({ length: 5_000 }, () => randomUnit(next, 1_536));
    const queries = Array.from({ length: 50 }, () => randomUnit(next, 1_536));
    expect(recallAfterRescoring(vectors, queries, 5, 20)).toBeGreaterThanOrEqual(0.99);
  });

  it("ranks texts embedded by the local embedder so that rescoring finds the exact top 5", async () => {
    const texts = loadTexts();
    expect(texts.length).toBeGreaterThan(2_000);
    const embedder = createLocalEmbedder();
    const vectors = await embedder.embed(texts);
    // Queries as people write them: a text with every third word left out.
    const queries = await embedder.embed(
      texts
        .filter((_, i) => i % 40 === 0)
        .map((text) =>
          text
            .split(" ")
            .filter((_, i) => i % 3 !== 1)
            .join(" "),
        ),
    );
    expect(queries.length).toBeGreaterThanOrEqual(50);
    expect(recallAfterRescoring(vectors, queries, 5, 20)).toBeGreaterThanOrEqual(0.99);
  });
});

describe("unitVector", () => {
  it("scales to length 1 into a new array, whatever the input's type", () => {
    const input = Float32Array.of(30, 0, 40);
    const unit = unitVector(input);
    expect(Array.from(unit)).toEqual([expect.closeTo(0.6, 7), 0, expect.closeTo(0.8, 7)]);
    expect(Array.from(input)).toEqual([30, 0, 40]);
    expect(unitVector([30, 0, 40])).toEqual(unit);
    expect(Array.from(unitVector([0, 0, 0]))).toEqual([0, 0, 0]);
  });

  it("copies a unit vector as it is, and the copy is the store's own", () => {
    const input = Float32Array.of(0.6, 0, 0.8);
    const unit = unitVector(input);
    expect(unit).toEqual(input);
    input[0] = 1;
    expect(unit[0]).toBe(Float32Array.of(0.6)[0]);
  });
});

describe("the quantized matrix's edge cases", () => {
  it("normalises a tiny float32 vector to unit length, as it does the same vector as a number[]", () => {
    // Squared in float32 (the kernel's path), values about 1e-24 underflow to a norm of 0.
    const dimension = 32;
    const values = Array.from({ length: dimension }, (_, i) => (i % 3 === 0 ? 1e-24 : -5e-25));
    const asArray = new QuantizedMatrix(dimension);
    asArray.set(0, "a", values);
    const asFloat32 = new QuantizedMatrix(dimension);
    asFloat32.set(0, "a", Float32Array.from(values));
    expect(Number.isFinite(asFloat32.scaleAt(0))).toBe(true);
    expect(asFloat32.scaleAt(0)).toBeCloseTo(asArray.scaleAt(0), 6);
    const query = Float32Array.from(values);
    const [fromFloat32] = asFloat32.candidates(query, 1, () => true);
    const [fromArray] = asArray.candidates(query, 1, () => true);
    expect(fromFloat32!.score).toBeCloseTo(fromArray!.score, 6);
    // What int8 codes of this vector give (-63.5 rounds to -63): near 1.
    expect(fromFloat32!.score).toBeCloseTo(1, 1);
  });

  it("orders equal scores the same way whatever unrelated rows the matrix holds", () => {
    const d = 32;
    const twin = Array.from({ length: d }, (_, i) => Math.cos(i));
    const orders = new Set<string>();
    for (let others = 0; others < 12; others++) {
      const next = seededRandom(others);
      const matrix = new QuantizedMatrix(d);
      matrix.set(0, "a", twin);
      matrix.set(1, "b", twin);
      for (let s = 2; s < 2 + others; s++)
        matrix.set(
          s,
          `o${s}`,
          Array.from({ length: d }, () => next() - 0.5),
        );
      const order = matrix
        .candidates(twin, 5, () => true)
        .filter((h) => h.id === "a" || h.id === "b")
        .map((h) => h.id);
      orders.add(order.join(","));
    }
    expect([...orders]).toEqual(["a,b"]);
  });
});

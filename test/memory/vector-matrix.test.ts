import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { VectorMatrix } from "../../src/memory/vector-matrix.js";
// @ts-expect-error: a plain JavaScript build script, without type declarations.
import { compileDotKernel, renderDotKernel } from "../../scripts/build-dot-kernel.js";

/** A seeded generator, so a failure can be replayed. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31 - 0.5;
  };
}

function naiveTopK(
  vectors: Map<string, number[]>,
  query: number[],
  k: number,
  accept: (id: string) => boolean,
) {
  const unit = (v: number[]) => {
    const norm = Math.hypot(...v);
    return v.map((x) => (norm > 0 ? x / norm : 0));
  };
  const q = unit(query);
  return [...vectors]
    .filter(([id]) => accept(id))
    .map(([id, v]) => ({ id, score: unit(v).reduce((sum, x, i) => sum + x * q[i]!, 0) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

describe("the vector matrix", () => {
  it("finds what a plain scan finds, through growth, replacements and deletions", () => {
    const next = random(7);
    // 37 is no multiple of the kernel's 16 lanes: rows are padded.
    const dimension = 37;
    const matrix = new VectorMatrix(dimension, 4);
    const vectors = new Map<string, number[]>();
    const vector = () => Array.from({ length: dimension }, next);
    for (let i = 0; i < 500; i++) {
      const v = vector();
      vectors.set(`v${i}`, v);
      matrix.set(`v${i}`, v);
    }
    for (let i = 0; i < 500; i += 3) {
      vectors.delete(`v${i}`);
      expect(matrix.delete(`v${i}`)).toBe(true);
    }
    for (let i = 1; i < 500; i += 7) {
      const v = vector();
      vectors.set(`v${i}`, v);
      matrix.set(`v${i}`, v);
    }
    expect(matrix.size).toBe(vectors.size);

    for (let round = 0; round < 20; round++) {
      const query = vector();
      const accept = (id: string) => Number(id.slice(1)) % 5 !== round % 5;
      const found = matrix.topK(query, 8, accept);
      const expected = naiveTopK(vectors, query, 8, accept);
      expect(found.map((hit) => hit.id)).toEqual(expected.map((hit) => hit.id));
      found.forEach((hit, i) => expect(hit.score).toBeCloseTo(expected[i]!.score, 5));
    }
  });

  it("keeps vectors as unit vectors, and a zero vector scores nothing", () => {
    const matrix = new VectorMatrix(3);
    matrix.set("a", [3, 0, 4]);
    matrix.set("zero", [0, 0, 0]);
    expect(Array.from(matrix.get("a")!)).toEqual([0.6000000238418579, 0, 0.800000011920929]);
    expect(matrix.topK([3, 0, 4], 2, () => true)).toEqual([
      { id: "a", score: expect.closeTo(1, 6) },
      { id: "zero", score: 0 },
    ]);
    expect(matrix.topK([1, 1, 1], 0, () => true)).toEqual([]);
    expect(() => matrix.set("b", [1, 2])).toThrow("vector for b has 2 dimensions, not 3");
  });

  it("runs the kernel compiled from dot-kernel.wat, byte for byte", async () => {
    const committed = readFileSync(
      new URL("../../src/memory/dot-kernel.ts", import.meta.url),
      "utf8",
    );
    expect(committed).toBe(renderDotKernel(await compileDotKernel()));
  });
});

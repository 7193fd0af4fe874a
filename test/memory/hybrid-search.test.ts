import { describe, expect, it } from "vitest";
import { asUnitVector, unitVector } from "../../src/memory/hybrid-search.js";

describe("asUnitVector", () => {
  it("keeps a Float32Array of unit length as it is, and scales any other vector into a new one", () => {
    const unit = new Float32Array([0.6, 0.8, 0]);
    expect(asUnitVector(unit)).toBe(unit);
    // unitVector copies it: a caller that may write into what it gets.
    expect(unitVector(unit)).not.toBe(unit);
    expect(Array.from(unitVector(unit))).toEqual(Array.from(unit));

    const long = new Float32Array([3, 4, 0]);
    const scaled = asUnitVector(long);
    expect(scaled).not.toBe(long);
    expect(Array.from(long)).toEqual([3, 4, 0]);
    expect(Array.from(scaled)).toEqual([0.6000000238418579, 0.800000011920929, 0]);
    expect(Array.from(asUnitVector([0, 2, 0]))).toEqual([0, 1, 0]);
  });
});

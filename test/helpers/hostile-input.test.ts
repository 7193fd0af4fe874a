import { describe, expect, it } from "vitest";
import { expectLinearTime } from "./hostile-input.js";

/** Quadratic in the longest run of `-`, linear otherwise: a bug only a run input shows. */
function quadraticOnDashRuns(text: string): number {
  let longest = 0;
  let current = 0;
  for (let i = 0; i < text.length; i++) {
    current = text.charCodeAt(i) === 45 ? current + 1 : 0;
    if (current > longest) longest = current;
  }
  let x = 0;
  for (let i = 0; i < longest; i++) for (let j = 0; j < longest; j++) x ^= i * j;
  return x;
}

describe("expectLinearTime", () => {
  it("keeps a flagged run input flagged when it measures it again, built as the first time", async () => {
    // Re-measured as a fragment, `a---b` had been the text "a---b" repeated, linear here: the
    // quadratic function passed on the retry.
    await expect(
      expectLinearTime(quadraticOnDashRuns, { fragments: ["x"], runs: ["-"], length: 2_048 }),
    ).rejects.toThrow(/to deeply equal \[\]/);
  }, 60_000);
});

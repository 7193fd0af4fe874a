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
    // quadratic function passed on the retry. Compiled first at the length measured (11 ms, and
    // 180 ms at 4n): measured cold in a fresh process, its first run at n was slow enough that
    // it grew only about 5× to 4n, and passed as linear once in three runs.
    for (let run = 0; run < 3; run++) quadraticOnDashRuns(`a${"-".repeat(4_094)}b`);
    await expect(
      expectLinearTime(quadraticOnDashRuns, { fragments: ["x"], runs: ["-"], length: 4_096 }),
    ).rejects.toThrow(/to deeply equal \[\]/);
  }, 60_000);
});

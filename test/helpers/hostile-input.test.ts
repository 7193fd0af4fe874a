import { describe, expect, it } from "vitest";
import { expectLinearTime } from "./hostile-input.js";

/**
 * Quadratic in the longest run of `-`, instant otherwise: a bug only a run input shows. It waits
 * for its deadline rather than computing, so its time is (run ÷ 512)² ms whatever the JIT does,
 * and a busy machine can only lengthen a run by the stall that ends past the deadline.
 */
function quadraticOnDashRuns(text: string): number {
  let longest = 0;
  let current = 0;
  for (let i = 0; i < text.length; i++) {
    current = text.charCodeAt(i) === 45 ? current + 1 : 0;
    if (current > longest) longest = current;
  }
  const deadline = performance.now() + (longest / 512) ** 2;
  let spins = 0;
  while (performance.now() < deadline) spins++;
  return spins;
}

describe("expectLinearTime", () => {
  it("keeps a flagged run input flagged when it measures it again, built as the first time", async () => {
    // Re-measured as a fragment, `a---b` had been the text "a---b" repeated, linear here: the
    // quadratic function passed on the retry. A computed quadratic loop (11 ms at n) measured
    // cold in a fresh process under a loaded CI run grew under 10× and passed as linear; this
    // one takes 16 ms at n and 256 ms at 4n by the clock.
    await expect(
      expectLinearTime(quadraticOnDashRuns, { fragments: ["x"], runs: ["-"], length: 2_048 }),
    ).rejects.toThrow(/to deeply equal \[\]/);
  }, 60_000);
});

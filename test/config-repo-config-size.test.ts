import { describe, expect, it } from "vitest";
import { parseRepoConfig } from "../src/parse-repo-config.js";

/** A config with `count` keys Talos does not know, and one it does. */
const withUnknownKeys = (count: number) => ({
  ...Object.fromEntries(Array.from({ length: count }, (_, i) => [`key${i}`, i])),
  ask: { enabled: false },
});

/** The fastest of three reads, in ms. */
function fastestRead(raw: unknown): number {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    parseRepoConfig(raw);
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

describe("a large .github/talos.yml", () => {
  it("with thousands of unknown keys is read in time linear in them, each reported", () => {
    const { config, errors } = parseRepoConfig(withUnknownKeys(8_000));
    expect(errors).toHaveLength(8_000);
    expect(errors[0]).toBe(".github/talos.yml: `key0` is not a known setting (ignored)");
    expect(config.ask.enabled).toBe(false);
    // Each key used to copy the whole mapping: quadratic, 17 s for 8,000 keys (about 80 KB).
    // Linear work grows 4× from n to 4n keys, quadratic 16×; the absolute figure is not asserted.
    const ms = fastestRead(withUnknownKeys(2_000));
    const msAt4n = fastestRead(withUnknownKeys(8_000));
    expect(msAt4n / Math.max(ms, 1)).toBeLessThan(10);
  });
});

import { describe, expect, it } from "vitest";
import { parseRepoConfig, restrictiveConfig } from "../src/parse-repo-config.js";

/** A config with `count` keys Talos does not know, and one it does. */
const withUnknownKeys = (count: number) => ({
  ...Object.fromEntries(Array.from({ length: count }, (_, i) => [`key${i}`, i])),
  ask: { enabled: false },
});

/**
 * The fastest of five runs of 20 reads, in ms: one read of 100 keys takes about a millisecond, of
 * the order of a busy machine's preemptions, which made a single read's ratio noise (10.4 once).
 */
function fastestRead(raw: unknown): number {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run++) {
    const started = performance.now();
    for (let read = 0; read < 20; read++) parseRepoConfig(raw);
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

describe("a large .github/talos.yml", () => {
  it("with hundreds of unknown keys reports each, and is read in time linear in them", () => {
    const { config, errors } = parseRepoConfig(withUnknownKeys(400));
    expect(errors).toHaveLength(400);
    expect(errors[0]).toBe(".github/talos.yml: `key0` is not a known setting (ignored)");
    expect(config.ask.enabled).toBe(false);
    // Each key used to copy the whole mapping: quadratic, 17 s for 8,000 keys (about 80 KB).
    // Linear work grows 4× from n to 4n keys, quadratic 16×; the absolute figure is not asserted.
    const ms = fastestRead(withUnknownKeys(100));
    const msAt4n = fastestRead(withUnknownKeys(400));
    expect(msAt4n / Math.max(ms, 1)).toBeLessThan(10);
  });

  it("with more keys than it reads gets the most restrictive settings, in one error", () => {
    for (const raw of [withUnknownKeys(8_000), { ask: withUnknownKeys(600) }]) {
      const { config, errors } = parseRepoConfig(raw);
      expect(config).toEqual(restrictiveConfig());
      expect(errors).toEqual([
        expect.stringMatching(
          /^\.github\/talos\.yml: has more than 500 keys \(Talos has \d+ settings\); using the most restrictive settings$/,
        ),
      ]);
    }
  });
});

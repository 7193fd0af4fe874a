import { describe, expect, it } from "vitest";
import { hasCommandCandidate, parseCommand } from "../../src/commands/parse-command.js";

/**
 * `@<slug>` is compared after `toLowerCase()`, which folds some non-ASCII letters into ASCII
 * ones: KELVIN SIGN (U+212A) into `k`, and LATIN CAPITAL I WITH DOT (U+0130) into `i` + U+0307.
 * GitHub does not read either as a mention of the app; Talos takes them as its own prefix.
 */
describe("@<app-slug> lookalikes", () => {
  it("a Kelvin sign (U+212A) in place of `k` is not the app's slug", () => {
    const body = "@talos-\u212Ait help"; // renders as "@talos-Kit", no mention of @talos-kit
    expect(hasCommandCandidate(body, { slug: "talos-kit" })).toBe(false);
    expect(parseCommand(body, { slug: "talos-kit" })).toBeNull();
  });

  it("a dotted capital I (U+0130) in place of `i` is not the app's slug, whatever else the comment holds", () => {
    // Alone, the cheap scan rejects it (the fold adds U+0307 after the `i`); with any other
    // candidate line (here one in a code block), the line scan's prefix check accepts it.
    const body = "```\n/talos x\n```\n@talos-c\u0130 help";
    expect(hasCommandCandidate("@talos-c\u0130 help", { slug: "talos-ci" })).toBe(false);
    expect(parseCommand(body, { slug: "talos-ci" })).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { yamlNestingDepth } from "../../src/github/yaml-nesting-depth.js";

describe("yamlNestingDepth", () => {
  it("counts a config's levels: block, indicators and flow, comments and blank lines aside", () => {
    const config = [
      "# a comment [[[[",
      "triage:",
      "  enabled: true",
      "",
      "  labels: [bug, {name: docs}]",
      "commands:",
      "  allowed_associations:",
      "    - OWNER",
      "    - - nested",
      "review:",
      "  max_tokens: 1000",
    ].join("\n");
    // `commands` > `allowed_associations` > a sequence in a sequence: 4, counted as 5 (the
    // sequence's indent and its dash each count: it errs upward).
    expect(yamlNestingDepth(config)).toBe(5);
    expect(yamlNestingDepth("")).toBe(0);
    expect(yamlNestingDepth("a: 1\r\nb: 2\r\n")).toBe(1);
  });

  it("errs upward, never under: brackets in quotes count, and do not stay open past their close", () => {
    expect(yamlNestingDepth('a: "[x"\nb: 1\n')).toBe(2);
    expect(yamlNestingDepth("a: [[1], [2]]\nb: 1\n")).toBe(3);
    expect(yamlNestingDepth("a: ]]]\nb: [1]\n")).toBe(2);
  });

  it("gives a long text's depth, not its length", () => {
    const stairs = (n: number) =>
      Array.from({ length: n }, (_, i) => `${" ".repeat(i % 50)}k${i}: [1, 2]`).join("\n");
    expect(yamlNestingDepth(stairs(16_000))).toBe(51);
  });
});

import { describe, expect, it } from "vitest";
import { parse } from "yaml";
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

  it("counts no bracket in a quoted scalar, a comment or a block scalar", () => {
    // Each had stayed open for the rest of the file: 70 labels like `"^\\[wip"`, or comments
    // like `# see [docs`, refused a valid config as too deep (found by a review).
    const labels = Array.from({ length: 70 }, (_, i) => `    - "^\\\\[wip${i}"`).join("\n");
    expect(yamlNestingDepth(`pull_requests:\n  ignore_title:\n${labels}\n`)).toBe(4);
    const comments = Array.from({ length: 70 }, (_, i) => `label${i}: true  # see [docs`);
    expect(yamlNestingDepth(comments.join("\n"))).toBe(1);
    const prose = Array.from({ length: 70 }, (_, i) => `  Step ${i}: open a [ or a {`).join("\n");
    expect(yamlNestingDepth(`prompt: |\n${prose}\n\nnext: [1]\n`)).toBe(2);
    expect(yamlNestingDepth(`prompt: >-\n${prose}\n`)).toBe(1);
    expect(yamlNestingDepth("a: 'it''s [x'\nb: \"a \\\" [b\"\n")).toBe(1);
    expect(yamlNestingDepth("a: [[1], [2]]\nb: 1\n")).toBe(3);
    expect(yamlNestingDepth("a: ]]]\nb: [1]\n")).toBe(2);
  });

  it("counts a bracket where a quote opens no scalar, so nesting cannot hide behind one", () => {
    // A quote inside a plain scalar, or at the start of a line within a flow collection, is
    // text to YAML: the brackets after it nest.
    const deep = `${"[".repeat(100)}${"]".repeat(100)}`;
    expect(yamlNestingDepth(`x: [a'b, ${deep}]\n`)).toBeGreaterThan(100);
    expect(yamlNestingDepth(`x: [a\n'b, ${deep}]\n`)).toBeGreaterThan(100);
    expect(yamlNestingDepth(`x: [a, #\n${deep}]\n`)).toBeGreaterThan(100);
    // Taken for a block scalar's header, a plain scalar ending in `|` hides nothing: what
    // follows, more indented, continues the scalar, as YAML reads it.
    const plain = `x: don't |\n  ${deep}\n`;
    expect(yamlNestingDepth(plain)).toBe(1);
    expect(typeof parse(plain).x).toBe("string");
  });

  it("gives a long text's depth, not its length", () => {
    const stairs = (n: number) =>
      Array.from({ length: n }, (_, i) => `${" ".repeat(i % 50)}k${i}: [1, 2]`).join("\n");
    expect(yamlNestingDepth(stairs(16_000))).toBe(51);
  });
});

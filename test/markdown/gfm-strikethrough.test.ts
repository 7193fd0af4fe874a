import { describe, expect, it } from "vitest";
import { createCommandParser } from "../../src/commands/parse-command.js";
import { createMarkdownParser } from "../../src/markdown/create-markdown-parser.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

const parser = createCommandParser();

/** The paragraph's inline tokens, struck parts as `<s~>…</s>` with their markup. */
function struck(text: string): string {
  const inline = parser.parse(text, {}).find((token) => token.type === "inline");
  return (inline?.children ?? [])
    .map((token) => {
      if (token.type === "s_open") return `<s${token.markup}>`;
      if (token.type === "s_close") return `</s${token.markup}>`;
      if (token.type === "softbreak") return "\n";
      return token.content;
    })
    .join("");
}

describe("GitHub's strikethrough in the command parser", () => {
  it.each([
    ["~old~", "<s~>old</s~>"],
    ["~~old~~", "<s~~>old</s~~>"],
    ["a ~b~ c ~~d~~", "a <s~>b</s~> c <s~~>d</s~~>"],
    ["~a ~~b~~ c~", "<s~>a <s~~>b</s~~> c</s~>"],
    // A closer pairs with the nearest opener of its own length.
    ["~a~~b~", "<s~>a~~b</s~>"],
    ["~~a~b~~", "<s~~>a~b</s~~>"],
    ["~a\nb~", "<s~>a\nb</s~>"],
  ])("strikes %j through", (text, expected) => {
    expect(struck(text)).toBe(expected);
  });

  it.each([
    // Runs of different lengths, and runs of three or more, which are text.
    ["~old~~"],
    ["~~old~"],
    // (Not at a line's start, where three tildes open a code fence.)
    ["a ~~~old~~~"],
    ["a ~~~~ b ~~~~"],
    // Not flanking: whitespace after the opener, or before the closer.
    ["~ old~"],
    ["~old ~"],
  ])("leaves %j as text", (text) => {
    expect(struck(text)).toBe(text);
  });

  it("leaves the shared parser, which reads what Talos posts, with markdown-it's `~~` only", () => {
    const inline = createMarkdownParser()
      .parse("~old~", {})
      .find((token) => token.type === "inline");
    expect(inline?.children?.map((token) => token.type)).toEqual(["text"]);
  });

  it("takes linear time on hostile runs and pairs of tildes", async () => {
    await expectLinearTime((text) => parser.parse(text, {}), {
      fragments: ["~", "~a", "a~", "~a ", "~~a ", "~a~~", "~~a~", "[~a", "~a\n", "~~~a"],
      runs: ["~"],
      length: 8_192,
    });
  }, 120_000);
});

import { describe, expect, it } from "vitest";
import { createMarkdownParser } from "../../src/markdown/create-markdown-parser.js";
import { toSafeMarkdown } from "../../src/markdown/to-safe-markdown.js";

// `&#10;` is decoded by the parser into a line break inside a text token, which GitHub shows as
// a space. Written back as a line break, it began a line, and the `#`, `-`, `1.` escapes of a
// line's start were skipped: the reply grew a heading or a list the text did not have.
describe("a line break spelt as an entity", () => {
  const parser = createMarkdownParser();
  const safe = (text: string) => toSafeMarkdown(text, { repo: "o/r", references: [] });

  it("renders as the one paragraph it is, with no heading or list in it", () => {
    for (const text of ["foo&#10;# heading", "foo&#10;- item", "foo&#10;===", "a&#10;&#10;1. b"]) {
      const out = safe(text);
      const types = parser.parse(out, {}).map((t) => t.type);
      expect(types, `${JSON.stringify(text)} -> ${JSON.stringify(out)}`).toEqual([
        "paragraph_open",
        "inline",
        "paragraph_close",
      ]);
    }
  });
});

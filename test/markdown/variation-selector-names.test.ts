import { describe, expect, it } from "vitest";
import { cleanUntrustedText } from "../../src/agent/untrusted-text.js";
import { escapeName, stripInvisible } from "../../src/markdown/safe-text.js";

// escapeName keeps file names apart by escaping what stripInvisible removes. A run of
// presentation selectors (U+FE0F U+FE0F) is cut to one by the cleaning: unescaped, the name
// `a\uFE0F\uFE0F.ts` read as `a\uFE0F.ts`, another file's, and a comment cited as shown landed
// on the other file.
describe("escapeName and a run of presentation selectors", () => {
  it("writes a name whose escape survives stripInvisible", () => {
    const name = "src/a\uFE0F\uFE0F.ts";
    expect(stripInvisible(escapeName(name))).toBe(escapeName(name));
  });

  it("keeps two names apart once the prompt's cleaning has run", () => {
    const shown = (name: string) => stripInvisible(escapeName(name));
    expect(shown("src/a\uFE0F\uFE0F.ts")).not.toBe(shown("src/a\uFE0F.ts"));
  });
});

// README: "variation selectors but an emoji's one presentation selector" are stripped. Any
// character keeps one, so a selector after each letter (FE0E, FE0F or none) is an invisible
// channel of about 1.5 bits a letter, in as out.
describe("a presentation selector after a letter", () => {
  it("is stripped when it follows no emoji", () => {
    expect(cleanUntrustedText("a\uFE0Fb\uFE0Ec\uFE0Fd")).toBe("abcd");
  });
});

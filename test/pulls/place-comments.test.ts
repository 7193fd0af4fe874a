import { describe, expect, it } from "vitest";
import { parsePatch, type Hunk } from "../../src/pulls/parse-patch.js";
import {
  placeComments,
  type CommentDraft,
  type PlacedComment,
} from "../../src/pulls/place-comments.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

// New file lines 10-14 in the first hunk, 40-42 in the second; old line 12 is deleted.
const patch = [
  "@@ -10,5 +10,5 @@ function load()",
  " const a = 1;",
  " const b = 2;",
  "-const c = 3;",
  "+const c = 4;   ",
  "+const d = c * 2;",
  " return a;",
  "@@ -40,4 +40,3 @@",
  " x();",
  "-y();",
  " z();",
  " w();",
].join("\n");

const files = new Map<string, Hunk[]>([
  ["src/a.ts", parsePatch(patch)],
  ["src/b.ts", parsePatch("@@ -1,2 +1,3 @@\n one\n+two\n three")],
]);

function draft(overrides: Partial<CommentDraft> = {}): CommentDraft {
  return { path: "src/a.ts", line: 12, severity: "major", body: "Why 4?", ...overrides };
}

function place(drafts: CommentDraft[], maxComments = 10) {
  const result = placeComments({ drafts, files, maxComments });
  // Nothing is lost: every draft is placed or dropped.
  expect(result.placed.length + result.dropped.length).toBe(drafts.length);
  return result;
}

describe("placeComments", () => {
  it("places a comment on an added or a context line, on the new side", () => {
    const { placed, dropped } = place([draft(), draft({ line: 14, severity: "nit", body: "ok" })]);
    expect(placed).toEqual([
      { path: "src/a.ts", line: 12, side: "RIGHT", body: "**Major:** Why 4?", severity: "major" },
      { path: "src/a.ts", line: 14, side: "RIGHT", body: "**Nit:** ok", severity: "nit" },
    ]);
    expect(placed[0]).not.toHaveProperty("start_line");
    expect(dropped).toEqual([]);
  });

  it("drops drafts off the diff, with the reason", () => {
    const drafts = [
      draft({ path: "src/unknown.ts" }),
      draft({ line: 15 }),
      draft({ line: 9 }),
      draft({ line: 30 }),
      draft({ line: 43 }),
      draft({ line: 12.5 }),
      draft({ line: Number.NaN }),
      draft({ line: 0 }),
    ];
    const { placed, dropped } = place(drafts);
    expect(placed).toEqual([]);
    expect(dropped.map((d) => d.reason)).toEqual([
      "unknown-file",
      "not-in-diff",
      "not-in-diff",
      "not-in-diff",
      "not-in-diff",
      "not-in-diff",
      "not-in-diff",
      "not-in-diff",
    ]);
    expect(dropped[0]!.draft).toBe(drafts[0]);
  });

  it("places a range inside one hunk", () => {
    const { placed } = place([draft({ startLine: 11, line: 13 })]);
    expect(placed).toEqual([
      {
        path: "src/a.ts",
        line: 13,
        side: "RIGHT",
        start_line: 11,
        start_side: "RIGHT",
        body: "**Major:** Why 4?",
        severity: "major",
      },
    ]);
  });

  it("treats a range of one line, or a start after the end, as a single line", () => {
    const { placed } = place([
      draft({ startLine: 12, line: 12 }),
      draft({ startLine: 14, line: 13 }),
    ]);
    expect(placed.map((p) => [p.line, p.start_line])).toEqual([
      [12, undefined],
      [13, undefined],
    ]);
    expect(placed[0]).not.toHaveProperty("start_line");
    expect(placed[0]).not.toHaveProperty("start_side");
  });

  it("drops a range across hunks, or one starting off the diff", () => {
    const { dropped } = place([
      draft({ startLine: 13, line: 41 }),
      draft({ startLine: 5, line: 12 }),
      draft({ startLine: 20, line: 41 }),
    ]);
    expect(dropped.map((d) => d.reason)).toEqual([
      "range-spans-hunks",
      "not-in-diff",
      "not-in-diff",
    ]);
  });

  it("drops a range whose hunk does not hold every line between its ends", () => {
    // A hunk made by hand with a gap in its new lines: GitHub would reject the range.
    const gappy: Hunk = {
      oldStart: 1,
      newStart: 1,
      header: "@@ -1,2 +1,2 @@",
      lines: [
        { kind: "add", text: "a", newLine: 1 },
        { kind: "add", text: "b", newLine: 1_000_000 },
      ],
    };
    const result = placeComments({
      drafts: [draft({ path: "g.ts", startLine: 1, line: 1_000_000 })],
      files: new Map([["g.ts", [gappy]]]),
      maxComments: 10,
    });
    expect(result.dropped.map((d) => d.reason)).toEqual(["range-spans-hunks"]);
  });

  it("keeps the most severe drafts up to the cap, stable within a severity", () => {
    const drafts = [
      draft({ line: 10, severity: "nit", body: "n1" }),
      draft({ line: 11, severity: "critical", body: "c1" }),
      draft({ line: 12, severity: "minor", body: "m1" }),
      draft({ line: 13, severity: "major", body: "M1" }),
      draft({ line: 14, severity: "critical", body: "c2" }),
      draft({ line: 40, severity: "major", body: "M2" }),
    ];
    const { placed, dropped } = place(drafts, 3);
    expect(placed.map((p) => p.body)).toEqual([
      "**Critical:** c1",
      "**Critical:** c2",
      "**Major:** M1",
    ]);
    expect(dropped.map((d) => [d.draft.body, d.reason])).toEqual([
      ["M2", "over-limit"],
      ["m1", "over-limit"],
      ["n1", "over-limit"],
    ]);
    expect(place(drafts, 0).placed).toEqual([]);
  });

  it("keeps one comment per line: the most severe, then the first", () => {
    const { placed, dropped } = place([
      draft({ line: 12, severity: "nit", body: "first nit" }),
      draft({ line: 12, severity: "major", body: "major" }),
      draft({ line: 12, severity: "major", body: "second major" }),
      draft({ path: "src/b.ts", line: 2, body: "other file, same line number is fine" }),
      draft({ line: 2, path: "src/b.ts", startLine: 1, body: "a range ending on a taken line" }),
    ]);
    expect(placed.map((p) => [p.path, p.line, p.body])).toEqual([
      ["src/a.ts", 12, "**Major:** major"],
      ["src/b.ts", 2, "**Major:** other file, same line number is fine"],
    ]);
    expect(dropped.map((d) => [d.draft.body, d.reason])).toEqual([
      ["second major", "duplicate"],
      ["a range ending on a taken line", "duplicate"],
      ["first nit", "duplicate"],
    ]);
  });

  it("cuts a long body", () => {
    const { placed } = place([draft({ body: `  ${"a".repeat(5_000)}  ` })]);
    expect(placed[0]!.body).toBe(`**Major:** ${"a".repeat(4_000)}…`);
  });

  it("takes linear time on hostile bodies, originals and suggestions", async () => {
    await expectLinearTime((text) =>
      placeComments({
        drafts: [
          draft({ body: text, original: text, suggestion: text }),
          draft({
            line: 13,
            body: text,
            original: "const d = c * 2;",
            suggestion: text.slice(0, 4_000),
          }),
        ],
        files,
        maxComments: 10,
      }),
    );
  }, 120_000);

  describe("suggestions", () => {
    // The body and the checked suggestion are made safe apart, then posted as one text.
    const written = (p: PlacedComment) =>
      p.suggestion === undefined ? p.body : `${p.body}\n\n${p.suggestion}`;

    it("appends a suggestion when the model quoted the lines right", () => {
      const result = place([
        draft({
          startLine: 12,
          line: 13,
          original: "const c = 4;\r\nconst d = c * 2;\n",
          suggestion: "const c = 3;\nconst d = c * 2;",
        }),
      ]);
      expect(written(result.placed[0]!)).toBe(
        ["**Major:** Why 4?", "", "```suggestion", "const c = 3;", "const d = c * 2;", "```"].join(
          "\n",
        ),
      );
      expect(result.suggestionsDropped).toBe(0);
    });

    it("compares a context line and ignores trailing whitespace on either side", () => {
      const result = place([
        draft({ line: 10, original: "const a = 1;   ", suggestion: "const a = 2;" }),
      ]);
      expect(written(result.placed[0]!)).toContain("```suggestion\nconst a = 2;\n```");
    });

    it("drops a suggestion whose original does not match, or is missing, and keeps the comment", () => {
      const result = place([
        draft({ line: 12, original: "const c = 3;", suggestion: "const c = 5;" }),
        draft({ line: 13, suggestion: "const d = c * 3;" }),
        draft({ line: 14, original: "  return a;", suggestion: "return b;" }),
        // A range of two lines quoted as one.
        draft({ startLine: 40, line: 41, original: "x();", suggestion: "x" }),
      ]);
      expect(result.placed.map(written)).toEqual([
        "**Major:** Why 4?",
        "**Major:** Why 4?",
        "**Major:** Why 4?",
        "**Major:** Why 4?",
      ]);
      expect(result.suggestionsDropped).toBe(4);
    });

    it("drops a suggestion that is too long", () => {
      const result = place([draft({ original: "const c = 4;", suggestion: "x".repeat(4_001) })]);
      expect(written(result.placed[0]!)).toBe("**Major:** Why 4?");
      expect(result.suggestionsDropped).toBe(1);
      const fits = place([draft({ original: "const c = 4;", suggestion: "x".repeat(4_000) })]);
      expect(fits.suggestionsDropped).toBe(0);
    });

    it("lets an empty suggestion delete the lines", () => {
      const result = place([draft({ line: 13, original: "const d = c * 2;", suggestion: "" })]);
      expect(written(result.placed[0]!)).toBe("**Major:** Why 4?\n\n```suggestion\n```");
    });

    it("keeps an empty line that is the whole suggestion", () => {
      const result = place([draft({ line: 13, original: "const d = c * 2;", suggestion: "\n" })]);
      expect(written(result.placed[0]!)).toBe("**Major:** Why 4?\n\n```suggestion\n\n```");
    });

    it("fences a suggestion with more backticks than any run in it", () => {
      const suggestion = "const s = `a` + ```` + '```';";
      const result = place([draft({ original: "const c = 4;", suggestion })]);
      expect(written(result.placed[0]!)).toBe(
        `**Major:** Why 4?\n\n\`\`\`\`\`suggestion\n${suggestion}\n\`\`\`\`\``,
      );
    });

    it("disarms a suggestion block the model wrote into its prose", () => {
      const body =
        "Try:\n```suggestion\nrm -rf /\n```\nor\n~~~~ Suggestion\nx\n~~~~\n`suggestion` ``suggestion``";
      const { placed } = place([draft({ body })]);
      expect(placed[0]!.body).toBe(
        "**Major:** Try:\n```text\nrm -rf /\n```\nor\n~~~~ text\nx\n~~~~\n`suggestion` ``suggestion``",
      );
    });

    it("does not count suggestions of dropped drafts", () => {
      const result = place([draft({ line: 99, original: "x", suggestion: "y" })]);
      expect(result.suggestionsDropped).toBe(0);
      expect(result.dropped.map((d) => d.reason)).toEqual(["not-in-diff"]);
    });
  });
});

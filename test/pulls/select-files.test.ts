import { describe, expect, it } from "vitest";
import { parseGitAttributes, type GitAttributes } from "../../src/pulls/classify-file.js";
import { parsePatch } from "../../src/pulls/parse-patch.js";
import type { PullRequestFile } from "../../src/pulls/pull-request-file.js";
import { renderFileDiff, selectFiles } from "../../src/pulls/select-files.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

const none: GitAttributes = { rules: [] };
const keep = (text: string) => text;

/** A file whose one hunk adds `lines` lines. */
function file(filename: string, lines = 1, extra: Partial<PullRequestFile> = {}): PullRequestFile {
  const added = Array.from({ length: lines }, (_, i) => `+line ${i + 1} of ${filename}`);
  return {
    filename,
    status: "modified",
    additions: lines,
    deletions: 0,
    changes: lines,
    patch: [`@@ -1,0 +1,${lines} @@`, ...added].join("\n"),
    ...extra,
  };
}

/** Tokens as a quarter of the characters; past `limit` it stops, as TokenCounter does. */
function fakeCounter() {
  const calls: Array<{ text: string; limit: number | undefined }> = [];
  const countTokens = (text: string, limit?: number) => {
    calls.push({ text, limit });
    const tokens = Math.ceil(text.length / 4);
    return limit !== undefined && tokens > limit ? limit + 1 : tokens;
  };
  return { calls, countTokens };
}

/** Every input path appears exactly once, reviewed or skipped. */
function expectAllAccounted(
  files: readonly PullRequestFile[],
  selection: ReturnType<typeof selectFiles>,
): void {
  const seen = [
    ...selection.reviewed.map((r) => r.file.filename),
    ...selection.skipped.map((s) => s.path),
  ];
  expect(seen.toSorted()).toEqual(files.map((f) => f.filename).toSorted());
}

describe("selectFiles", () => {
  it("says why each file is not reviewed", () => {
    const files: PullRequestFile[] = [
      file("src/a.ts"),
      file("package-lock.json"),
      file("src/gone.ts", 1, { status: "removed", patch: "@@ -1 +0,0 @@\n-x" }),
      // GitHub lists a binary file with no patch and 0 changes: not the same as unchanged.
      file("img/logo.png", 1, { patch: undefined, changes: 0, status: "added" }),
      file("bin/run.sh", 1, { patch: undefined, changes: 0, status: "changed" }),
      file("big.bin", 1, { patch: undefined, changes: 10 }),
      file("src/moved.ts", 1, {
        status: "renamed",
        previous_filename: "src/old.ts",
        patch: undefined,
        changes: 0,
      }),
      file("src/trimmed.ts", 1, { patch: "@@ -1,3 +1,1 @@\n a\n-b\n-c", changes: 2 }),
      file("vendor/lib.js"),
    ];
    const { countTokens } = fakeCounter();
    const selection = selectFiles({
      files,
      maxTokens: 10_000,
      countTokens,
      clean: keep,
      ignore: ["*.lock", "package-lock.json", "vendor/"],
      attributes: none,
    });
    expect(selection.reviewed.map((r) => r.file.filename)).toEqual(["src/a.ts"]);
    expect(selection.skipped).toEqual([
      { path: "package-lock.json", reason: "ignored" },
      { path: "src/gone.ts", reason: "removed", category: "code" },
      { path: "img/logo.png", reason: "no-patch", category: "code" },
      { path: "bin/run.sh", reason: "unchanged", category: "code" },
      { path: "big.bin", reason: "no-patch", category: "code" },
      { path: "src/moved.ts", reason: "unchanged", category: "code" },
      { path: "src/trimmed.ts", reason: "deletions-only", category: "code" },
      { path: "vendor/lib.js", reason: "ignored" },
    ]);
    expect(selection.unlisted).toBe(0);
    expectAllAccounted(files, selection);
  });

  it("orders code, test, docs, generated, keeping GitHub's order within each", () => {
    const files = [
      file("README.md"),
      file("dist/bundle.js"),
      file("test/b.test.ts"),
      file("src/z.ts"),
      file("docs/guide.md"),
      file("src/a.ts"),
      file("src/a.test.ts"),
    ];
    const { countTokens } = fakeCounter();
    const selection = selectFiles({
      files,
      maxTokens: 10_000,
      countTokens,
      clean: keep,
      ignore: [],
      attributes: none,
    });
    expect(selection.reviewed.map((r) => [r.file.filename, r.category])).toEqual([
      ["src/z.ts", "code"],
      ["src/a.ts", "code"],
      ["test/b.test.ts", "test"],
      ["src/a.test.ts", "test"],
      ["README.md", "docs"],
      ["docs/guide.md", "docs"],
      ["dist/bundle.js", "generated"],
    ]);
    expect(selection.skipped).toEqual([]);
  });

  it("uses .gitattributes to find generated files", () => {
    const files = [file("src/gen/api.ts"), file("src/app.ts")];
    const attributes = parseGitAttributes("src/gen/** linguist-generated\n");
    const { countTokens } = fakeCounter();
    const selection = selectFiles({
      files,
      maxTokens: 10_000,
      countTokens,
      clean: keep,
      ignore: [],
      attributes,
    });
    expect(selection.reviewed.map((r) => [r.file.filename, r.category])).toEqual([
      ["src/app.ts", "code"],
      ["src/gen/api.ts", "generated"],
    ]);
  });

  it("takes files greedily: a huge one is skipped and smaller ones after it still fit", () => {
    const files = [file("src/small1.ts", 2), file("src/huge.ts", 500), file("src/small2.ts", 2)];
    const { calls, countTokens } = fakeCounter();
    const small = Math.ceil(renderFileDiff(files[0]!, parsePatch(files[0]!.patch!)).length / 4);
    const maxTokens = 3 * small;
    const selection = selectFiles({
      files,
      maxTokens,
      countTokens,
      clean: keep,
      ignore: [],
      attributes: none,
    });
    expect(selection.reviewed.map((r) => r.file.filename)).toEqual([
      "src/small1.ts",
      "src/small2.ts",
    ]);
    expect(selection.skipped).toEqual([
      { path: "src/huge.ts", reason: "over-budget", category: "code" },
    ]);
    const used = selection.reviewed.reduce((sum, r) => sum + r.tokens, 0);
    expect(used).toBeLessThanOrEqual(maxTokens);
    // Each count stops one past what is left.
    expect(calls.map((c) => c.limit)).toEqual([
      maxTokens + 1,
      maxTokens - small + 1,
      maxTokens - small + 1,
    ]);
    expectAllAccounted(files, selection);
  });

  it("fits a file that takes exactly what is left", () => {
    const files = [file("src/a.ts")];
    const text = renderFileDiff(files[0]!, parsePatch(files[0]!.patch!));
    const { countTokens } = fakeCounter();
    const exact = Math.ceil(text.length / 4);
    const fits = selectFiles({
      files,
      maxTokens: exact,
      countTokens,
      clean: keep,
      ignore: [],
      attributes: none,
    });
    expect(fits.reviewed.map((r) => [r.tokens, r.text])).toEqual([[exact, text]]);
    const over = selectFiles({
      files,
      maxTokens: exact - 1,
      countTokens,
      clean: keep,
      ignore: [],
      attributes: none,
    });
    expect(over.skipped).toEqual([{ path: "src/a.ts", reason: "over-budget", category: "code" }]);
  });

  it("skips everything over a budget of nothing, and counts the unlisted files", () => {
    const files = [file("src/a.ts"), file("README.md")];
    const { countTokens } = fakeCounter();
    const selection = selectFiles({
      files,
      maxTokens: 0,
      countTokens,
      clean: keep,
      ignore: [],
      attributes: none,
      unlisted: 42,
    });
    expect(selection.reviewed).toEqual([]);
    expect(selection.skipped.map((s) => s.reason)).toEqual(["over-budget", "over-budget"]);
    expect(selection.unlisted).toBe(42);
  });

  it("drops delete-only hunks from a file it reviews", () => {
    const patch = [
      "@@ -1,3 +1,2 @@",
      " keep",
      "-removed",
      " keep too",
      "@@ -20,2 +19,3 @@",
      " context",
      "+added",
      " more",
    ].join("\n");
    const files = [file("src/a.ts", 1, { patch })];
    const { countTokens } = fakeCounter();
    const [input] = selectFiles({
      files,
      maxTokens: 10_000,
      countTokens,
      clean: keep,
      ignore: [],
      attributes: none,
    }).reviewed;
    expect(input!.hunks.map((h) => h.header)).toEqual(["@@ -20,2 +19,3 @@"]);
    expect(input!.text).not.toContain("removed");
    expect(input!.text).toContain("+added");
  });

  it("counts and keeps each file's text as `clean` leaves it", () => {
    // Scrubbing lengthens some text: what is counted must be what the prompt is sent.
    const files = [file("src/a.ts", 3), file("src/b.ts", 3)];
    const { calls, countTokens } = fakeCounter();
    const clean = (text: string) => text.replaceAll("line", "[REDACTED]".repeat(4));
    const rendered = renderFileDiff(files[0]!, parsePatch(files[0]!.patch!));
    const cleaned = Math.ceil(clean(rendered).length / 4);
    const selection = selectFiles({
      files,
      // Room for both files as rendered, for one as cleaned.
      maxTokens: cleaned + 10,
      countTokens,
      clean,
      ignore: [],
      attributes: none,
    });
    expect(Math.ceil(rendered.length / 4) * 2).toBeLessThanOrEqual(cleaned + 10);
    expect(calls[0]!.text).toBe(clean(rendered));
    expect(selection.reviewed.map((r) => [r.text, r.tokens])).toEqual([[clean(rendered), cleaned]]);
    expect(selection.skipped).toEqual([
      { path: "src/b.ts", reason: "over-budget", category: "code" },
    ]);
  });

  it("accounts for every file of a large mixed pull request", () => {
    const kinds = [
      (i: number) => file(`src/f${i}.ts`, (i % 7) + 1),
      (i: number) => file(`test/f${i}.test.ts`, 3),
      (i: number) => file(`docs/f${i}.md`, 2),
      (i: number) => file(`f${i}/yarn.lock`, 40),
      (i: number) => file(`gone${i}.ts`, 1, { status: "removed" }),
      (i: number) => file(`bin${i}.png`, 1, { patch: undefined }),
      (i: number) => file(`ignored${i}.snap`),
    ];
    const files = Array.from({ length: 350 }, (_, i) => kinds[i % kinds.length]!(i));
    const { countTokens } = fakeCounter();
    const selection = selectFiles({
      files,
      maxTokens: 4_000,
      countTokens,
      clean: keep,
      ignore: ["*.snap"],
      attributes: none,
    });
    expectAllAccounted(files, selection);
    expect(selection.reviewed.length).toBeGreaterThan(0);
    expect(selection.skipped.some((s) => s.reason === "over-budget")).toBe(true);
    const used = selection.reviewed.reduce((sum, r) => sum + r.tokens, 0);
    expect(used).toBeLessThanOrEqual(4_000);
  });
});

describe("renderFileDiff", () => {
  it("numbers added and context lines with the new file's lines", () => {
    const patch = [
      "@@ -8,4 +8,5 @@ function f()",
      " a",
      "-b",
      "+B",
      "+C",
      " d",
      "\\ No newline at end of file",
      "@@ -99998,1 +100000,2 @@",
      " x",
      "+y",
    ].join("\n");
    const renamed: PullRequestFile = {
      filename: "src/new.ts",
      previous_filename: "src/old.ts",
      status: "renamed",
      additions: 3,
      deletions: 1,
      changes: 4,
      patch,
    };
    expect(renderFileDiff(renamed, parsePatch(patch))).toBe(
      [
        "### src/new.ts (renamed from src/old.ts)",
        "@@ -8,4 +8,5 @@ function f()",
        "    8  a",
        "      -b",
        "    9 +B",
        "   10 +C",
        "   11  d",
        "@@ -99998,1 +100000,2 @@",
        "100000  x",
        "100001 +y",
      ].join("\n"),
    );
  });

  it("cuts long lines and keeps the path on one line", () => {
    const long = "x".repeat(600);
    const patch = `@@ -1 +1 @@\n-${long}\n+a${"😀".repeat(300)}`;
    const text = renderFileDiff(file("a\nb.ts", 1, { patch }), parsePatch(patch));
    const lines = text.split("\n");
    expect(lines[0]).toBe("### a\\x0ab.ts");
    expect(lines[2]).toBe(`      -${"x".repeat(500)}…`);
    // Never cut inside a surrogate pair.
    expect(lines[3]).toBe(`    1 +a${"😀".repeat(249)}…`);
  });

  it("writes a line terminator inside a line, name or heading as an escape", () => {
    // Each would read as a line break in the prompt (the code fence makes one of `\r`), after
    // the lines were numbered.
    const breaks = "a\rb\vc\fd\u0085e\u2028f\u2029g";
    const escaped = "a\\x0db\\x0bc\\x0cd\\x85e\\u{2028}f\\u{2029}g";
    const patch = `@@ -1 +1,2 @@ ${breaks}\n-${breaks}\n+${breaks}\n ${breaks}`;
    const text = renderFileDiff(
      file(`src/${breaks}.ts`, 1, { patch, previous_filename: `lib/${breaks}.ts` }),
      parsePatch(patch),
    );
    expect(text.split("\n")).toEqual([
      `### src/${escaped}.ts (renamed from lib/${escaped}.ts)`,
      `@@ -1 +1,2 @@ ${escaped}`,
      `      -${escaped}`,
      `    1 +${escaped}`,
      `    2  ${escaped}`,
    ]);
  });

  it("takes linear time on hostile paths, headings and lines", async () => {
    // The number of lines is parsePatch's test; this one is the text of each.
    await expectLinearTime((text) =>
      renderFileDiff(file(text, 1, { previous_filename: text }), [
        {
          oldStart: 1,
          newStart: 1,
          header: `@@ -1 +1 @@ ${text}`,
          lines: [
            { kind: "delete", text, oldLine: 1 },
            { kind: "add", text, newLine: 1 },
            { kind: "context", text, oldLine: 2, newLine: 2 },
          ],
        },
      ]),
    );
  }, 120_000);
});

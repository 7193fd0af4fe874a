import { describe, expect, it } from "vitest";
import { isDeleteOnly, parsePatch } from "../../src/pulls/parse-patch.js";
import { expectLinearTime, HOSTILE_FRAGMENTS } from "../helpers/hostile-input.js";

describe("parsePatch", () => {
  it("numbers the lines of the old and the new file", () => {
    const hunks = parsePatch(
      [
        "@@ -10,4 +10,5 @@ function setTheme(name) {",
        " const themes = ['light'];",
        "-export function setTheme(name) {",
        "+export function setTheme(name, store) {",
        "+  store.theme = name;",
        "   document.body.className = name;",
        " }",
      ].join("\n"),
    );
    expect(hunks).toEqual([
      {
        oldStart: 10,
        newStart: 10,
        header: "@@ -10,4 +10,5 @@ function setTheme(name) {",
        lines: [
          { kind: "context", text: "const themes = ['light'];", oldLine: 10, newLine: 10 },
          { kind: "delete", text: "export function setTheme(name) {", oldLine: 11 },
          { kind: "add", text: "export function setTheme(name, store) {", newLine: 11 },
          { kind: "add", text: "  store.theme = name;", newLine: 12 },
          { kind: "context", text: "  document.body.className = name;", oldLine: 12, newLine: 13 },
          { kind: "context", text: "}", oldLine: 13, newLine: 14 },
        ],
      },
    ]);
  });

  it("reads several hunks, each from its own start", () => {
    const hunks = parsePatch(
      ["@@ -1,2 +1,2 @@", "-a", "+A", " b", "@@ -40,3 +40,2 @@ class Store", " x", "-y", " z"].join(
        "\n",
      ),
    );
    expect(hunks.map((h) => [h.oldStart, h.newStart, h.header])).toEqual([
      [1, 1, "@@ -1,2 +1,2 @@"],
      [40, 40, "@@ -40,3 +40,2 @@ class Store"],
    ]);
    expect(hunks[1]!.lines).toEqual([
      { kind: "context", text: "x", oldLine: 40, newLine: 40 },
      { kind: "delete", text: "y", oldLine: 41 },
      { kind: "context", text: "z", oldLine: 42, newLine: 41 },
    ]);
  });

  it("ignores `\\ No newline at end of file`", () => {
    const hunks = parsePatch(
      [
        "@@ -1 +1 @@",
        "-old",
        "\\ No newline at end of file",
        "+new",
        "\\ No newline at end of file",
      ].join("\n"),
    );
    expect(hunks[0]!.lines).toEqual([
      { kind: "delete", text: "old", oldLine: 1 },
      { kind: "add", text: "new", newLine: 1 },
    ]);
  });

  it("reads a new file's hunk and a header without counts", () => {
    expect(parsePatch("@@ -0,0 +1,2 @@\n+a\n+b")[0]!.lines).toEqual([
      { kind: "add", text: "a", newLine: 1 },
      { kind: "add", text: "b", newLine: 2 },
    ]);
    expect(parsePatch("@@ -3 +3 @@\n-a\n+b")[0]!.lines).toHaveLength(2);
  });

  it("counts an empty line in a hunk as empty context, but not the patch's trailing newline", () => {
    const hunks = parsePatch("@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n");
    expect(hunks[0]!.lines).toEqual([
      { kind: "context", text: "a", oldLine: 1, newLine: 1 },
      { kind: "context", text: "", oldLine: 2, newLine: 2 },
      { kind: "delete", text: "b", oldLine: 3 },
      { kind: "add", text: "c", newLine: 3 },
    ]);
  });

  it("drops the CR of a file with CRLF endings", () => {
    expect(parsePatch("@@ -1 +1 @@\r\n-a\r\n+b\r\n")[0]!.lines.map((l) => l.text)).toEqual([
      "a",
      "b",
    ]);
  });

  it("skips what it cannot read instead of throwing", () => {
    const patch = [
      "diff --git a/x b/x",
      "index 123..456 100644",
      "--- a/x",
      "+++ b/x",
      "garbage",
      "@@ -1,1 +1,1 @@",
      "-a",
      "+b",
      "+past the header's counts",
      "@@ not a header @@",
      "+lost",
      "@@ -1,x +1 @@",
      "+lost too",
      "@@ -9999999999 +1 @@",
      "+and this",
      "@@ -20,1 +20,1 @@ tail",
      "~what is this",
      " kept",
    ].join("\n");
    const hunks = parsePatch(patch);
    expect(hunks.map((h) => h.header)).toEqual(["@@ -1,1 +1,1 @@", "@@ -20,1 +20,1 @@ tail"]);
    expect(hunks[0]!.lines.map((l) => l.text)).toEqual(["a", "b"]);
    expect(hunks[1]!.lines).toEqual([{ kind: "context", text: "kept", oldLine: 20, newLine: 20 }]);
    expect(parsePatch("")).toEqual([]);
    expect(parsePatch("Binary files differ")).toEqual([]);
    expect(parsePatch("@@ -1 +1")).toEqual([]);
  });

  it("keeps text that looks like diff syntax as the line's text", () => {
    const hunks = parsePatch("@@ -1,2 +1,2 @@\n--- a/x\n++++ b/x\n  @@ -1 +1 @@");
    expect(hunks[0]!.lines).toEqual([
      { kind: "delete", text: "-- a/x", oldLine: 1 },
      { kind: "add", text: "+++ b/x", newLine: 1 },
      { kind: "context", text: " @@ -1 +1 @@", oldLine: 2, newLine: 2 },
    ]);
  });

  it("takes linear time on hostile patches", async () => {
    const header = "@@ -1,999999999 +1,999999999 @@ section\n";
    await expectLinearTime((text) => parsePatch(header + text), {
      fragments: [
        ...HOSTILE_FRAGMENTS,
        "@@ -1,2 +1,2 @@\n",
        "@@ -",
        "@@ -1,",
        "@@ -1,99999999 +1,99999999 @@ @@ @@",
        "+a\n",
        "-a\n",
        " a\n",
        "\\ No newline at end of file\n",
        "@@\n",
        "\r\n",
      ],
    });
  }, 120_000);
});

describe("isDeleteOnly", () => {
  it("is true when a hunk adds no line", () => {
    const [deleting, adding, replacing] = parsePatch(
      [
        "@@ -1,3 +1,2 @@",
        " a",
        "-b",
        " c",
        "@@ -10,1 +10,2 @@",
        " x",
        "+y",
        "@@ -20,1 +20,1 @@",
        "-p",
        "+q",
      ].join("\n"),
    );
    expect(isDeleteOnly(deleting!)).toBe(true);
    expect(isDeleteOnly(adding!)).toBe(false);
    expect(isDeleteOnly(replacing!)).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { MAX_GLOB_PATH, MAX_GLOB_PATTERN, matchGlob } from "../../src/pulls/match-glob.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

const cases: Array<[pattern: string, path: string, matches: boolean]> = [
  // No slash: the file name at any depth.
  ["*.lock", "yarn.lock", true],
  ["*.lock", "a/b/Cargo.lock", true],
  ["*.lock", "yarn.locks", false],
  ["*.lock", "x.lock/y", false],
  ["yarn.lock", "web/yarn.lock", true],
  ["yarn.lock", "web/yarn.lock.bak", false],
  ["*.env", ".env", true],
  ["*", "a/b/c", true],
  // A slash anchors; `*` stays within a segment.
  ["src/*.ts", "src/a.ts", true],
  ["src/*.ts", "src/a/b.ts", false],
  ["src/*.ts", "lib/src/a.ts", false],
  ["/README.md", "README.md", true],
  ["/README.md", "docs/README.md", false],
  ["/*.md", "a.md", true],
  ["/*.md", "d/a.md", false],
  // `**`.
  ["docs/**", "docs/a.md", true],
  ["docs/**", "docs/a/b/c.md", true],
  ["docs/**", "docs", false],
  ["docs/**", "x/docs/a.md", false],
  ["**/x", "x", true],
  ["**/x", "a/x", true],
  ["**/x", "a/b/x", true],
  ["**/x", "a/bx", false],
  ["a/**/b", "a/b", true],
  ["a/**/b", "a/x/b", true],
  ["a/**/b", "a/x/y/b", true],
  ["a/**/b", "a/bc", false],
  ["a/**/b", "xa/b", false],
  ["a/**/b", "a/x/b/c", false],
  ["**/gen/**", "gen/a.ts", true],
  ["**/gen/**", "src/gen/a/b.ts", true],
  ["**/gen/**", "src/gen", false],
  ["**", "anything/at/all", true],
  ["**/*.snap", "a/__snapshots__/b.snap", true],
  ["a**b", "axxb", true],
  ["a**b", "a/b", false],
  // A whole segment of more stars is `**` too, as git's wildmatch reads it (checked with
  // `git check-attr`); they had matched within one segment.
  ["***/x.snap", "a/b/x.snap", true],
  ["/***/**/x", "x", true],
  ["docs/***", "docs/a/b.md", true],
  ["src/****/y", "src/y", true],
  ["a/***b", "a/cb", true],
  ["a/***b", "a/c/b", false],
  // A trailing slash: a directory, and everything under it.
  ["vendor/", "vendor/a.js", true],
  ["vendor/", "lib/vendor/a/b.js", true],
  ["vendor/", "vendor", false],
  ["vendor/", "vendors/a.js", false],
  ["vendor/", "lib/vendor", false],
  ["/vendor/", "vendor/a.js", true],
  ["/vendor/", "lib/vendor/a.js", false],
  ["src/gen/", "src/gen/a.ts", true],
  ["src/gen/", "src/gen/a/b.ts", true],
  ["src/gen/", "x/src/gen/a.ts", false],
  ["gen*/", "pkg/generated/a.ts", true],
  ["dir/**/", "dir/a/b.ts", true],
  ["dir/**/", "dir/b.ts", false],
  // `?` and classes.
  ["?.js", "a.js", true],
  ["?.js", "ab.js", false],
  ["src/a?b", "src/a/b", false],
  ["?.md", "😀.md", true],
  ["[abc].ts", "b.ts", true],
  ["[abc].ts", "d.ts", false],
  ["[a-c]x", "bx", true],
  ["[a-c]x", "dx", false],
  ["[!a]x", "bx", true],
  ["[!a]x", "ax", false],
  ["[^a]x", "ax", false],
  ["[]]x", "]x", true],
  ["[!]]x", "]x", false],
  ["[a-]x", "-x", true],
  ["file[0-9][0-9].txt", "file42.txt", true],
  ["file[0-9][0-9].txt", "file4x.txt", false],
  ["[ab", "[ab", true],
  ["[ab", "a", false],
  ["[/]x", "a/x", false],
  // POSIX classes, as git's wildmatch reads them (they had read as a class and a literal `]`).
  ["file[[:digit:]].txt", "file1.txt", true],
  ["file[[:digit:]].txt", "filea.txt", false],
  ["[[:upper:]]*.go", "Main.go", true],
  ["[[:upper:]]*.go", "main.go", false],
  ["a[[:space:]]b", "a b", true],
  ["v[[:digit:][:lower:]]", "vq", true],
  ["v[![:alnum:]]", "v-", true],
  ["v[![:alnum:]]", "v7", false],
  // A class git does not know matches nothing; nor does a name of Object's.
  ["v[[:word:]]", "vw", false],
  ["v[![:word:]]", "v-", false],
  ["v[[:constructor:]]", "vc", false],
  // What a literal head or tail rules out, and what it must not.
  ["/README.md", "README.md", true],
  ["**/x", "x", true],
  ["vendor/", "a/vendor/b.js", true],
  ["vendor/", "a/vendored/b.js", false],
  ["a/**/b", "a/b", true],
  // Escapes and case.
  ["\\*.js", "*.js", true],
  ["\\*.js", "a.js", false],
  ["\\[a].js", "[a].js", true],
  ["*.JS", "a.js", false],
  // Nothing to match.
  ["", "a", false],
  ["/", "a", false],
  ["a", "", false],
];

describe("matchGlob", () => {
  it.each(cases)("%j against %j is %s", (pattern, path, matches) => {
    expect(matchGlob(pattern, path)).toBe(matches);
  });

  it("matches nothing past its caps", () => {
    const long = "*".repeat(MAX_GLOB_PATTERN + 1);
    expect(matchGlob("*".repeat(MAX_GLOB_PATTERN), "a")).toBe(true);
    expect(matchGlob(long, "a")).toBe(false);
    expect(matchGlob("**", "a/".repeat(MAX_GLOB_PATH / 2 - 1) + "ab")).toBe(true);
    expect(matchGlob("**", "a/".repeat(MAX_GLOB_PATH / 2) + "a")).toBe(false);
  });

  it("answers patterns that backtrack exponentially in a RegExp", () => {
    const path = "a".repeat(MAX_GLOB_PATH - 1);
    expect(matchGlob("*a".repeat(99) + "b", path)).toBe(false);
    expect(matchGlob("*a".repeat(99) + "*", path)).toBe(true);
    expect(matchGlob("**/".repeat(66) + "b", "a/".repeat(2_000) + "c")).toBe(false);
  });

  it("takes time linear in the path, for each hostile pattern", async () => {
    const patterns = [
      "*a".repeat(99) + "b",
      "?*".repeat(99) + "b",
      "[a-z]*".repeat(33) + "b",
      "**/".repeat(66) + "b",
      "**/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*/**",
      "[!/]*".repeat(40),
      "a/**/".repeat(40) + "b",
    ];
    await expectLinearTime(
      (path) => {
        for (const pattern of patterns) matchGlob(pattern, path);
      },
      {
        fragments: ["a", "a/", "ab/", "aaaaaaab/", "*", "[", "/", "b", "😀"],
        runs: ["a", "/", "*"],
        // 4,096 characters at 4n: the path cap.
        length: MAX_GLOB_PATH / 4,
      },
    );
  }, 120_000);
});

import { createGlobMatcher, type GlobMatcher } from "./match-glob.js";

/** What a changed file is, in the order a review reads them: code first, generated last. */
export type FileCategory = "code" | "test" | "docs" | "generated";

/** The categories in the order a review takes them. */
export const FILE_CATEGORIES: readonly FileCategory[] = ["code", "test", "docs", "generated"];

export interface GitAttributes {
  /**
   * Patterns marked linguist-generated or linguist-vendored (set, `=true`), and unset again
   * with `-attr` or `=false`; later lines win, as in git.
   */
  rules: Array<{ pattern: string; generated: boolean }>;
}

// A .gitattributes past these is read no further: every rule is matched against every file.
const MAX_ATTRIBUTES_TEXT = 100_000;
const MAX_ATTRIBUTE_RULES = 1_000;

// GitHub Linguist's two attributes that keep a file out of diffs and language statistics.
// https://github.com/github-linguist/linguist/blob/main/docs/overrides.md
const GENERATED_ATTRIBUTES = new Set(["linguist-generated", "linguist-vendored"]);

/** Lockfiles, compared without case. */
export const LOCKFILES: readonly string[] = [
  "package-lock.json",
  "npm-shrinkwrap.json",
  "yarn.lock",
  "pnpm-lock.yaml",
  "bun.lockb",
  "Cargo.lock",
  "Gemfile.lock",
  "composer.lock",
  "poetry.lock",
  "Pipfile.lock",
  "uv.lock",
  "go.sum",
  "mix.lock",
  "Podfile.lock",
  "packages.lock.json",
  "flake.lock",
  "pubspec.lock",
  "gradle.lockfile",
];

/** Directories, at any depth, of vendored or generated files; compared without case. */
export const GENERATED_DIRECTORIES: readonly string[] = [
  "vendor",
  "third_party",
  "third-party",
  "node_modules",
  "dist",
  "__snapshots__",
];

/**
 * File names of generated files, as globs. A glob all in lower case ignores case (`*.min.js`
 * matches `App.MIN.JS`); one with capitals matches exactly, since there the case is the
 * convention (`*Test.java` matches `ParserTest.java`, not `Contest.java`).
 */
export const GENERATED_FILE_NAMES: readonly string[] = [
  "*.min.js",
  "*.min.css",
  "*.map",
  "*.snap",
  "*.pb.go",
  "*_pb2.py",
  "*.pb.ts",
  "*.generated.*",
  "*.g.dart",
  "*.designer.cs",
];

/** Directories, at any depth, of tests; compared without case. */
export const TEST_DIRECTORIES: readonly string[] = [
  "test",
  "tests",
  "__tests__",
  "spec",
  "specs",
  "testdata",
  "test-data",
  "fixtures",
  "e2e",
];

/** File names of tests, as globs compared as GENERATED_FILE_NAMES are. */
export const TEST_FILE_NAMES: readonly string[] = [
  "*.test.*",
  "*.spec.*",
  "*_test.go",
  "*_test.py",
  "test_*.py",
  "*Test.java",
  "*Tests.java",
  "*Test.kt",
  "*Tests.cs",
  "*_spec.rb",
];

/** Directories, at any depth, of documentation; compared without case. */
export const DOCS_DIRECTORIES: readonly string[] = ["docs", "doc"];

/** Extensions of documentation; compared without case. */
export const DOCS_EXTENSIONS: readonly string[] = [".md", ".mdx", ".rst", ".adoc", ".txt"];

/** Names of documentation whatever their extension (`LICENSE`, `NOTICE.txt`); without case. */
export const DOCS_FILE_NAMES: readonly string[] = [
  "LICENSE",
  "LICENCE",
  "CHANGELOG",
  "AUTHORS",
  "NOTICE",
];

/** `.txt` files that are build input, not prose: code despite DOCS_EXTENSIONS; as globs. */
export const CODE_TEXT_FILE_NAMES: readonly string[] = ["CMakeLists.txt", "requirements*.txt"];

/** Globs of names, built once: one in lower case is compared without case. */
function nameMatchers(globs: readonly string[]): Array<[caseless: boolean, GlobMatcher]> {
  return globs.map((glob) => [glob === glob.toLowerCase(), createGlobMatcher(glob)]);
}

function matchesName(matchers: Array<[boolean, GlobMatcher]>, name: string): boolean {
  const lower = name.toLowerCase();
  return matchers.some(([caseless, matches]) => matches(caseless ? lower : name));
}

function lowerSet(names: readonly string[]): Set<string> {
  return new Set(names.map((name) => name.toLowerCase()));
}

/**
 * The pattern at the start of a line and where it ends. git allows a C-style quoted pattern
 * (`"a b.txt" -diff`) for names with spaces; here a backslash in one takes the next character
 * as it is, which covers `\"` and `\\` (git's `\t` and octal escapes are not read).
 */
function readPattern(line: string): { pattern: string; end: number } | undefined {
  if (!line.startsWith('"')) {
    const end = line.search(/\s/);
    return { pattern: end < 0 ? line : line.slice(0, end), end: end < 0 ? line.length : end };
  }
  let pattern = "";
  for (let i = 1; i < line.length; i++) {
    const char = line[i] as string;
    if (char === '"') return { pattern, end: i + 1 };
    if (char === "\\" && i + 1 < line.length) pattern += line[++i];
    else pattern += char;
  }
  return undefined;
}

/** What one attribute of a line says: true when set, false when unset, else undefined. */
function readAttribute(attribute: string): { name: string; set: boolean | undefined } {
  if (attribute.startsWith("-")) return { name: attribute.slice(1), set: false };
  // `!attr` returns an attribute to unspecified: it says nothing.
  if (attribute.startsWith("!")) return { name: attribute.slice(1), set: undefined };
  const equals = attribute.indexOf("=");
  if (equals < 0) return { name: attribute, set: true };
  const value = attribute.slice(equals + 1);
  return {
    name: attribute.slice(0, equals),
    set: value === "true" ? true : value === "false" ? false : undefined,
  };
}

/**
 * Whether a line of attributes marks its pattern generated (true), not generated (false), or
 * says nothing about it (undefined). The two attributes are folded into one: a line that sets
 * either marks the file generated, one that only unsets them marks it not generated. (git keeps
 * them apart, so `-linguist-generated` after `linguist-vendored` leaves a file vendored; here the
 * later line wins. Such overlaps are rare enough not to carry two flags.)
 */
function readGenerated(line: string, from: number): boolean | undefined {
  let generated: boolean | undefined;
  // Attributes are read in place, not split into an array: a hostile line holds tens of
  // thousands, and only the linguist ones are worth a string of their own.
  let start = -1;
  for (let i = from; i <= line.length; i++) {
    if (i < line.length && !isSpace(line.charCodeAt(i))) {
      if (start < 0) start = i;
      continue;
    }
    if (start < 0) continue;
    const prefix = line[start] === "-" || line[start] === "!" ? start + 1 : start;
    if (line.startsWith("linguist-", prefix)) {
      const { name, set } = readAttribute(line.slice(start, i));
      if (GENERATED_ATTRIBUTES.has(name) && set !== undefined) {
        generated = generated === true || set;
      }
    }
    start = -1;
  }
  return generated;
}

/** Space, tab, and the other ASCII whitespace git splits attributes on. */
function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

/**
 * The linguist-generated and linguist-vendored rules of a `.gitattributes` file, in order.
 * https://git-scm.com/docs/gitattributes
 */
export function parseGitAttributes(text: string): GitAttributes {
  const rules: GitAttributes["rules"] = [];
  const capped = text.slice(0, MAX_ATTRIBUTES_TEXT);
  for (let start = 0; start < capped.length && rules.length < MAX_ATTRIBUTE_RULES;) {
    const newline = capped.indexOf("\n", start);
    const end = newline < 0 ? capped.length : newline;
    const line = capped.slice(start, end).trim();
    start = end + 1;
    if (line === "" || line.startsWith("#")) continue;
    const read = readPattern(line);
    // Negative patterns are not allowed in .gitattributes; git ignores such lines.
    if (!read || read.pattern === "" || read.pattern.startsWith("!")) continue;
    const generated = readGenerated(line, read.end);
    if (generated !== undefined) rules.push({ pattern: read.pattern, generated });
  }
  return { rules };
}

const LOCKFILE_NAMES = lowerSet(LOCKFILES);
const GENERATED_DIRECTORY_NAMES = lowerSet(GENERATED_DIRECTORIES);
const TEST_DIRECTORY_NAMES = lowerSet(TEST_DIRECTORIES);
const DOCS_DIRECTORY_NAMES = lowerSet(DOCS_DIRECTORIES);
const DOCS_NAMES = lowerSet(DOCS_FILE_NAMES);
const GENERATED_NAMES = nameMatchers(GENERATED_FILE_NAMES);
const TEST_NAMES = nameMatchers(TEST_FILE_NAMES);
const CODE_TEXT_NAMES = nameMatchers(CODE_TEXT_FILE_NAMES);

function isGeneratedByPath(directories: string[], name: string): boolean {
  return (
    LOCKFILE_NAMES.has(name.toLowerCase()) ||
    directories.some((directory) => GENERATED_DIRECTORY_NAMES.has(directory)) ||
    matchesName(GENERATED_NAMES, name)
  );
}

function isTest(directories: string[], name: string): boolean {
  return (
    directories.some((directory) => TEST_DIRECTORY_NAMES.has(directory)) ||
    matchesName(TEST_NAMES, name)
  );
}

function isDocs(directories: string[], name: string): boolean {
  const lower = name.toLowerCase();
  const firstDot = lower.indexOf(".");
  const stem = firstDot < 0 ? lower : lower.slice(0, firstDot);
  const extension = firstDot < 0 ? "" : lower.slice(lower.lastIndexOf("."));
  return (
    directories.some((directory) => DOCS_DIRECTORY_NAMES.has(directory)) ||
    DOCS_NAMES.has(stem) ||
    (DOCS_EXTENSIONS.includes(extension) && !matchesName(CODE_TEXT_NAMES, name))
  );
}

/**
 * What a changed file is, for the order of review: generated (by `.gitattributes`, whose last
 * matching rule decides both ways, or else by the lists above), then test, then docs, else code.
 */
export function classifyFile(path: string, attributes: GitAttributes): FileCategory {
  return createFileClassifier(attributes)(path);
}

/** `classifyFile` for many paths, the `.gitattributes` rules built once. */
export function createFileClassifier(attributes: GitAttributes): (path: string) => FileCategory {
  const rules = attributes.rules
    .map((rule) => ({ generated: rule.generated, matches: createGlobMatcher(rule.pattern) }))
    .reverse();
  return (path) => {
    const segments = path.split("/");
    const name = segments.pop() ?? "";
    const directories = segments.map((segment) => segment.toLowerCase());
    // The last matching rule decides.
    const byAttributes = rules.find((rule) => rule.matches(path))?.generated;
    if (byAttributes ?? isGeneratedByPath(directories, name)) return "generated";
    if (isTest(directories, name)) return "test";
    if (isDocs(directories, name)) return "docs";
    return "code";
  };
}

import { createFileClassifier, FILE_CATEGORIES } from "./classify-file.js";
import type { FileCategory, GitAttributes } from "./classify-file.js";
import { createGlobMatcher, type GlobMatcher } from "./match-glob.js";
import { isDeleteOnly, parsePatch } from "./parse-patch.js";
import type { Hunk } from "./parse-patch.js";
import type { PullRequestFile } from "./pull-request-file.js";
import { escapeName } from "../markdown/safe-text.js";
import { sliceWhole } from "../slice-whole.js";

export interface ReviewInput {
  file: PullRequestFile;
  category: FileCategory;
  /** The hunks that add something: delete-only hunks are removed. */
  hunks: Hunk[];
  /** The file as the prompt shows it: renderFileDiff(file, hunks), cleaned by `clean`. */
  text: string;
  tokens: number;
}

export type SkipReason =
  | "ignored"
  | "removed"
  | "deletions-only"
  | "no-patch"
  | "over-budget"
  | "over-file-limit"
  | "unchanged";

export interface FileSelection {
  /** In the order of review: code, test, docs, generated; GitHub's order within each. */
  reviewed: ReviewInput[];
  /** Every other file, in GitHub's order. */
  skipped: Array<{ path: string; reason: SkipReason; category?: FileCategory }>;
}

export interface SelectFilesOptions {
  files: readonly PullRequestFile[];
  /** Tokens for all the rendered files together. */
  maxTokens: number;
  /** TokenCounter.countTokens: counting stops once it passes `limit`. */
  countTokens: (text: string, limit?: number) => number;
  /**
   * What the prompt's code fence makes of a file's text (cleanCode: secrets scrubbed, invisible
   * characters gone): the text is counted as the model is sent it.
   */
  clean: (text: string) => string;
  /** The `review.ignore` globs. */
  ignore: readonly string[];
  attributes: GitAttributes;
  /** Files beyond GitHub's list (a PR with more than 3,000 files): each is reported "over-file-limit". Just a count. */
  unlisted?: number;
}

// A line of code longer than this is minified or data: its head tells the model enough.
const MAX_LINE_CHARS = 500;
// Line numbers are right-aligned to this width, so the code lines up.
const LINE_NUMBER_WIDTH = 5;
const DELETED_PREFIX = `${" ".repeat(LINE_NUMBER_WIDTH + 1)}-`;

// Unicode's line terminators but `\n`, which a line's text cannot hold: CR, VT, FF, NEL, and the
// line and paragraph separators.
const LINE_BREAKS = /[\r\v\f\u0085\u2028\u2029]/g;

/**
 * A line's text with every line terminator in it written as an escape, as escapeName writes them
 * in names (`\x0d`, `\u{2028}`), so that each line of the file stays on its one numbered line
 * (its other characters, code, are shown as they are).
 * A bare `\r`, which git keeps inside a line, became a line break in the prompt's code fence,
 * after the lines were numbered: an added line forged another file's section, with numbered
 * lines of its own (found by a review).
 */
function escapeLineBreaks(text: string): string {
  return text.replace(LINE_BREAKS, (char) => {
    const code = char.charCodeAt(0);
    return code < 0xa0 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}

/** `text` cut to `max` characters, never inside a surrogate pair, with `…` when cut. */
function capText(text: string, max: number): string {
  return text.length <= max ? text : `${sliceWhole(text, max)}…`;
}

/**
 * One file for the model, with the new file's line numbers so that it can cite them:
 * ```
 * ### src/a.ts (renamed from src/b.ts)
 * @@ -10,3 +10,4 @@ function f()
 *    10  unchanged line
 *       -removed line
 *    11 +added line
 * ```
 */
export function renderFileDiff(file: PullRequestFile, hunks: Hunk[]): string {
  const renamed =
    file.previous_filename !== undefined && file.previous_filename !== file.filename
      ? ` (renamed from ${escapeName(file.previous_filename)})`
      : "";
  // Appended to one string rather than joined from an array: V8 builds it as a rope, where an
  // array of a long patch's lines lands in the large-object space and makes the cost per line
  // several times higher past some 16,000 lines.
  let text = `### ${escapeName(file.filename)}${renamed}`;
  for (const hunk of hunks) {
    text += `\n${escapeName(capText(hunk.header, MAX_LINE_CHARS))}`;
    for (const line of hunk.lines) {
      const content = escapeLineBreaks(capText(line.text, MAX_LINE_CHARS));
      if (line.kind === "delete") {
        text += `\n${DELETED_PREFIX}${content}`;
      } else {
        const number = String(line.newLine ?? "").padStart(LINE_NUMBER_WIDTH);
        text += `\n${number} ${line.kind === "add" ? "+" : " "}${content}`;
      }
    }
  }
  return text;
}

type Triage =
  { reason: SkipReason; category?: FileCategory } | { category: FileCategory; hunks: Hunk[] };

/** Why a file is not reviewed whatever the budget, or its category and the hunks to review. */
function triageFile(
  file: PullRequestFile,
  ignore: GlobMatcher[],
  classify: (path: string) => FileCategory,
): Triage {
  if (ignore.some((matches) => matches(file.filename))) return { reason: "ignored" };
  const category = classify(file.filename);
  if (file.status === "removed") return { reason: "removed", category };
  const hunks = file.patch ? parsePatch(file.patch) : [];
  if (hunks.length === 0) {
    // A rename or a mode change alone has no diff, and nothing to review; an added or modified
    // file without one is binary or too large, and GitHub reports 0 changes for binaries too.
    const unchanged =
      file.status === "unchanged" ||
      (file.changes === 0 && ["renamed", "copied", "changed"].includes(file.status));
    return { reason: unchanged ? "unchanged" : "no-patch", category };
  }
  const adding = hunks.filter((hunk) => !isDeleteOnly(hunk));
  if (adding.length === 0) return { reason: "deletions-only", category };
  return { category, hunks: adding };
}

/**
 * The files of a pull request that fit the review's token budget, and why each other one is
 * left out. Files are taken code first, then tests, docs and generated files, each greedily:
 * one that does not fit what is left is skipped and the next is still tried, so a huge file
 * does not keep the smaller ones after it from review.
 */
export function selectFiles(options: SelectFilesOptions): FileSelection & { unlisted: number } {
  const skipped: Array<FileSelection["skipped"][number] & { index: number }> = [];
  // Each glob and rule built once for all the files, not once a file.
  const ignore = options.ignore.map(createGlobMatcher);
  const classify = createFileClassifier(options.attributes);
  const candidates: Array<{
    index: number;
    file: PullRequestFile;
    category: FileCategory;
    hunks: Hunk[];
  }> = [];
  for (const [index, file] of options.files.entries()) {
    const triage = triageFile(file, ignore, classify);
    if ("reason" in triage) skipped.push({ index, path: file.filename, ...triage });
    else candidates.push({ index, file, ...triage });
  }
  // Array.prototype.sort is stable: GitHub's order stays within a category.
  candidates.sort(
    (a, b) => FILE_CATEGORIES.indexOf(a.category) - FILE_CATEGORIES.indexOf(b.category),
  );
  const reviewed: ReviewInput[] = [];
  let remaining = options.maxTokens;
  for (const { index, file, category, hunks } of candidates) {
    // Counted after cleaning: scrubbing lengthens some text (`://:x@` has its `x` replaced by
    // `[REDACTED]`), and a diff counted before it reached the model at 2.5 times its budget, past
    // the job's cap, where the run refused it (found by a review).
    const text = options.clean(renderFileDiff(file, hunks));
    // One past what is left is enough to know the file does not fit; counting stops there.
    const tokens = options.countTokens(text, Math.max(remaining, 0) + 1);
    if (tokens <= remaining) {
      reviewed.push({ file, category, hunks, text, tokens });
      remaining -= tokens;
    } else {
      skipped.push({ index, path: file.filename, reason: "over-budget", category });
    }
  }
  skipped.sort((a, b) => a.index - b.index);
  return {
    reviewed,
    skipped: skipped.map(({ path, reason, category }) =>
      category ? { path, reason, category } : { path, reason },
    ),
    unlisted: Math.max(0, options.unlisted ?? 0),
  };
}

import type { Hunk } from "./parse-patch.js";
import { sliceWhole } from "../slice-whole.js";

export type Severity = "critical" | "major" | "minor" | "nit";

/** Most severe first: the order in which comments are kept. */
export const SEVERITIES: readonly Severity[] = ["critical", "major", "minor", "nit"];

/** A comment as the model proposes it. */
export interface CommentDraft {
  path: string;
  line: number;
  startLine?: number | undefined;
  severity: Severity;
  body: string;
  /** replacement text for lines startLine..line of the new file */
  suggestion?: string | undefined;
  /** what the model says those lines are now; a suggestion is kept only when this equals the new file's text there */
  original?: string | undefined;
}

/**
 * A comment of a pull request review, as `POST /repos/{owner}/{repo}/pulls/{n}/reviews` takes
 * it in `comments`, with its severity for whoever writes the review.
 * https://docs.github.com/en/rest/pulls/reviews#create-a-review-for-a-pull-request
 */
export interface PlacedComment {
  path: string;
  line: number;
  side: "RIGHT";
  start_line?: number;
  start_side?: "RIGHT";
  /** The model's words, with its severity; no suggestion of theirs (see `disarmSuggestions`). */
  body: string;
  /**
   * The checked suggestion, as a `suggestion` block to append to the body. Kept apart so that
   * only this block is made safe as a suggestion, never one the model spelt into its words.
   */
  suggestion?: string;
  severity: Severity;
}

/** Why a draft was not placed; "duplicate": a more severe or earlier draft has its path and line. */
export type DropReason =
  "unknown-file" | "not-in-diff" | "range-spans-hunks" | "duplicate" | "over-limit";

export interface PlaceCommentsOptions {
  drafts: readonly CommentDraft[];
  /** The hunks of each file the model was shown, by path. */
  files: ReadonlyMap<string, Hunk[]>;
  maxComments: number;
}

export interface PlacedComments {
  placed: PlacedComment[];
  dropped: Array<{ draft: CommentDraft; reason: DropReason }>;
  /** Comments placed without the suggestion their draft had. */
  suggestionsDropped: number;
}

// The model's prose and its suggestion are each cut or dropped past this; GitHub takes 65,536
// characters in a comment, and a longer remark is not one a reviewer reads.
const MAX_BODY_CHARS = 4_000;
const MAX_SUGGESTION_CHARS = 4_000;

const LABELS: Record<Severity, string> = {
  critical: "Critical",
  major: "Major",
  minor: "Minor",
  nit: "Nit",
};

/** The new-file lines of a file's hunks: which hunk holds each, and its text. */
interface NewLines {
  lines: Map<number, { hunk: number; text: string }>;
  /** New-file lines per hunk, which bounds the walk over a range. */
  sizes: number[];
}

function indexNewLines(hunks: Hunk[]): NewLines {
  const lines = new Map<number, { hunk: number; text: string }>();
  const sizes = hunks.map((hunk, index) => {
    let size = 0;
    for (const line of hunk.lines) {
      if (line.newLine === undefined || line.kind === "delete") continue;
      size++;
      if (!lines.has(line.newLine)) lines.set(line.newLine, { hunk: index, text: line.text });
    }
    return size;
  });
  return { lines, sizes };
}

/**
 * Why `draft` cannot be placed on the diff, or its first line and the new file's text of its
 * lines. GitHub rejects a review whose comments are not on a line of the diff, or whose range
 * crosses from one hunk to another, so such drafts never reach it.
 */
function locate(
  draft: CommentDraft,
  index: NewLines,
): { reason: DropReason } | { start: number; texts: string[] } {
  const end = index.lines.get(draft.line);
  if (!Number.isSafeInteger(draft.line) || !end) return { reason: "not-in-diff" };
  const start =
    draft.startLine !== undefined && draft.startLine < draft.line ? draft.startLine : draft.line;
  const first = index.lines.get(start);
  if (!Number.isSafeInteger(start) || !first) return { reason: "not-in-diff" };
  if (first.hunk !== end.hunk || draft.line - start >= (index.sizes[end.hunk] ?? 0)) {
    return { reason: "range-spans-hunks" };
  }
  const texts: string[] = [];
  for (let line = start; line <= draft.line; line++) {
    const at = index.lines.get(line);
    if (at?.hunk !== end.hunk) return { reason: "range-spans-hunks" };
    texts.push(at.text);
  }
  return { start, texts };
}

/** `text` as lines: `\r\n` read as `\n`, and one trailing newline not a line of its own. */
function toLines(text: string): string[] {
  const normal = text.replace(/\r\n?/g, "\n");
  return (normal.endsWith("\n") ? normal.slice(0, -1) : normal).split("\n");
}

/** Whether the model's `original` is the new file's text, trailing whitespace aside. */
function isOriginal(original: string, texts: string[]): boolean {
  const lines = toLines(original);
  return (
    lines.length === texts.length &&
    lines.every((line, i) => line.trimEnd() === texts[i]!.trimEnd())
  );
}

/** The longest run of backticks in `text`. */
function longestBacktickRun(text: string): number {
  let longest = 0;
  let run = 0;
  for (const char of text) {
    run = char === "`" ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

/**
 * A suggested change, which GitHub shows with a button that commits it: the block's text
 * replaces the commented lines, and an empty block deletes them. The fence is longer than any
 * run of backticks in the text, so none of it can close the block.
 * https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/reviewing-changes-in-pull-requests/incorporating-feedback-in-your-pull-request
 */
function renderSuggestion(suggestion: string): string {
  const fence = "`".repeat(Math.max(3, longestBacktickRun(suggestion) + 1));
  const lines = suggestion === "" ? [] : toLines(suggestion);
  return [`${fence}suggestion`, ...lines, fence].join("\n");
}

const SUGGESTION = "suggestion";

/**
 * `text` with every fenced block that says `suggestion` relabelled `text`: a suggestion the
 * model writes into its prose would get GitHub's commit button without the check against the
 * diff that a draft's `suggestion` gets. Scanned by hand, since a RegExp for a fence of 3 or more
 * backticks rescans a long run from each of its characters.
 */
function disarmSuggestions(text: string): string {
  let out = "";
  let copied = 0;
  for (let i = 0; i < text.length;) {
    const char = text[i];
    if (char !== "`" && char !== "~") {
      i++;
      continue;
    }
    let end = i;
    while (text[end] === char) end++;
    let info = end;
    while (text[info] === " " || text[info] === "\t") info++;
    if (end - i >= 3 && text.slice(info, info + SUGGESTION.length).toLowerCase() === SUGGESTION) {
      out += `${text.slice(copied, info)}text`;
      copied = info + SUGGESTION.length;
    }
    i = end;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

function capBody(body: string): string {
  return body.length <= MAX_BODY_CHARS ? body : `${sliceWhole(body, MAX_BODY_CHARS)}…`;
}

/**
 * The body of a placed comment: its severity, the model's words (any suggestion block of its
 * own disarmed), and its suggestion when the model quoted the lines it replaces right (one
 * written against lines it misread would commit nonsense with one click); and whether the
 * suggestion, if any, was kept.
 */
function renderBody(
  draft: CommentDraft,
  texts: string[],
): { body: string; suggestion?: string; kept: boolean } {
  const words = disarmSuggestions(capBody(draft.body.trim()));
  const prose = `**${LABELS[draft.severity] ?? "Note"}:** ${words}`;
  const { suggestion, original } = draft;
  if (suggestion === undefined) return { body: prose, kept: true };
  const fits = suggestion.length <= MAX_SUGGESTION_CHARS;
  if (!fits || original === undefined || !isOriginal(original, texts)) {
    return { body: prose, kept: false };
  }
  return { body: prose, suggestion: renderSuggestion(suggestion), kept: true };
}

/**
 * The drafts that can be posted as inline comments of a review, most severe first and at most
 * `maxComments` of them, and why each other one is not. A draft is placed only on new-file
 * lines of one hunk (a range from `startLine`, when it is less than `line`, must stay in that
 * hunk), and only the first of several drafts on one line is kept.
 */
export function placeComments(options: PlaceCommentsOptions): PlacedComments {
  const rank = (severity: Severity) => {
    const at = SEVERITIES.indexOf(severity);
    return at < 0 ? SEVERITIES.length : at;
  };
  // Array.prototype.sort is stable: drafts of one severity keep the model's order.
  const ranked = [...options.drafts].sort((a, b) => rank(a.severity) - rank(b.severity));
  const indexes = new Map<string, NewLines>();
  const taken = new Map<string, Set<number>>();
  const placed: PlacedComment[] = [];
  const dropped: PlacedComments["dropped"] = [];
  let suggestionsDropped = 0;
  for (const draft of ranked) {
    const hunks = options.files.get(draft.path);
    if (!hunks) {
      dropped.push({ draft, reason: "unknown-file" });
      continue;
    }
    let index = indexes.get(draft.path);
    if (!index) indexes.set(draft.path, (index = indexNewLines(hunks)));
    const location = locate(draft, index);
    if ("reason" in location) {
      dropped.push({ draft, reason: location.reason });
      continue;
    }
    const lines = taken.get(draft.path) ?? new Set<number>();
    taken.set(draft.path, lines);
    if (lines.has(draft.line)) {
      dropped.push({ draft, reason: "duplicate" });
      continue;
    }
    if (placed.length >= options.maxComments) {
      dropped.push({ draft, reason: "over-limit" });
      continue;
    }
    lines.add(draft.line);
    const { body, suggestion, kept } = renderBody(draft, location.texts);
    if (!kept) suggestionsDropped++;
    placed.push({
      path: draft.path,
      line: draft.line,
      side: "RIGHT",
      ...(location.start < draft.line ? { start_line: location.start, start_side: "RIGHT" } : {}),
      body,
      ...(suggestion === undefined ? {} : { suggestion }),
      severity: draft.severity,
    });
  }
  return { placed, dropped, suggestionsDropped };
}

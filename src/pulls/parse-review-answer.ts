import { z } from "zod";
import type { CommentDraft } from "./place-comments.js";

const MAX_ANSWER_CHARS = 200_000;
const MAX_DRAFTS = 100;
// Objects tried before the answer counts as prose; the review is usually the first.
const MAX_CANDIDATES = 16;
const JSON_WHITESPACE = " \t\n\r";

// A line number as a model writes it: a number, or one in a string ("12"). Coerced as anything
// else, `true` was line 1 and `[5]` line 5: a comment placed on a line the model did not name.
const LineNumber = z
  .union([
    z.number(),
    z
      .string()
      .max(20)
      .regex(/^\s*\d+\s*$/)
      .transform(Number),
  ])
  .pipe(z.number().int().positive());

const Draft = z.object({
  // A name as the prompt shows it (escapeName): an invisible character takes up to 9, so a
  // path git allows (4,096 bytes) can pass 1,000; one that long was dropped as malformed.
  path: z.string().min(1).max(40_000),
  line: LineNumber,
  // 0 or "" for "no range", as a model writes it: a one-line comment, not a malformed one.
  start_line: z.preprocess(
    (value) => (value === 0 || value === "" ? null : value),
    LineNumber.nullish(),
  ),
  severity: z.enum(["critical", "major", "minor", "nit"]).catch("minor"),
  body: z.string().min(1),
  original: z.string().nullish(),
  suggestion: z.string().nullish(),
});

// `null` for "none", as a model writes it: a review all the same (it had been posted as its
// raw JSON, every inline comment lost).
const Answer = z.object({
  verdict: z
    .string()
    .nullish()
    .transform((verdict) => verdict ?? ""),
  comments: z
    .array(z.unknown())
    .nullish()
    .transform((comments) => comments ?? []),
});

export interface ReviewAnswer {
  verdict: string;
  drafts: CommentDraft[];
  /** Comments the model wrote that are not comments (no path, no line): dropped. */
  malformed: number;
  /** False when the answer was not the JSON asked for: its text is the verdict. */
  structured: boolean;
  /**
   * The output limit cut the answer, and its JSON did not parse whole: what it had finished (the
   * verdict, each whole comment) is kept, and nothing else; the text is never the verdict.
   */
  cut: boolean;
}

/**
 * The model's review, as the prompt asks for it: one JSON object, perhaps in a code fence. An
 * answer that is not JSON becomes the verdict alone, with no inline comments: the model's text
 * is kept, and nothing is placed on a line it did not name. An answer the output limit `cut`
 * keeps what it had finished of the JSON, if anything: its text is a half-written object, which
 * posted as the verdict had lost every inline comment.
 */
export function parseReviewAnswer(text: string, options: { cut?: boolean } = {}): ReviewAnswer {
  const bounded = text.slice(0, MAX_ANSWER_CHARS);
  const whole = findAnswer(bounded);
  const cut = !whole && options.cut === true;
  const answer = whole ?? (cut ? recoverCutAnswer(bounded) : undefined);
  if (!answer) {
    const verdict = cut ? "" : text.trim();
    return { verdict, drafts: [], malformed: 0, structured: false, cut };
  }
  const drafts: CommentDraft[] = [];
  let malformed = 0;
  for (const item of answer.comments.slice(0, MAX_DRAFTS)) {
    const draft = Draft.safeParse(item);
    if (!draft.success) {
      malformed++;
      continue;
    }
    const { start_line, original, suggestion, ...rest } = draft.data;
    drafts.push({
      ...rest,
      startLine: start_line ?? undefined,
      original: original ?? undefined,
      suggestion: suggestion ?? undefined,
    });
  }
  malformed += Math.max(0, answer.comments.length - MAX_DRAFTS);
  return { verdict: answer.verdict.trim(), drafts, malformed, structured: true, cut };
}

/**
 * The first JSON object in the text that is a review (it has a verdict or comments), wherever the
 * model's prose around it puts braces. Each candidate is a `{` that opens a key, read to its
 * balanced `}` with strings and escapes skipped. A scan may run to the end of the text, so only
 * MAX_CANDIDATES are scanned: linear work on any input.
 */
function findAnswer(text: string): z.infer<typeof Answer> | undefined {
  for (const at of candidates(text)) {
    const end = valueEnd(text, at);
    if (end < 0) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text.slice(at, end));
    } catch {
      continue;
    }
    if (typeof raw !== "object" || raw === null || !("verdict" in raw || "comments" in raw))
      continue;
    const answer = Answer.safeParse(raw);
    if (answer.success) return answer.data;
  }
  return undefined;
}

/** Each `{` that opens a key, as a JSON object's first key: at most MAX_CANDIDATES of them. */
function* candidates(text: string): Generator<number> {
  let scanned = 0;
  for (let at = text.indexOf("{"); at >= 0; at = text.indexOf("{", at + 1)) {
    if (!opensKey(text, at)) continue;
    if (++scanned > MAX_CANDIDATES) return;
    yield at;
  }
}

/**
 * Whether the `{` at `at` is followed, past whitespace, by a quote, as a JSON object's first key
 * is. Cheap: each run of whitespace is read once, from the brace just before it.
 */
function opensKey(text: string, at: number): boolean {
  return text[skipWhitespace(text, at + 1)] === '"';
}

/**
 * What a review object cut short holds whole: its verdict, if its string was closed, and each
 * comment object closed before the cut. Read as findAnswer reads, from each candidate `{` (at
 * most MAX_CANDIDATES), key by key at the top level and item by item in `comments`, each value
 * skipped past with strings and escapes read: every character is read once per candidate, so
 * the work is linear on any input (no regular expression backtracks over the model's text).
 */
function recoverCutAnswer(text: string): z.infer<typeof Answer> | undefined {
  for (const at of candidates(text)) {
    const found = readCutObject(text, at);
    if (found.verdict !== undefined || found.comments.length > 0)
      return { verdict: found.verdict ?? "", comments: found.comments };
  }
  return undefined;
}

function readCutObject(
  text: string,
  start: number,
): { verdict: string | undefined; comments: unknown[] } {
  let verdict: string | undefined;
  const comments: unknown[] = [];
  let i = skipWhitespace(text, start + 1);
  while (text[i] === '"') {
    const keyEnd = valueEnd(text, i);
    if (keyEnd < 0) break;
    const key = parseJson(text.slice(i, keyEnd));
    i = skipWhitespace(text, keyEnd);
    if (text[i] !== ":") break;
    i = skipWhitespace(text, i + 1);
    if (key === "comments" && text[i] === "[") {
      i = skipWhitespace(text, i + 1);
      // Each comment is kept only when its object closed: a comment cut in its body or before
      // its line would be posted with half its words, or not where the model meant.
      while (i < text.length && text[i] !== "]") {
        const end = valueEnd(text, i);
        if (end < 0) return { verdict, comments };
        comments.push(parseJson(text.slice(i, end)));
        i = skipWhitespace(text, end);
        if (text[i] !== ",") break;
        i = skipWhitespace(text, i + 1);
      }
      if (text[i] !== "]") break;
      i = skipWhitespace(text, i + 1);
    } else {
      const end = valueEnd(text, i);
      if (end < 0) break;
      const value = key === "verdict" ? parseJson(text.slice(i, end)) : undefined;
      if (typeof value === "string") verdict = value;
      i = skipWhitespace(text, end);
    }
    if (text[i] !== ",") break;
    i = skipWhitespace(text, i + 1);
  }
  return { verdict, comments };
}

/**
 * Where the JSON value that starts at `at` ends (the index past it), or -1 when the text ends
 * first: brackets are counted outside strings, and a string ends at its unescaped quote.
 */
function valueEnd(text: string, at: number): number {
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      i = stringEnd(text, i);
      if (i < 0) return -1;
      if (depth === 0) return i + 1;
    } else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      if (--depth === 0) return i + 1;
      if (depth < 0) return i;
    } else if (depth === 0 && (c === "," || JSON_WHITESPACE.includes(c))) return i;
  }
  // A number or a literal may be cut too: only a closing character says it is whole.
  return -1;
}

/** The index of the quote that closes the string opened at `at`, or -1 when the text ends first. */
function stringEnd(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

function skipWhitespace(text: string, at: number): number {
  let i = at;
  while (i < text.length && JSON_WHITESPACE.includes(text[i]!)) i++;
  return i;
}

/** The JSON text's value, or undefined when it is not JSON (a comment malformed inside). */
function parseJson(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

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
}

/**
 * The model's review, as the prompt asks for it: one JSON object, perhaps in a code fence. An
 * answer that is not JSON becomes the verdict alone, with no inline comments: the model's text
 * is kept, and nothing is placed on a line it did not name.
 */
export function parseReviewAnswer(text: string): ReviewAnswer {
  const answer = findAnswer(text.slice(0, MAX_ANSWER_CHARS));
  if (!answer) return { verdict: text.trim(), drafts: [], malformed: 0, structured: false };
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
  return { verdict: answer.verdict.trim(), drafts, malformed, structured: true };
}

/**
 * The first JSON object in the text that is a review (it has a verdict or comments), wherever the
 * model's prose around it puts braces. Each candidate is a `{` that opens a key, read to its
 * balanced `}` with strings and escapes skipped. A scan may run to the end of the text, so only
 * MAX_CANDIDATES are scanned: linear work on any input.
 */
function findAnswer(text: string): z.infer<typeof Answer> | undefined {
  let scanned = 0;
  for (let at = text.indexOf("{"); at >= 0; at = text.indexOf("{", at + 1)) {
    if (!opensKey(text, at)) continue;
    if (++scanned > MAX_CANDIDATES) return undefined;
    const end = findObjectEnd(text, at);
    if (end < 0) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text.slice(at, end + 1));
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

/**
 * Whether the `{` at `at` is followed, past whitespace, by a quote, as a JSON object's first key
 * is. Cheap: each run of whitespace is read once, from the brace just before it.
 */
function opensKey(text: string, at: number): boolean {
  let i = at + 1;
  while (i < text.length && JSON_WHITESPACE.includes(text[i]!)) i++;
  return text[i] === '"';
}

/** Where the object opened at `start` closes, or -1: braces are counted outside strings. */
function findObjectEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return i;
  }
  return -1;
}

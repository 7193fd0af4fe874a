import { z } from "zod";
import type { CommentDraft } from "./place-comments.js";

const MAX_ANSWER_CHARS = 200_000;
const MAX_DRAFTS = 100;

const Draft = z.object({
  path: z.string().min(1).max(1_000),
  line: z.coerce.number().int().positive(),
  start_line: z.coerce.number().int().positive().nullish(),
  severity: z.enum(["critical", "major", "minor", "nit"]).catch("minor"),
  body: z.string().min(1),
  original: z.string().nullish(),
  suggestion: z.string().nullish(),
});

const Answer = z.object({
  verdict: z.string().default(""),
  comments: z.array(z.unknown()).default([]),
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
  const bounded = text.slice(0, MAX_ANSWER_CHARS);
  const start = bounded.indexOf("{");
  const end = bounded.lastIndexOf("}");
  let raw: unknown;
  try {
    raw = start >= 0 && end > start ? JSON.parse(bounded.slice(start, end + 1)) : undefined;
  } catch {
    raw = undefined;
  }
  const answer = Answer.safeParse(raw);
  if (!answer.success) return { verdict: text.trim(), drafts: [], malformed: 0, structured: false };
  const drafts: CommentDraft[] = [];
  let malformed = 0;
  for (const item of answer.data.comments.slice(0, MAX_DRAFTS)) {
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
  malformed += Math.max(0, answer.data.comments.length - MAX_DRAFTS);
  return { verdict: answer.data.verdict.trim(), drafts, malformed, structured: true };
}

import { createHash } from "node:crypto";

/**
 * Every comment Talos writes carries a hidden HTML comment marker on its last line. Markers let
 * Talos find its own reply again (to edit rather than duplicate it) and recognise its own text,
 * so it never acts on it. Only that position counts: a marker anywhere else (quoted, or in code)
 * is text.
 */
const MARKER_LINE = /^<!-- talos:[\w:.-]{1,80} -->$/;

/** Whether `body` ends as a comment Talos wrote does: with its marker alone on the last line. */
export function isTalosComment(body: string | null | undefined): boolean {
  const trimmed = (body ?? "").trimEnd();
  return MARKER_LINE.test(trimmed.slice(trimmed.lastIndexOf("\n") + 1));
}

/** The marker of the reply to the command in comment `commentId`. */
export function replyMarker(commentId: number): string {
  return `<!-- talos:reply:${commentId} -->`;
}

/** The marker of the one summary comment a thread keeps. */
export function summaryMarker(): string {
  return "<!-- talos:summary -->";
}

/** The marker of the triage comment on a new issue. */
export function triageMarker(issueNumber: number): string {
  return `<!-- talos:triage:${issueNumber} -->`;
}

/** The marker of the "possibly related" comment on a new issue. */
export function similarMarker(issueNumber: number): string {
  return `<!-- talos:similar:${issueNumber} -->`;
}

/**
 * The marker of a pull request's one summary comment, naming the head commit it describes and the
 * base branch its diff was read against (baseKey): after a retarget the same head has another
 * diff. The base comes last, so a marker written before it (the base unknown) reads the same.
 */
export function pullRequestSummaryMarker(headSha: string, baseRef: string): string {
  return `<!-- talos:pr-summary:${headSha}:${baseKey(baseRef)} -->`;
}

/**
 * The marker of a review of `headSha` against base branch `baseRef`: a push's review, or the
 * answer to the command in comment `commentId` (so that a resumed job finds the review it posted).
 */
export function reviewMarker(
  headSha: string,
  commentId: number | undefined,
  baseRef: string,
): string {
  return `<!-- talos:review:${headSha}:${commentId ?? ""}:${baseKey(baseRef)} -->`;
}

/** What a review's marker names: the head, the command's comment, the base (when written). */
export function readReviewMarker(marker: ParsedMarker): {
  sha: string | undefined;
  trigger: string | undefined;
  base: string | undefined;
} {
  const [sha, trigger, base] = marker.values;
  return { sha, trigger: trigger || undefined, base: base || undefined };
}

/**
 * The base branch as a marker names it: its name, not its commit, since the base branch moving
 * on (its own commits) brings the pull request nothing new to read. A name may hold characters a
 * marker cannot (`release/1.0`), so it is hashed: the key is only ever compared with another.
 */
export function baseKey(baseRef: string): string {
  return createHash("sha256").update(baseRef).digest("hex").slice(0, 12);
}

/** Whether a run whose marker names `base` read another base branch than `baseRef`. */
export function isOtherBase(base: string | undefined, baseRef: string): boolean {
  // A marker written before markers named their base: unknown, taken as the same.
  return base !== undefined && base !== baseKey(baseRef);
}

/** An inline comment of a review: Talos's, as every comment it writes is marked. */
export function reviewCommentMarker(headSha: string): string {
  return `<!-- talos:review-comment:${headSha} -->`;
}

/**
 * The marker on the last line of a body Talos wrote, split into its kind and values
 * (`pr-summary`, [sha]), or undefined when the body carries none there.
 */
export interface ParsedMarker {
  kind: string;
  values: string[];
}

export function readMarker(body: string | null | undefined): ParsedMarker | undefined {
  const trimmed = (body ?? "").trimEnd();
  const line = trimmed.slice(trimmed.lastIndexOf("\n") + 1);
  if (!MARKER_LINE.test(line)) return undefined;
  const [kind = "", ...values] = line.slice("<!-- talos:".length, -" -->".length).split(":");
  return { kind, values };
}

/** Appends a marker to a body, on its own line so Markdown rendering is unaffected. */
export function withMarker(body: string, marker: string): string {
  return `${body.trimEnd()}\n\n${marker}`;
}

/**
 * Whether `body` carries `marker` where `withMarker` puts it, on the last line. A marker anywhere
 * else (quoted, or in a code span of an answer) is text, not Talos's mark.
 */
export function hasMarkerAtEnd(body: string, marker: string): boolean {
  const trimmed = body.trimEnd();
  if (!trimmed.endsWith(marker)) return false;
  const before = trimmed.length - marker.length - 1;
  return before >= 0 && trimmed[before] === "\n";
}

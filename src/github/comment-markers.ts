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

/** The marker of a pull request's one summary comment, naming the head commit it describes. */
export function pullRequestSummaryMarker(headSha: string): string {
  return `<!-- talos:pr-summary:${headSha} -->`;
}

/**
 * The marker of a review of `headSha`: a push's review, or the answer to the command in comment
 * `commentId` (so that a resumed job finds the review it posted).
 */
export function reviewMarker(headSha: string, commentId?: number): string {
  return `<!-- talos:review:${headSha}${commentId === undefined ? "" : `:${commentId}`} -->`;
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

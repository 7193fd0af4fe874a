import type { IssueInfo } from "../github/create-repo-client.js";
import type { MemoryInput, MemoryStore } from "./memory-store.js";

/** The id of an issue's or a pull request's memory: its kind and number. */
export const issueMemoryId = (number: number, isPullRequest: boolean) =>
  `${isPullRequest ? "pull_request" : "issue"}-${number}`;

/**
 * What is remembered of an issue or pull request, and what similar ones are searched with: the
 * same text, so that its embedding is computed once (the embedder caches by text).
 */
export const issueMemoryText = (issue: Pick<IssueInfo, "title" | "body">) =>
  `${issue.title}\n\n${issue.body ?? ""}`.trim();

/**
 * The memory of an issue or pull request: its title and description, keyed by its number. With
 * `updatedAt` (its `updated_at` where the text came from), an older copy is not written over it:
 * events come out of order (a redelivery, a journaled job retried), and a backfill page may be
 * read before an edit that memory already holds.
 */
export function toIssueMemory(repo: string, issue: IssueInfo): MemoryInput {
  const { updatedAt } = issue;
  return {
    id: issueMemoryId(issue.number, issue.isPullRequest),
    kind: issue.isPullRequest ? "pull_request" : "issue",
    text: issueMemoryText(issue),
    repo,
    number: issue.number,
    author: issue.author ?? undefined,
    url: issue.url,
    createdAt: issue.createdAt || new Date(0).toISOString(),
    state: issue.state,
    ...(updatedAt ? { metadata: { updatedAt } } : {}),
  };
}

/** Notes and answers are named after the comment that asked for them, so a redelivery updates them. */
export const noteId = (commentId: number) => `note-${commentId}`;
export const answerId = (commentId: number) => `answer-${commentId}`;
/** A thread has one summary, updated in place: so has its memory. */
export const summaryId = (issueNumber: number) => `summary-${issueNumber}`;

/** Only what maintainers and Talos added can be forgotten; issues come back from GitHub. */
export const FORGETTABLE = /^(note|answer|summary)-\d+$/;

/** Where Talos gave an answer: the thread, the comment that asked, and when. */
export interface AnswerSource {
  repo: string;
  number: number;
  /** The app's slug: answers are Talos's own. */
  slug: string;
  url: string;
  createdAt: string;
}

/** An answer Talos gave, remembered so that a later question can recall it. */
export function toAnswerMemory(id: string, text: string, source: AnswerSource): MemoryInput {
  return {
    id,
    kind: "answer",
    text,
    repo: source.repo,
    number: source.number,
    author: `${source.slug}[bot]`,
    url: source.url,
    createdAt: source.createdAt,
  };
}

/**
 * Removes those of `ids` that are answers or summaries of thread `number` made at or after `since` (ISO
 * 8601): what a comment written then, since deleted or edited, may have gone into. Resolves with
 * the ids removed.
 */
export async function forgetMadeSince(
  store: Pick<MemoryStore, "get" | "remove">,
  ids: readonly string[],
  { number, since }: { number: number; since: string },
): Promise<string[]> {
  const removed: string[] = [];
  for (const id of ids) {
    const record = await store.get(id);
    // Answers and summaries only: a maintainer's note is what they chose to keep.
    if (record?.kind !== "answer" || record.number !== number) continue;
    if (Date.parse(record.createdAt) < Date.parse(since)) continue;
    if (await store.remove(id)) removed.push(id);
  }
  return removed;
}

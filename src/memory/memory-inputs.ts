import type { IssueInfo } from "../github/create-repo-client.js";
import type { MemoryInput } from "./memory-store.js";

/** The memory of an issue or pull request: its title and description, keyed by its number. */
export function toIssueMemory(repo: string, issue: IssueInfo): MemoryInput {
  const kind = issue.isPullRequest ? "pull_request" : "issue";
  return {
    id: `${kind}-${issue.number}`,
    kind,
    text: `${issue.title}\n\n${issue.body ?? ""}`,
    repo,
    number: issue.number,
    author: issue.author ?? undefined,
    url: issue.url,
    createdAt: issue.createdAt || new Date(0).toISOString(),
    state: issue.state,
  };
}

/** Notes and answers are named after the comment that asked for them, so a redelivery updates them. */
export const noteId = (commentId: number) => `note-${commentId}`;
export const answerId = (commentId: number) => `answer-${commentId}`;

/** Only what maintainers and Talos added can be forgotten; issues come back from GitHub. */
export const FORGETTABLE = /^(note|answer)-\d+$/;

import type { CommentInfo, IssueInfo, RepoClient } from "../github/create-repo-client.js";
import { estimateTokens } from "./estimate-tokens.js";
import type { Fence } from "./untrusted-text.js";

/** An issue or pull request and its comments: the whole history the agent works from. */
export interface Thread {
  issue: IssueInfo;
  comments: CommentInfo[];
}

/** What the event's payload already tells about the thread, so it need not be fetched. */
export interface KnownThread {
  issue?: IssueInfo;
  /** Known only when there are none: a new issue has no comments to fetch. */
  comments?: CommentInfo[];
}

/** Fetches the thread for this event; nothing about it is kept between events. */
export async function loadThread(
  github: RepoClient,
  number: number,
  known: KnownThread = {},
): Promise<Thread> {
  const [issue, comments] = await Promise.all([
    known.issue ?? github.getIssue(number),
    known.comments ?? github.listComments(number),
  ]);
  return { issue, comments };
}

/**
 * Renders the thread for a prompt within `budgetTokens`: the title and body first (the body cut
 * to half the budget at most), then as many comments as fit, newest first, shown in order. The
 * oldest comments are the ones left out, and the text says how many.
 */
export function renderThread(thread: Thread, fence: Fence, budgetTokens: number): string {
  const { issue } = thread;
  const kind = issue.isPullRequest ? "Pull request" : "Issue";
  const header = `${kind} #${issue.number} (${issue.state}), opened by ${issue.author ?? "a deleted user"}${
    issue.labels.length > 0 ? `, labels: ${issue.labels.join(", ")}` : ""
  }`;
  const body = truncate(issue.body ?? "(no description)", Math.floor(budgetTokens / 2));
  const opening = [
    header,
    fence.wrap(`${kind.toLowerCase()} #${issue.number} title`, issue.title),
    fence.wrap(`${kind.toLowerCase()} #${issue.number} description`, body),
  ].join("\n");

  let remaining = budgetTokens - estimateTokens(opening);
  const kept: string[] = [];
  for (const comment of [...thread.comments].reverse()) {
    const rendered = fence.wrap(
      `comment by ${comment.author ?? "a deleted user"} on ${comment.createdAt}`,
      comment.body,
    );
    const cost = estimateTokens(rendered);
    if (cost > remaining) break;
    remaining -= cost;
    kept.unshift(rendered);
  }
  const omitted = thread.comments.length - kept.length;
  return [
    opening,
    thread.comments.length === 0 ? "There are no comments yet." : `Comments, oldest first:`,
    ...(omitted > 0 ? [`(${omitted} older comment(s) left out to fit the budget.)`] : []),
    ...kept,
  ].join("\n\n");
}

function truncate(text: string, maxTokens: number): string {
  const maxChars = maxTokens * 4;
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}\n…(cut to fit)`;
}

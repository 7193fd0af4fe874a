import type { CommentInfo, IssueInfo, RepoClient } from "../github/create-repo-client.js";
import type { TokenCounter } from "./count-tokens.js";
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

// Less room than this is not worth a cut comment's head.
const MIN_CUT_COMMENT_TOKENS = 200;

/**
 * Renders the thread for a prompt within `budgetTokens`, counted with `counter`: the title and
 * body first (the body cut to half the budget at most), then as many comments as fit, newest
 * first, shown in order, the first one that does not fit cut to what is left. The oldest
 * comments are the ones left out, and the text says how many.
 */
export function renderThread(
  thread: Thread,
  fence: Fence,
  budgetTokens: number,
  counter: TokenCounter,
): string {
  const { issue } = thread;
  const kind = issue.isPullRequest ? "Pull request" : "Issue";
  const header = `${kind} #${issue.number} (${issue.state}), opened by ${issue.author ?? "a deleted user"}${
    issue.labels.length > 0 ? `, labels: ${issue.labels.join(", ")}` : ""
  }`;
  const opening = [
    header,
    fence.wrap(`${kind.toLowerCase()} #${issue.number} title`, issue.title),
    fence
      .bounded(Math.floor(budgetTokens / 2), counter)
      .wrap(`${kind.toLowerCase()} #${issue.number} description`, issue.body ?? "(no description)"),
  ].join("\n");

  let remaining = budgetTokens - counter.countTokens(opening, budgetTokens);
  const kept: string[] = [];
  for (const comment of [...thread.comments].reverse()) {
    if (remaining <= 0) break;
    const source = `comment by ${comment.author ?? "a deleted user"} on ${comment.createdAt}`;
    const rendered = fence.wrap(source, comment.body);
    // Counting stops past what remains: a long comment costs no more than the budget.
    const cost = counter.countTokens(rendered, remaining);
    if (cost <= remaining) {
      remaining -= cost;
      kept.unshift(rendered);
      continue;
    }
    // The first comment that does not fit is shown cut, when enough is left to be worth
    // reading: one long comment does not hide the discussion before it and itself.
    const room = remaining - counter.countTokens(fence.wrap(source, ""));
    if (room >= MIN_CUT_COMMENT_TOKENS)
      kept.unshift(fence.bounded(room, counter).wrap(source, comment.body));
    break;
  }
  const omitted = thread.comments.length - kept.length;
  return [
    opening,
    thread.comments.length === 0 ? "There are no comments yet." : `Comments, oldest first:`,
    ...(omitted > 0 ? [`(${omitted} older comment(s) left out to fit the budget.)`] : []),
    ...kept,
  ].join("\n\n");
}

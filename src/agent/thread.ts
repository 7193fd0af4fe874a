import type { CommentInfo, IssueInfo, RepoClient } from "../github/create-repo-client.js";
import { UTF8_TOKEN_BOUND, type TokenCounter } from "./count-tokens.js";
import { visibleLength, type Fence } from "./untrusted-text.js";

/** An issue or pull request and its comments: the whole history the agent works from. */
export interface Thread {
  issue: IssueInfo;
  /** The newest comments, oldest first: all of them unless `omitted` says otherwise. */
  comments: CommentInfo[];
  /** Older comments not fetched: a long thread is read newest first, within the budget. */
  omitted: number;
}

/** What the event's payload already tells about the thread, so it need not be fetched. */
export interface KnownThread {
  issue?: IssueInfo;
  /** Known only when there are none: a new issue has no comments to fetch. */
  comments?: CommentInfo[];
}

// Characters fetched per token of budget: English runs about four to a token; a thread in a
// denser script is fetched a little too long, and renderThread cuts it to the budget.
const CHARS_PER_TOKEN = 4;

/**
 * Fetches the thread for this event, its comments newest first within `budgetTokens` (so a
 * 5,000-comment thread costs a few pages); nothing about it is kept between events.
 */
export async function loadThread(
  github: RepoClient,
  number: number,
  known: KnownThread,
  budgetTokens: number,
): Promise<Thread> {
  const [issue, recent] = await Promise.all([
    known.issue ?? github.getIssue(number),
    known.comments
      ? { comments: known.comments, omitted: 0 }
      : github.listRecentComments(number, {
          maxChars: budgetTokens * CHARS_PER_TOKEN,
          // As renderThread shows them: a hidden comment takes no room.
          weigh: visibleLength,
        }),
  ]);
  return { issue, comments: recent.comments, omitted: recent.omitted };
}

// Less room than this is not worth a cut comment's head.
const MIN_CUT_COMMENT_TOKENS = 200;

/**
 * Renders the thread for a prompt within `budgetTokens`, counted with `counter`: the title, labels
 * and body first (cut to a quarter, an eighth and half of what the heading, fences and notes leave
 * of the budget, at most), then as many comments as fit, newest
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
  const header = `${kind} #${issue.number} (${issue.state}), opened by ${issue.author ?? "a deleted user"}`;
  const about = `${kind.toLowerCase()} #${issue.number}`;
  // The title is cut too, to a quarter: GitHub allows 256 characters, and 256 rare ones are
  // about 780 tokens, which took a small budget (500 is allowed) past its end. The title and the
  // labels are plain text on GitHub (a `<!--` in them hides nothing), and anyone with triage
  // rights names a label: fenced, each bounded, as the body is.
  const labels = issue.labels.length > 0;
  // What joins the parts counts too: the headings, the note of comments left out (at its
  // longest), and a blank line before each part, a token each (two bytes).
  const longestNote = omittedNote(thread.omitted + thread.comments.length);
  const glue = `${SEPARATOR}Comments, oldest first:${SEPARATOR}${longestNote}`;
  // The shares are of what the header, the fences and the glue leave: taken from the whole
  // budget, they took a small one past its end (519 tokens of 500; found by a review). A few
  // tokens more for where the counted pieces meet.
  const fixedText = [
    header,
    fence.wrapCode(`${about} title`, ""),
    ...(labels ? [fence.wrapCode(`${about} labels`, "")] : []),
    fence.wrap(`${about} description`, ""),
    glue,
  ].join("\n");
  // Its UTF-8 bytes, an upper bound, where they leave most of the budget: not tokenized.
  const fixedBound = UTF8_TOKEN_BOUND.countTokens(fixedText);
  const fixed =
    (fixedBound <= budgetTokens / 4 ? fixedBound : counter.countTokens(fixedText)) + PIECE_JOINS;
  const room = Math.max(0, budgetTokens - fixed);
  const opening = [
    header,
    fence.bounded(Math.floor(room / 4), counter).wrapCode(`${about} title`, issue.title),
    ...(labels
      ? [
          fence
            .bounded(Math.floor(room / 8), counter)
            .wrapCode(`${about} labels`, issue.labels.join(", ")),
        ]
      : []),
    fence
      .bounded(Math.floor(room / 2), counter)
      .wrap(`${about} description`, issue.body ?? "(no description)"),
  ].join("\n");

  const comments = thread.comments.map((comment) => {
    const source = `comment by ${comment.author ?? "a deleted user"} on ${comment.createdAt}`;
    return { source, body: comment.body, rendered: fence.wrap(source, comment.body) };
  });
  const bound = UTF8_TOKEN_BOUND.countTokens;
  // UTF-8 bytes bound a count from above: a thread whose bytes fit is shown whole, as counting
  // would show it, without tokenizing it (most threads; the counting was 3% of a delivery's CPU
  // in the events bench).
  const kept =
    bound(opening) +
      bound(glue) +
      comments.reduce((sum, { rendered }) => sum + bound(rendered) + bound(SEPARATOR), 0) <=
    budgetTokens
      ? comments.map(({ rendered }) => rendered)
      : newestWithin(
          comments,
          budgetTokens - counter.countTokens(opening, budgetTokens) - counter.countTokens(glue),
          { fence, counter },
        );
  const omitted = thread.omitted + thread.comments.length - kept.length;
  return [
    opening,
    thread.comments.length === 0 && thread.omitted === 0
      ? "There are no comments yet."
      : `Comments, oldest first:`,
    ...(omitted > 0 ? [omittedNote(omitted)] : []),
    ...kept,
  ].join(SEPARATOR);
}

const SEPARATOR = "\n\n";
// Tokens a text may count beyond its pieces counted apart, where they meet (a few places).
const PIECE_JOINS = 8;
// A blank line is one token, whatever it follows: cl100k reads line breaks as a token of their
// own (`\s*[\r\n]+`).
const SEPARATOR_TOKENS = 1;

const omittedNote = (omitted: number) =>
  `(${omitted} older comment(s) left out to fit the budget.)`;

/**
 * The comments (oldest first) that fit in `remaining` tokens, newest first, the first that does
 * not fit cut to what is left, when enough is left to be worth reading: one long comment does
 * not hide the discussion before it and itself.
 */
function newestWithin(
  comments: Array<{ source: string; body: string; rendered: string }>,
  remaining: number,
  { fence, counter }: { fence: Fence; counter: TokenCounter },
): string[] {
  const kept: string[] = [];
  for (const { source, body, rendered } of [...comments].reverse()) {
    if (remaining <= 0) break;
    // Counting stops past what remains: a long comment costs no more than the budget.
    const cost = counter.countTokens(rendered, remaining) + SEPARATOR_TOKENS;
    if (cost <= remaining) {
      remaining -= cost;
      kept.unshift(rendered);
      continue;
    }
    const room = remaining - counter.countTokens(fence.wrap(source, "")) - SEPARATOR_TOKENS;
    if (room >= MIN_CUT_COMMENT_TOKENS)
      kept.unshift(fence.bounded(room, counter).wrap(source, body));
    break;
  }
  return kept;
}

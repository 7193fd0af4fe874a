import type { Clock } from "../clock.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import type { GitHubLimits } from "./create-octokit.js";
import { hasMarkerAtEnd, readMarker, withMarker, type ParsedMarker } from "./comment-markers.js";
import { COMMENTS_PER_PAGE, type CommentInfo } from "./create-repo-client.js";
import { getClientLog, rateLimitWaitMs, statusOf, type Octokit, type RepoRef } from "./octokit.js";

export interface UpsertReplyOptions extends RepoRef {
  octokit: Octokit;
  issueNumber: number;
  /** The hidden marker that identifies this reply. */
  marker: string;
  /**
   * Which marker makes a comment this reply, when more than one does: a pull request's summary
   * is found whatever head its marker names. Default: `marker` itself.
   */
  isSameReply?: ((marker: ParsedMarker) => boolean) | undefined;
  /** Markdown; made safe (`toSafeMarkdown`) before it is posted. */
  body: string;
  /** Issue and pull request numbers Talos retrieved for this reply: the only ones it may name. */
  references: Iterable<number>;
  markdown: Pick<MarkdownService, "toSafeMarkdown">;
  /** Only comments by this login are ours to edit. */
  botLogin: string;
  /** ISO time no later than the reply's creation, to skip older pages of the thread. */
  since?: string | undefined;
  /**
   * The thread's complete comment list, when the caller has just read it: the first look for the
   * marker uses it. Not found in a list of more than one page (see listCommentsFinding: one read
   * over pages may miss a comment), and on a retry after a failed attempt, GitHub is asked again.
   */
  knownComments?: CommentInfo[] | undefined;
  limits: Pick<GitHubLimits, "maxRetries" | "maxRetryWaitSeconds">;
  clock: Clock;
  /**
   * Posts only where the reply is not there yet: a notice that must not replace the answer an
   * earlier run of the job posted (one whose budget that run spent).
   */
  keepExisting?: boolean | undefined;
  /**
   * Asked once, just before the reply would be created (never when one is kept or edited): no,
   * and nothing is posted. The thread's one budget notice a day is claimed so, only when it is
   * posted: claimed first, a notice kept out by the answer an earlier run posted used up the
   * day's, and the thread's next over-budget command got silence, never having seen one.
   */
  claim?: (() => Promise<boolean>) | undefined;
}

export type UpsertReplyResult =
  { action: "created" | "updated" | "kept"; commentId: number } | { action: "withheld" };

/**
 * Posts the reply carrying `marker`, or edits it when it already exists: a redelivered event, or
 * a restart between posting and recording the delivery, then never produces a second comment.
 * Every comment Talos writes comes through here, and its body through `toSafeMarkdown` first.
 * Creating is retried here rather than by the Octokit plugins (which leave comment creation
 * alone): after a rate limit, a 5xx or a lost connection the comment may exist all the same, so
 * each attempt looks for the marker first.
 */
export async function upsertReply(options: UpsertReplyOptions): Promise<UpsertReplyResult> {
  const { octokit, owner, repo, issueNumber, marker, limits, clock } = options;
  const safe = await options.markdown.toSafeMarkdown(options.body, {
    repo: `${owner}/${repo}`,
    references: [...new Set([issueNumber, ...options.references])],
  });
  const body = withMarker(safe, marker);
  const isOurs = (author: string | null | undefined, text: string | null | undefined) =>
    author === options.botLogin && isReply(options, text ?? "");
  let deletedMeanwhile = false;
  let claimed = false;
  for (let attempt = 0; ; attempt++) {
    const known = attempt === 0 ? options.knownComments : undefined;
    // Found there, it is there; not found in a list of several pages, it may have been missed.
    const existing =
      known?.find((c) => isOurs(c.author, c.body))?.id ??
      (known && known.length < COMMENTS_PER_PAGE
        ? undefined
        : await findOwnComment(options, isOurs));
    if (existing && options.keepExisting) return { action: "kept", commentId: existing };
    if (existing) {
      try {
        await octokit.rest.issues.updateComment({ owner, repo, comment_id: existing, body });
        return { action: "updated", commentId: existing };
      } catch (error) {
        // The reply was deleted since it was found (a summary's list is read before the model
        // runs): look again, and post it anew. A 404 escaping would end the job as if its issue
        // were gone.
        if (statusOf(error) !== 404 || deletedMeanwhile) throw error;
        deletedMeanwhile = true;
        continue;
      }
    }
    if (options.claim && !claimed) {
      if (!(await options.claim())) return { action: "withheld" };
      claimed = true;
    }
    try {
      const { data } = await octokit.rest.issues.createComment({
        owner,
        repo,
        issue_number: issueNumber,
        body,
      });
      return { action: "created", commentId: data.id };
    } catch (error) {
      const waitSeconds = getRetryWait(error, attempt, clock.now());
      if (
        waitSeconds === undefined ||
        attempt >= limits.maxRetries ||
        waitSeconds > limits.maxRetryWaitSeconds
      ) {
        throw error;
      }
      getClientLog(octokit).warn(
        { attempt: attempt + 1, waitSeconds, status: statusOf(error) },
        "creating the reply failed; retrying",
      );
      await clock.sleep(waitSeconds * 1000);
    }
  }
}

function isReply(options: UpsertReplyOptions, body: string): boolean {
  if (!options.isSameReply) return hasMarkerAtEnd(body, options.marker);
  const found = readMarker(body);
  return found !== undefined && options.isSameReply(found);
}

async function findOwnComment(
  options: UpsertReplyOptions,
  isOurs: (author: string | null | undefined, body: string | null | undefined) => boolean,
): Promise<number | undefined> {
  const { octokit, owner, repo, issueNumber, since } = options;
  const pages = octokit.paginate.iterator(octokit.rest.issues.listComments, {
    owner,
    repo,
    issue_number: issueNumber,
    per_page: 100,
    ...(since ? { since } : {}),
  });
  for await (const { data } of pages) {
    const found = data.find((c) => isOurs(c.user?.login, c.body));
    if (found) return found.id;
  }
  return undefined;
}

/**
 * Seconds to wait before trying again, or undefined when the failure is final: rate limits wait
 * for `retry-after` (or the reset), 5xx and lost connections back off, other 4xx are final.
 * https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
 */
function getRetryWait(error: unknown, attempt: number, now: number): number | undefined {
  const status = statusOf(error);
  const limitedMs = rateLimitWaitMs(error, now);
  if (limitedMs !== undefined) return limitedMs / 1000;
  if (status === undefined || status >= 500) return (attempt + 1) ** 2;
  return undefined;
}

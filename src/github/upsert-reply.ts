import type { Octokit, RepoRef } from "./octokit.js";
import { withMarker } from "./comment-markers.js";

export interface UpsertReplyOptions extends RepoRef {
  octokit: Octokit;
  issueNumber: number;
  /** The hidden marker that identifies this reply. */
  marker: string;
  body: string;
  /** Only comments by this login are ours to edit. */
  botLogin: string;
  /** ISO time no later than the reply's creation, to skip older pages of the thread. */
  since?: string | undefined;
}

export interface UpsertReplyResult {
  action: "created" | "updated";
  commentId: number;
}

/**
 * Posts the reply carrying `marker`, or edits it when it already exists: a redelivered event, or
 * a restart between posting and recording the delivery, then never produces a second comment.
 */
export async function upsertReply(options: UpsertReplyOptions): Promise<UpsertReplyResult> {
  const { octokit, owner, repo, issueNumber, marker } = options;
  const body = withMarker(options.body, marker);
  const existing = await findOwnComment(options);
  if (existing) {
    await octokit.rest.issues.updateComment({ owner, repo, comment_id: existing, body });
    return { action: "updated", commentId: existing };
  }
  const { data } = await octokit.rest.issues.createComment({
    owner,
    repo,
    issue_number: issueNumber,
    body,
  });
  return { action: "created", commentId: data.id };
}

async function findOwnComment(options: UpsertReplyOptions): Promise<number | undefined> {
  const { octokit, owner, repo, issueNumber, marker, botLogin, since } = options;
  const pages = octokit.paginate.iterator(octokit.rest.issues.listComments, {
    owner,
    repo,
    issue_number: issueNumber,
    per_page: 100,
    ...(since ? { since } : {}),
  });
  for await (const { data } of pages) {
    const found = data.find((c) => c.user?.login === botLogin && c.body?.includes(marker));
    if (found) return found.id;
  }
  return undefined;
}

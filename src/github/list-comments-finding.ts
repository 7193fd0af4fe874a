import { COMMENTS_PER_PAGE, type CommentInfo, type RepoClient } from "./create-repo-client.js";

/**
 * The thread's comments, read to look for one of Talos's own that `isWanted` names. Read over
 * several pages, a comment deleted between two reads shifts the later pages, and one comment is
 * read on none: Talos's earlier reply perhaps, which the caller would then write a second time.
 * So a list of more than one page without it is read once more.
 */
export async function listCommentsFinding(
  github: Pick<RepoClient, "listComments">,
  number: number,
  isWanted: (comment: CommentInfo) => boolean,
): Promise<CommentInfo[]> {
  const comments = await github.listComments(number);
  if (comments.length < COMMENTS_PER_PAGE || comments.some(isWanted)) return comments;
  return github.listComments(number);
}

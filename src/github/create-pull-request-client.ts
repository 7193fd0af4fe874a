import type { PullRequestFile } from "../pulls/pull-request-file.js";
import type { Octokit, RepoRef } from "./octokit.js";

export interface PullRequestInfo {
  number: number;
  title: string;
  body: string | null;
  state: string;
  draft: boolean;
  author: string | null;
  authorIsBot: boolean;
  headSha: string;
  baseSha: string;
  baseRef: string;
  /** As GitHub counts them: may exceed what the file list gives (3,000 at most). */
  changedFiles: number;
  url: string;
}

export interface ReviewInfo {
  id: number;
  author: string | null;
  body: string;
  /** The commit the review was made on. */
  commitId: string | null;
  url: string;
}

/** What changed from one commit to another, or undefined when the base is gone (a force-push). */
export interface Comparison {
  /** "ahead": the base is an ancestor of the head, so `files` is exactly what came since. */
  status: "ahead" | "behind" | "diverged" | "identical";
  files: PullRequestFile[];
  /**
   * False when the comparison may hold more files than GitHub lists for one (300), or came
   * without its list.
   */
  complete: boolean;
}

export interface NewReviewComment {
  path: string;
  line: number;
  side: "RIGHT";
  start_line?: number;
  start_side?: "RIGHT";
  body: string;
}

/**
 * Pull-request reads and the one review write, bound to the event's repository. The head is read
 * past the cache: a review is pinned to it, and a stale head would pin it wrong.
 */
export interface PullRequestClient {
  readonly repo: RepoRef;
  getPullRequest(number: number): Promise<PullRequestInfo>;
  /** The changed files, every page, up to GitHub's 3,000; `unlisted` counts the rest. */
  listFiles(
    number: number,
    changedFiles: number,
  ): Promise<{ files: PullRequestFile[]; unlisted: number }>;
  compare(base: string, head: string): Promise<Comparison | undefined>;
  listReviews(number: number): Promise<ReviewInfo[]>;
  createReview(
    number: number,
    review: { commitId: string; body: string; comments: NewReviewComment[] },
  ): Promise<{ id: number; url: string }>;
}

// GitHub lists at most 3,000 files of a pull request, and 100 per page.
// https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files
export const MAX_LISTED_FILES = 3_000;
const MAX_COMPARED_FILES = 300;
const PER_PAGE = 100;

export function createPullRequestClient(octokit: Octokit, repo: RepoRef): PullRequestClient {
  return {
    repo,
    async getPullRequest(number) {
      const { data } = await octokit.rest.pulls.get({
        ...repo,
        pull_number: number,
        // Read past the cache (see request-cache-plugin.ts): the head must be the current one.
        headers: { "cache-control": "no-cache" },
      });
      return {
        number: data.number,
        title: data.title,
        body: data.body ?? null,
        state: data.state,
        draft: data.draft ?? false,
        author: data.user?.login ?? null,
        authorIsBot:
          data.user?.type === "Bot" || Boolean(data.user?.login.toLowerCase().endsWith("[bot]")),
        headSha: data.head.sha,
        baseSha: data.base.sha,
        baseRef: data.base.ref,
        changedFiles: data.changed_files ?? 0,
        url: data.html_url,
      };
    },
    async listFiles(number, changedFiles) {
      const files: PullRequestFile[] = [];
      for await (const { data } of octokit.paginate.iterator(octokit.rest.pulls.listFiles, {
        ...repo,
        pull_number: number,
        per_page: PER_PAGE,
      })) {
        files.push(...data.map(toFile));
        if (files.length >= MAX_LISTED_FILES) break;
      }
      files.length = Math.min(files.length, MAX_LISTED_FILES);
      return { files, unlisted: Math.max(0, changedFiles - files.length) };
    },
    async compare(base, head) {
      let response;
      try {
        // Paged, the first page lists every changed file (up to 300) and only one commit here:
        // the commits are not needed.
        // https://docs.github.com/en/rest/commits/commits#compare-two-commits
        response = await octokit.rest.repos.compareCommitsWithBasehead({
          ...repo,
          basehead: `${base}...${head}`,
          per_page: 1,
          page: 1,
        });
      } catch (error) {
        // The base commit no longer exists: history was rewritten and collected.
        if ((error as { status?: number }).status === 404) return undefined;
        throw error;
      }
      // A comparison GitHub answers without its files list (none, or null) says nothing of what
      // changed: read as complete, it was a push that changed nothing, and its summary was kept
      // as it was.
      const listed = Array.isArray(response.data.files) ? response.data.files : undefined;
      const files = (listed ?? []).map(toFile);
      const complete = listed !== undefined && files.length < MAX_COMPARED_FILES;
      return { status: response.data.status, files, complete };
    },
    async listReviews(number) {
      const reviews = await octokit.paginate(octokit.rest.pulls.listReviews, {
        ...repo,
        pull_number: number,
        per_page: PER_PAGE,
      });
      return reviews.map((r) => ({
        id: r.id,
        author: r.user?.login ?? null,
        body: r.body ?? "",
        commitId: r.commit_id ?? null,
        url: r.html_url,
      }));
    },
    async createReview(number, review) {
      const { data } = await octokit.rest.pulls.createReview({
        ...repo,
        pull_number: number,
        commit_id: review.commitId,
        body: review.body,
        // Talos comments; it never approves, requests changes or merges.
        event: "COMMENT",
        comments: review.comments,
      });
      return { id: data.id, url: data.html_url };
    },
  };
}

function toFile(f: {
  filename: string;
  status: string;
  additions: number;
  deletions: number;
  changes: number;
  patch?: string | undefined;
  previous_filename?: string | undefined;
}): PullRequestFile {
  return {
    filename: f.filename,
    status: f.status as PullRequestFile["status"],
    additions: f.additions,
    deletions: f.deletions,
    changes: f.changes,
    patch: f.patch,
    previous_filename: f.previous_filename,
  };
}

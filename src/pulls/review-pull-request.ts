import type { Logger } from "pino";
import type { Assistant } from "../agent/assistant.js";
import type { Clock } from "../clock.js";
import type { RepoConfig } from "../config.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import {
  hasMarkerAtEnd,
  isOtherBase,
  readMarker,
  readReviewMarker,
  reviewCommentMarker,
  reviewMarker,
  withMarker,
} from "../github/comment-markers.js";
import type {
  NewReviewComment,
  PullRequestClient,
  PullRequestInfo,
} from "../github/create-pull-request-client.js";
import type { RepoClient } from "../github/create-repo-client.js";
import { isRateLimited, rateLimitWaitMs, statusOf } from "../github/octokit.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import { loadPullRequestChanges, type PullRequestChanges } from "./load-pull-request-changes.js";
import type { Hunk } from "./parse-patch.js";
import { askAboutChanges } from "./ask-about-changes.js";
import { parseReviewAnswer, type ReviewAnswer } from "./parse-review-answer.js";
import { placeComments, type PlacedComment } from "./place-comments.js";
import { describeScope, renderNotReviewed, shortSha } from "./render-changes.js";
import { escapeName } from "../markdown/safe-text.js";

export interface ReviewPullRequestOptions {
  assistant: Assistant;
  github: RepoClient;
  pulls: PullRequestClient;
  number: number;
  /** The pull request as just read (past the cache), when the caller has; else it is read. */
  pull?: PullRequestInfo | undefined;
  settings: RepoConfig["review"];
  /** The `/talos review` comment; absent for the review of a push. */
  commentId?: number | undefined;
  /** `--full`: review the whole pull request, whatever was reviewed before. */
  full: boolean;
  botLogin: string;
  markdown: Pick<MarkdownService, "toSafeMarkdown">;
  /** Asked once the review is known to be needed, before anything is read for it. */
  mayRun?: (() => Promise<boolean>) | undefined;
  /** Waits between the looks for a review whose creation failed, and out a rate limit. */
  clock: Pick<Clock, "now" | "sleep">;
  /** How often, and how long, a review GitHub refused for a rate limit is waited for. */
  limits: Pick<GitHubLimits, "maxRetries" | "maxRetryWaitSeconds">;
  log: Logger;
}

export type ReviewOutcome =
  | {
      status: "posted";
      url: string;
      head: string;
      reviewed: number;
      skipped: number;
      comments: number;
    }
  /** A resumed job: this command's review is already up. */
  | { status: "already-posted"; head: string }
  /** Nothing new since the last review, which is at `head`. */
  | { status: "current"; head: string }
  /** A push's review where no one asked for a first review. */
  | { status: "not-requested" }
  /** A push's review when nothing the push changed can be read (only ignored files, say). */
  | { status: "nothing-to-review" }
  /** The head moved while the model worked: the review of `analysed` was not posted. */
  | { status: "stale"; analysed: string; head: string }
  | { status: "closed" }
  /** A push's review of a pull request made a draft while the model worked: not posted. */
  | { status: "draft" }
  | { status: "over-budget" };

/**
 * One pull-request review: the diff since the last Talos review (or all of it), within the
 * token budget, read by the model, whose inline comments are kept only on lines of the diff.
 * Posted as one `COMMENT` review pinned to the analysed head, and only if that is still the head.
 * Its marker names the head and the command, so that a resumed job never posts it twice, and the
 * base branch, so that a review after a retarget reads the new diff whole.
 */
export async function reviewPullRequest(options: ReviewPullRequestOptions): Promise<ReviewOutcome> {
  const { pulls, number, commentId, log } = options;
  const metrics = options.assistant.metrics;
  const pull = options.pull ?? (await pulls.getPullRequest(number));
  const closed = pull.state !== "open";
  if (closed && commentId === undefined) return { status: "closed" };
  const ours = (await pulls.listReviews(number)).flatMap((review) => {
    const marker = review.author === options.botLogin ? readMarker(review.body) : undefined;
    return marker?.kind === "review" ? [readReviewMarker(marker)] : [];
  });
  const head = pull.headSha;
  // A command is answered once, whatever the head is now: a job resumed after a push that
  // followed its review must not review the push as well, nor reply that nothing changed.
  const answered =
    commentId === undefined ? undefined : ours.find((r) => r.trigger === String(commentId));
  if (answered) return { status: "already-posted", head: answered.sha ?? head };
  // Only now: a job resumed after the pull request was closed had replied "closed, so I did not
  // review it" under the review it had posted (found by a review).
  if (closed) return { status: "closed" };
  const last = ours.at(-1)?.sha;
  if (commentId === undefined && !last) return { status: "not-requested" };
  // Retargeted since the last review: the same head has another diff, which no review has read,
  // and a diff since the last head would be one between two heads read against the old base.
  // So the review reads the whole pull request, and says why (it had said nothing changed).
  const retargeted = isOtherBase(ours.at(-1)?.base, pull.baseRef);
  if (
    !options.full &&
    !retargeted &&
    (last === head || (commentId === undefined && ours.some((r) => r.sha === head)))
  )
    return { status: "current", head };
  if (options.mayRun && !(await options.mayRun())) return { status: "over-budget" };

  const changes = await loadPullRequestChanges({
    github: options.github,
    pulls,
    pull,
    since: last,
    full: options.full,
    retargeted,
    settings: options.settings,
    assistant: options.assistant,
  });
  const { reviewed, skipped, unlisted } = changes.selection;
  metrics.reviewFiles.observe({ kind: "review", outcome: "reviewed" }, reviewed.length);
  metrics.reviewFiles.observe({ kind: "review", outcome: "skipped" }, skipped.length + unlisted);
  // Only the base merged in since (GitHub's "Update branch"): the review is of `since`, which the
  // reply names, not of the new head, which no review has read.
  if (changes.since && reviewed.length === 0 && skipped.length === 0)
    return { status: "current", head: changes.since };
  // A push that changed only files no review reads (ignored, deleted, binary) gets no review of
  // its own: it would say nothing but that. Asked for, a review lists them.
  if (commentId === undefined && reviewed.length === 0) return { status: "nothing-to-review" };

  const answer = reviewed.length > 0 ? await askModel(options, pull, changes) : undefined;
  // The model cites a file by its name as it read it (escaped); the comment goes on that file.
  const named = new Map(reviewed.map((r) => [escapeName(r.file.filename), r.file.filename]));
  const placement = placeComments({
    drafts: (answer?.drafts ?? []).map((draft) => ({
      ...draft,
      path: named.get(draft.path) ?? draft.path,
    })),
    files: new Map(
      reviewed.map((r) => [r.file.filename, anchors(r.file.filename, r.hunks, changes)]),
    ),
    maxComments: options.settings.max_comments,
  });
  countComments(options, placement, answer?.malformed ?? 0);

  // Read again, and looked at whole: closed, merged or made a draft while the model worked (or
  // during the summary that ran before, after `pull` was read), at the same head, the pull
  // request had got the review all the same (found by a review). A command on one closed
  // meanwhile is answered as on one closed before; a review asked for is given on a draft,
  // whose pushes get none.
  const after = await pulls.getPullRequest(number);
  if (after.state !== "open") {
    log.info({ head }, "review not posted: the pull request was closed during the review");
    return { status: "closed" };
  }
  if (commentId === undefined && after.draft) {
    log.info({ head }, "push review not posted: the pull request became a draft during it");
    return { status: "draft" };
  }
  // Pinned to the analysed head: a review of a head that has moved on is not posted at all.
  if (after.headSha !== head) {
    const now = after.headSha;
    log.info({ analysed: head, head: now }, "review not posted: the head moved during the review");
    return { status: "stale", analysed: head, head: now };
  }
  // A comment whose line the parser could not read is left out as surely as one off the diff,
  // and the reader is owed the same count (it had been in the metric alone).
  const leftOut = placement.dropped.length + (answer?.malformed ?? 0);
  const body = renderReviewBody(pull, changes, answer, leftOut);
  const posted = await postReview(options, pull, body, placement.placed);
  log.info(
    {
      head,
      reviewed: reviewed.length,
      skipped: skipped.length + unlisted,
      comments: posted.comments,
    },
    "review posted",
  );
  return {
    status: "posted",
    url: posted.url,
    head,
    reviewed: reviewed.length,
    skipped: skipped.length + unlisted,
    comments: posted.comments,
  };
}

/**
 * The lines a comment may sit on. GitHub places a review's comments on the pull request's whole
 * diff: an unchanged line around a push's change may lie outside it, and so may a line the push
 * "added" by merging the base branch in (either is a 422 that would cost the review all its
 * comments). Only lines the PR's own diff adds are sure to be in it.
 */
function anchors(path: string, hunks: Hunk[], changes: PullRequestChanges): Hunk[] {
  if (!changes.since) return hunks;
  const own = changes.prAdded?.get(path) ?? new Set<number>();
  return hunks.map((hunk) => ({
    ...hunk,
    lines: hunk.lines.filter(
      (l) => l.kind === "add" && l.newLine !== undefined && own.has(l.newLine),
    ),
  }));
}

async function askModel(
  options: ReviewPullRequestOptions,
  pull: PullRequestInfo,
  changes: PullRequestChanges,
) {
  const { text, finished } = await askAboutChanges({
    ...options,
    pull,
    changes,
    prompt: "review",
    values: () => ({ max_comments: String(options.settings.max_comments) }),
    kind: "review",
  });
  const answer = parseReviewAnswer(text, { cut: !finished });
  if (answer.cut)
    options.log.warn(
      { comments: answer.drafts.length, verdict: answer.verdict !== "" },
      "the review answer was cut at the output limit; posting what it had finished",
    );
  else if (!answer.structured)
    options.log.warn("the review answer was not the JSON asked for; posted as text");
  return answer;
}

function countComments(
  options: ReviewPullRequestOptions,
  placement: ReturnType<typeof placeComments>,
  malformed: number,
): void {
  const counter = options.assistant.metrics.reviewComments;
  counter.inc({ outcome: "posted" }, placement.placed.length);
  for (const { reason } of placement.dropped) counter.inc({ outcome: reason.replaceAll("-", "_") });
  if (malformed > 0) counter.inc({ outcome: "malformed" }, malformed);
  if (placement.suggestionsDropped > 0)
    counter.inc({ outcome: "suggestion_dropped" }, placement.suggestionsDropped);
}

// A review the output limit cut is marked, as a command's cut answer is (renderAnswer, which
// appends its note to prose); the setting is named: only whoever runs the server can raise it.
const CUT_NOTE =
  "_The model's answer was cut off at Talos's output token limit (`TALOS_LLM_MAX_OUTPUT_TOKENS`): this review holds only what it had finished._";
const CUT_BEFORE_ANYTHING =
  "The model's answer was cut off at Talos's output token limit before it finished any of the review. Whoever runs this Talos server can raise `TALOS_LLM_MAX_OUTPUT_TOKENS`.";

function renderReviewBody(
  pull: PullRequestInfo,
  changes: PullRequestChanges,
  answer: ReviewAnswer | undefined,
  /** Comments placement dropped, and those the answer held that were no comments. */
  leftOut: number,
): string {
  const cutBeforeAnything = answer?.cut === true && !answer.structured;
  const parts = [
    `**Talos review** of \`${shortSha(pull.headSha)}\`, covering ${describeScope(changes, "post")}.`,
    answer?.verdict ||
      (cutBeforeAnything
        ? CUT_BEFORE_ANYTHING
        : changes.selection.reviewed.length === 0
          ? "No file's diff could be read within the limits below, so there is nothing to say about the code."
          : "(The model gave no verdict.)"),
  ];
  if (answer?.cut && !cutBeforeAnything) parts.push(CUT_NOTE);
  const notReviewed = renderNotReviewed(changes);
  if (notReviewed) parts.push(notReviewed);
  if (leftOut > 0)
    parts.push(
      `_${leftOut} more inline ${leftOut === 1 ? "comment was" : "comments were"} left out: not on a line of this diff (or on no line that could be read), or over \`review.max_comments\`._`,
    );
  return parts.join("\n\n");
}

/**
 * Creates the review. Every text goes through `toSafeMarkdown`. GitHub refusing an inline
 * comment (422) after the diff check passed means the diff changed under us: the review is then
 * posted without its inline comments rather than lost. A 422 that is a rate limit ("was
 * submitted too quickly") says nothing of the comments, so it is thrown: the job, a push's or a
 * command's (runCommand lets it through), is retried once the limit has passed (the runner reads
 * the wait).
 */
async function postReview(
  options: ReviewPullRequestOptions,
  pull: PullRequestInfo,
  body: string,
  placed: PlacedComment[],
): Promise<{ url: string; comments: number }> {
  const { markdown, github, number, commentId } = options;
  const scope = {
    repo: `${github.repo.owner}/${github.repo.repo}`,
    references: [...new Set([number, ...github.retrieved])],
  };
  const marker = reviewMarker(pull.headSha, commentId, pull.baseRef);
  const comments: NewReviewComment[] = [];
  for (const { path, line, side, start_line, start_side, body: text, suggestion } of placed) {
    // The words and the checked suggestion are made safe apart: only the latter may stay a
    // `suggestion` block, however the model spelt one into its words.
    const words = await markdown.toSafeMarkdown(text, scope);
    const change =
      suggestion === undefined
        ? undefined
        : await markdown.toSafeMarkdown(suggestion, { ...scope, suggestion: true });
    comments.push({
      path,
      line,
      side,
      ...(start_line === undefined ? {} : { start_line, start_side }),
      body: withMarker(
        change === undefined ? words : `${words}\n\n${change}`,
        reviewCommentMarker(pull.headSha),
      ),
    });
  }
  const safeBody = await markdown.toSafeMarkdown(body, scope);
  try {
    const review = await createOrFind(options, marker, {
      commitId: pull.headSha,
      body: withMarker(safeBody, marker),
      comments,
    });
    return { url: review.url, comments: comments.length };
  } catch (error) {
    // Still rate-limited once createOrFind's waits are spent: sent again at once without its
    // comments, it had been posted bare, blaming a diff that had not changed (found by a review).
    if (statusOf(error) !== 422 || comments.length === 0 || isRateLimited(error)) throw error;
    options.log.warn(
      { err: error },
      "GitHub refused the inline comments; posting the review without them",
    );
    const note = await markdown.toSafeMarkdown(
      `_GitHub refused this review's ${comments.length} inline comments (the diff changed while it was written)._`,
      scope,
    );
    const review = await createOrFind(options, marker, {
      commitId: pull.headSha,
      body: withMarker(`${safeBody}\n\n${note}`, marker),
      comments: [],
    });
    return { url: review.url, comments: 0 };
  }
}

/**
 * After a failed creation, when the reviews are read for it: at once, then 1 s and 4 s later, as
 * upsertReply waits before its looks. GitHub may store the review a while after answering 5xx.
 */
const LOOK_DELAYS_MS = [0, 1_000, 4_000];

/**
 * Creates a review, never twice. A 5xx or no answer at all does not say that nothing was created:
 * GitHub may finish a slow review (many inline comments) after its front end gave up. So the
 * reviews are read for this one's marker, a few times over seconds; only when it is not there is
 * the error the command's ("review failed"). Never sent again (see CONTENT_CREATION): a second
 * review of the same head would stand beside one GitHub finished later still.
 */
async function createOrFind(
  options: ReviewPullRequestOptions,
  marker: string,
  review: Parameters<ReviewPullRequestOptions["pulls"]["createReview"]>[1],
): Promise<{ url: string }> {
  const { pulls, number } = options;
  try {
    return await createWaitingOutRateLimits(options, review);
  } catch (error) {
    const status = statusOf(error);
    // A 4xx is GitHub refusing it: nothing was created.
    if (status !== undefined && status < 500) throw error;
    for (const delay of LOOK_DELAYS_MS) {
      if (delay > 0) await options.clock.sleep(delay);
      const created = (await pulls.listReviews(number)).find(
        (r) => r.author === options.botLogin && hasMarkerAtEnd(r.body, marker),
      );
      if (created) {
        options.log.warn({ err: error }, "GitHub failed the review's creation, yet created it");
        return { url: created.url };
      }
    }
    throw error;
  }
}

/**
 * Creates a review, sent again after a rate limit (a 403 or 429 naming one, or a 422 saying it
 * "was submitted too quickly", as rateLimitWaitMs reads it for upsertReply) within TALOS_GITHUB_MAX_RETRIES and _MAX_RETRY_WAIT_SECONDS, as a
 * reply is. Refused, the review was not created, so sending it again cannot double it; and the
 * throttling plugin leaves content creation alone (CONTENT_CREATION). Thrown, the job failed,
 * and its retry paid for the model's answer again.
 */
async function createWaitingOutRateLimits(
  options: ReviewPullRequestOptions,
  review: Parameters<ReviewPullRequestOptions["pulls"]["createReview"]>[1],
): Promise<{ url: string }> {
  const { pulls, number, clock, limits } = options;
  for (let attempt = 0; ; attempt++) {
    try {
      return await pulls.createReview(number, review);
    } catch (error) {
      const waitMs = rateLimitWaitMs(error, clock.now());
      if (
        waitMs === undefined ||
        attempt >= limits.maxRetries ||
        waitMs > limits.maxRetryWaitSeconds * 1000
      )
        throw error;
      options.log.warn(
        { attempt: attempt + 1, waitMs, status: statusOf(error) },
        "GitHub rate-limited the review's creation; sending it again after the wait",
      );
      await clock.sleep(waitMs);
    }
  }
}

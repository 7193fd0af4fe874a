import type { Logger } from "pino";
import type { Assistant } from "../agent/assistant.js";
import type { Clock } from "../clock.js";
import type { RepoConfig } from "../config.js";
import { isOtherBase, pullRequestSummaryMarker, readMarker } from "../github/comment-markers.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import type { PullRequestClient, PullRequestInfo } from "../github/create-pull-request-client.js";
import type { CommentInfo, RepoClient } from "../github/create-repo-client.js";
import { listCommentsFinding } from "../github/list-comments-finding.js";
import type { Octokit } from "../github/octokit.js";
import { upsertReply, type UpsertReplyResult } from "../github/upsert-reply.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import { askAboutChanges } from "../pulls/ask-about-changes.js";
import { createFileClassifier, type FileCategory } from "../pulls/classify-file.js";
import {
  loadPullRequestChanges,
  type PullRequestChanges,
} from "../pulls/load-pull-request-changes.js";
import { nameSpan } from "../markdown/safe-text.js";
import { describeScope, renderNotReviewed, shortSha } from "../pulls/render-changes.js";
import type { SkipReason } from "../pulls/select-files.js";

export interface SummarizePullRequestOptions {
  assistant: Assistant;
  github: RepoClient;
  pulls: PullRequestClient;
  octokit: Octokit;
  /** Read just now: its head is the one to describe. */
  pull: PullRequestInfo;
  /** The diff's token budget and ignored files, shared with reviews. */
  settings: RepoConfig["review"];
  /** Asked once the run is known to be needed, before the model is called. */
  mayRun: () => Promise<boolean>;
  /**
   * The base branch changed (a retarget): a summary whose marker does not name its base (written
   * before markers did) is taken to describe the diff against the old base, and is written again
   * from the whole pull request. One whose marker names it is judged by that alone: a retried
   * job finds the summary it wrote against the new base, and asks the model nothing more.
   */
  baseChanged?: boolean | undefined;
  botLogin: string;
  markdown: MarkdownService;
  limits: GitHubLimits;
  clock: Clock;
  log: Logger;
}

export type SummaryOutcome =
  | {
      status: "posted";
      action: UpsertReplyResult["action"];
      head: string;
      since?: string | undefined;
    }
  /** The summary already describes the head: a burst of pushes collapsed into one run. */
  | { status: "current"; head: string }
  | { status: "over-budget" };

const HEADING = "**Summary of this pull request**";
const FILES_HEADING = "**Files touched**";
const MAX_FILES_NAMED = 20;
const MAX_PREVIOUS_CHARS = 6_000;
/**
 * Why a file's diff is never shown to the model, whatever the budget, and nothing the summary
 * should say comes of it. A file deleted (or only lines deleted) is not among them: the model,
 * told its name, may say what the push took out.
 */
const NEVER_SHOWN: ReadonlySet<SkipReason> = new Set<SkipReason>(["ignored", "unchanged"]);

/**
 * Keeps one summary comment per pull request, edited in place, its marker naming the head it
 * describes. A summary already at the head is left alone. Otherwise, when the head descends from
 * the summarized commit, the model reads only what changed since, with the previous summary (a
 * push that brings no diff the model is shown keeps the summary's text unasked); after a
 * force-push, or a push that took back part of what it describes, or a retarget to another
 * base branch, it reads the whole pull request again.
 */
export async function summarizePullRequest(
  options: SummarizePullRequestOptions,
): Promise<SummaryOutcome> {
  const { pull, github, log } = options;
  const comments = await listCommentsFinding(
    github,
    pull.number,
    (comment) => findSummary([comment], options.botLogin) !== undefined,
  );
  const existing = findSummary(comments, options.botLogin);
  const retargeted =
    existing?.base === undefined
      ? options.baseChanged === true
      : isOtherBase(existing.base, pull.baseRef);
  if (existing?.sha === pull.headSha && !retargeted)
    return { status: "current", head: pull.headSha };
  if (!(await options.mayRun())) return { status: "over-budget" };
  const changes = await loadPullRequestChanges({
    github,
    pulls: options.pulls,
    pull,
    since: existing?.sha,
    // The summarized commit's changes were read against the old base: none of it still holds.
    retargeted,
    listAll: true,
    wholeAfterRevert: true,
    settings: options.settings,
    assistant: options.assistant,
  });
  const { reviewed, skipped, unlisted } = changes.selection;
  const metrics = options.assistant.metrics;
  metrics.reviewFiles.observe({ kind: "pr_summary", outcome: "reviewed" }, reviewed.length);
  metrics.reviewFiles.observe(
    { kind: "pr_summary", outcome: "skipped" },
    skipped.length + unlisted,
  );
  // Nothing of the pull request's own diff came with the push ("Update branch" merged only the
  // base branch's changes in), or only files whose diff no model is shown (`review.ignore`,
  // renames without changes): the model would read no diff, so the summary so far is kept, as a
  // push's review counts such a push as current or as nothing to review. Asked, it was told to
  // "update" the summary from nothing, a run and its tokens on every docs-only push, and could
  // rewrite a correct summary (found by a review). A file left out for want of room (the token
  // budget, GitHub's limits) is still the model's to read: then it is asked, as before.
  const unchanged =
    changes.since !== undefined &&
    reviewed.length === 0 &&
    unlisted === 0 &&
    skipped.every((file) => NEVER_SHOWN.has(file.reason))
      ? existing?.text
      : undefined;
  const text =
    unchanged || (await askModel(options, changes, changes.since ? existing?.text : undefined));
  const body = [
    `${HEADING} at \`${shortSha(pull.headSha)}\`, covering ${describeScope(changes, "post")}. It is kept up to date on every push.`,
    text || "(The model gave no summary.)",
    renderFilesTouched(changes),
    renderNotReviewed(changes),
  ]
    .filter(Boolean)
    .join("\n\n");
  const result = await upsertReply({
    octokit: options.octokit,
    ...github.repo,
    issueNumber: pull.number,
    marker: pullRequestSummaryMarker(pull.headSha, pull.baseRef),
    isSameReply: (marker) => marker.kind === "pr-summary",
    knownComments: comments,
    body,
    references: github.retrieved,
    markdown: options.markdown,
    botLogin: options.botLogin,
    limits: options.limits,
    clock: options.clock,
  });
  log.info(
    { head: pull.headSha, since: changes.since, action: result.action },
    "pull request summarized",
  );
  return { status: "posted", action: result.action, head: pull.headSha, since: changes.since };
}

/** Talos's summary comment in the thread: the head it describes, and its model-written part. */
function findSummary(
  comments: CommentInfo[],
  botLogin: string,
): { sha: string | undefined; base: string | undefined; text: string } | undefined {
  for (const comment of comments) {
    if (comment.author !== botLogin) continue;
    const marker = readMarker(comment.body);
    if (marker?.kind !== "pr-summary") continue;
    // The model's part sits between the heading's paragraph and the list of files.
    const start = comment.body.indexOf("\n\n");
    const end = comment.body.indexOf(`\n\n${FILES_HEADING}`);
    const text = start >= 0 && end > start ? comment.body.slice(start + 2, end) : "";
    return { sha: marker.values[0], base: marker.values[1] || undefined, text };
  }
  return undefined;
}

async function askModel(
  options: SummarizePullRequestOptions,
  changes: PullRequestChanges,
  previous: string | undefined,
): Promise<string> {
  const { text } = await askAboutChanges({
    ...options,
    changes,
    prompt: "pr-summary",
    values: (fence) => ({
      previous: previous
        ? `The summary so far, written for commit ${shortSha(changes.since ?? "")}: update it with the new changes below, keeping what still holds.\n${fence.wrap("previous summary", previous.slice(0, MAX_PREVIOUS_CHARS))}`
        : "There is no earlier summary: write one.",
    }),
    kind: "pr_summary",
  });
  return text.trim();
}

const CATEGORY_NAMES: Record<FileCategory, string> = {
  code: "Code",
  test: "Tests",
  docs: "Docs",
  generated: "Generated, vendored and lockfiles",
};

/** Every file of the pull request, grouped as the budget ranks them, with its line counts. */
function renderFilesTouched(changes: PullRequestChanges): string {
  const groups = new Map<FileCategory, string[]>();
  const classify = createFileClassifier(changes.attributes);
  for (const file of changes.files) {
    const category = classify(file.filename);
    const renamed = file.previous_filename ? ` (from ${nameSpan(file.previous_filename)})` : "";
    const entry = `${nameSpan(file.filename)}${renamed} +${file.additions} −${file.deletions}`;
    const group = groups.get(category);
    if (group) group.push(entry);
    else groups.set(category, [entry]);
  }
  const lines = (["code", "test", "docs", "generated"] as const).flatMap((category) => {
    const entries = groups.get(category);
    if (!entries) return [];
    const more =
      entries.length > MAX_FILES_NAMED ? `, and ${entries.length - MAX_FILES_NAMED} more` : "";
    return [
      `- ${CATEGORY_NAMES[category]} (${entries.length}): ${entries.slice(0, MAX_FILES_NAMED).join(", ")}${more}`,
    ];
  });
  if (changes.unlisted > 0)
    lines.push(`- ${changes.unlisted} more files that GitHub does not list`);
  const total = changes.files.length + changes.unlisted;
  return `${FILES_HEADING} (${total}):\n${lines.join("\n")}`;
}

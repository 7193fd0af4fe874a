import type { Fence } from "../agent/untrusted-text.js";
import type { PullRequestInfo } from "../github/create-pull-request-client.js";
import { nameSpan } from "../markdown/safe-text.js";
import type { PullRequestChanges } from "./load-pull-request-changes.js";
import type { SkipReason } from "./select-files.js";

const REASONS: Record<SkipReason, string> = {
  "over-budget": "Did not fit the token budget (`review.max_tokens`)",
  "no-patch": "No diff from GitHub (binary, or too large)",
  "over-file-limit": "Beyond the 3,000 files GitHub lists",
  ignored: "Matched by `review.ignore`",
  removed: "Deleted",
  "deletions-only": "Only deletions",
  unchanged: "Renamed or copied without changes",
};
const MAX_NAMED = 30;
// The files not shown are named to the model up to this many, and the rest counted by reason:
// a list of thousands (a 3,000-file pull request) would take more of the prompt than the diff,
// past `review.max_tokens` and the job's cap, which reserve only a few thousand tokens for
// everything that is not the diff.
const MAX_NAMED_IN_PROMPT = 30;
// A first cut, before any count: the text is the author's, of any length.
const MAX_TITLE_AND_BODY_CHARS = 8_000;

/**
 * Each untrusted text a prompt shows besides the diff (the title and description, the previous
 * summary, the names of the files not shown) is cut to this many tokens: a character is not a
 * token bound, and 8,000 characters of Japanese are over 9,000 tokens.
 */
export const MAX_TEXT_TOKENS = 1_000;
/**
 * What a run's prompt takes besides the diff: the system prompt (the repository's description
 * in it is at most 350 characters), the task's instructions, and the three texts above.
 */
export const NON_DIFF_TOKENS = 2_000 + 3 * MAX_TEXT_TOKENS;

/** The short name of a commit, as GitHub shows it. */
export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/**
 * The prompt's parts about the pull request and its diff; every untrusted text is fenced: the
 * diff by `codeFence`, bounded by the selection already, the rest by `fence`, which cuts each
 * to MAX_TEXT_TOKENS.
 */
export function renderChangesForPrompt(
  pull: PullRequestInfo,
  changes: PullRequestChanges,
  fence: Fence,
  codeFence: Fence,
): { pull_request: string; scope: string; diff: string; not_reviewed: string } {
  const { reviewed, skipped, unlisted } = changes.selection;
  const described = `${pull.title}\n\n${pull.body ?? ""}`.slice(0, MAX_TITLE_AND_BODY_CHARS);
  const notShown = skipped
    .slice(0, MAX_NAMED_IN_PROMPT)
    .map((s) => `${s.path}: ${REASONS[s.reason]}`);
  const more = new Map<SkipReason, number>();
  for (const { reason } of skipped.slice(MAX_NAMED_IN_PROMPT))
    more.set(reason, (more.get(reason) ?? 0) + 1);
  for (const [reason, count] of more)
    notShown.push(`${count} more ${count === 1 ? "file" : "files"} not shown: ${REASONS[reason]}`);
  if (unlisted > 0) notShown.push(`${REASONS["over-file-limit"]}: ${unlisted} files`);
  return {
    pull_request: `Pull request #${pull.number}, ${pull.changedFiles} files changed, into ${nameSpan(pull.baseRef)}. Its title and description:\n${fence.wrap("pull request title and description", described)}`,
    scope: describeScope(changes, "prompt"),
    diff:
      reviewed.length > 0
        ? codeFence.wrapCode("pull request diff", reviewed.map((r) => r.text).join("\n\n"))
        : "(No file's diff is shown: see the list of files not shown below.)",
    not_reviewed:
      notShown.length > 0
        ? `Files not shown, each with the reason:\n${fence.wrap("file names", notShown.join("\n"))}`
        : "Every changed file is shown.",
  };
}

/** One sentence on what the run read: everything, or the changes since an earlier commit. */
export function describeScope(changes: PullRequestChanges, audience: "prompt" | "post"): string {
  if (changes.since)
    return audience === "prompt"
      ? `Only the changes since commit ${shortSha(changes.since)}, which was already covered, are shown.`
      : `the changes since \`${shortSha(changes.since)}\``;
  if (changes.fallback === "force-push")
    return audience === "prompt"
      ? "The branch was force-pushed since it was last covered, so the whole pull request is shown."
      : "the whole pull request (the branch was force-pushed since the last run, so it was read again in full)";
  if (changes.fallback === "revert")
    return audience === "prompt"
      ? "A push took back some of the changes already covered, so the whole pull request is shown."
      : "the whole pull request (a push took back some of its changes, so it was read again in full)";
  if (changes.fallback === "retarget")
    return audience === "prompt"
      ? "The pull request's base branch changed since it was last covered, so the whole pull request is shown."
      : "the whole pull request (its base branch changed since the last run, so it was read again in full)";
  if (changes.fallback === "too-many-files")
    return audience === "prompt"
      ? "The whole pull request is shown (too much changed since it was last covered to compare)."
      : "the whole pull request (too much changed since the last run to compare)";
  return audience === "prompt" ? "The whole pull request is shown." : "the whole pull request";
}

/**
 * The "Not reviewed" section of a posted text: every file the model did not read, grouped by
 * reason, so that nothing is skipped silently. Empty when every file was read.
 */
export function renderNotReviewed(changes: PullRequestChanges): string {
  const { skipped, unlisted } = changes.selection;
  if (skipped.length === 0 && unlisted === 0) return "";
  const groups = new Map<SkipReason, string[]>();
  for (const { path, reason } of skipped) groups.set(reason, [...(groups.get(reason) ?? []), path]);
  const lines = [...groups].map(([reason, paths]) => {
    const named = paths.slice(0, MAX_NAMED).map((path) => nameSpan(path));
    const more = paths.length > MAX_NAMED ? ` and ${paths.length - MAX_NAMED} more` : "";
    return `- ${REASONS[reason]} (${paths.length}): ${named.join(", ")}${more}`;
  });
  if (unlisted > 0) lines.push(`- ${REASONS["over-file-limit"]}: ${unlisted} files`);
  const total = skipped.length + unlisted;
  return `**Not reviewed** (${total} ${total === 1 ? "file" : "files"}):\n${lines.join("\n")}`;
}

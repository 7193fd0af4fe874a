import type { Assistant } from "../agent/assistant.js";
import { UTF8_TOKEN_BOUND } from "../agent/count-tokens.js";
import { cleanCode } from "../agent/untrusted-text.js";
import type { RepoClient } from "../github/create-repo-client.js";
import type {
  Comparison,
  PullRequestClient,
  PullRequestInfo,
} from "../github/create-pull-request-client.js";
import { parseGitAttributes, type GitAttributes } from "./classify-file.js";
import { parsePatch, type Hunk } from "./parse-patch.js";
import type { PullRequestFile } from "./pull-request-file.js";
import { NON_DIFF_TOKENS } from "./render-changes.js";
import { selectFiles, type FileSelection } from "./select-files.js";

export interface PullRequestChanges {
  /**
   * Every file of the pull request (up to GitHub's 3,000), for the list of files touched; only
   * the diff's files when `listAll` was not asked for and the diff is a comparison.
   */
  files: PullRequestFile[];
  /** Files GitHub did not list (beyond 3,000). */
  unlisted: number;
  /** The commit this run's diff starts from: absent for the whole pull request. */
  since?: string | undefined;
  /** Why the whole pull request is read although a `since` was asked for. */
  fallback?: "force-push" | "too-many-files" | "revert" | "retarget" | undefined;
  /** What the model reads of the diff, within the token budget, and what it does not. */
  selection: FileSelection & { unlisted: number };
  /** The base branch's `.gitattributes`, for telling generated files apart. */
  attributes: GitAttributes;
  /**
   * For a comparison: per file, the new-side lines the pull request's own diff adds. Only these
   * can carry an inline comment: a line the comparison adds may have come from the base branch
   * (an "Update branch" merge), and GitHub refuses a comment on a line outside the PR's diff.
   */
  prAdded?: ReadonlyMap<string, ReadonlySet<number>> | undefined;
}

export interface LoadChangesOptions {
  github: RepoClient;
  pulls: PullRequestClient;
  pull: PullRequestInfo;
  /** The last commit already read (summarized or reviewed); absent or `full`: read everything. */
  since?: string | undefined;
  full?: boolean;
  /**
   * `since` was read against another base branch (a retarget since): its diff does not hold
   * against this one, so everything is read, and the scope says why.
   */
  retargeted?: boolean;
  /** Read the whole file list even when the diff is a comparison (a summary lists every file). */
  listAll?: boolean;
  /**
   * Read the whole pull request when the push took back part of what `since` covered: a summary
   * must not go on describing it. A review has nothing to say of code that is gone.
   */
  wholeAfterRevert?: boolean;
  settings: { max_tokens: number; ignore: readonly string[] };
  /**
   * Its tokenizer counts the diff, as its scrubber leaves it; its job cap and budget account
   * bound it too.
   */
  assistant: Pick<Assistant, "limits" | "account" | "scrub">;
}

/**
 * The pull request's changes for one run: the whole diff, or only what came after `since` when
 * `since` is still an ancestor of the head (the compare API). A force-push that dropped `since`,
 * a comparison too big for GitHub to list, or (when asked) a push that reverted part of the pull
 * request reads everything again. Either way the files are ranked and cut to the token budget
 * (`selectFiles`): nothing is left out without being listed.
 */
export async function loadPullRequestChanges(
  options: LoadChangesOptions,
): Promise<PullRequestChanges> {
  const { github, pulls, pull, settings } = options;
  const retargeted = options.since !== undefined && !options.full && options.retargeted === true;
  const asked = options.full || retargeted ? undefined : options.since;
  let comparison: Comparison | undefined;
  let fallback: PullRequestChanges["fallback"] = retargeted ? "retarget" : undefined;
  if (asked) {
    const compared = await compareOrGiveUp(pulls, asked, pull.headSha);
    if (compared === "too-slow") {
      fallback = "too-many-files";
    } else if (!compared || compared.status === "diverged" || compared.status === "behind") {
      fallback = "force-push";
    } else if (!compared.complete) {
      fallback = "too-many-files";
    } else {
      comparison = compared;
    }
  }
  // The pull request's own files are read in every case, a push's review included: a comparison
  // between two heads also carries whatever a merge of the base branch ("Update branch") brought
  // in, and only the PR's diff tells those changes apart from the author's.
  const listed = await pulls.listFiles(pull.number, pull.changedFiles);
  if (comparison && listed.unlisted > 0) {
    // Past GitHub's 3,000 files the PR's diff cannot be checked: read it whole, as listed.
    comparison = undefined;
    fallback = "too-many-files";
  }
  let restricted = comparison ? restrictToPullRequest(comparison.files, listed.files) : undefined;
  if (
    restricted &&
    asked &&
    options.wholeAfterRevert &&
    (await isTakenBack(pulls, pull.baseSha, asked, restricted.outside))
  ) {
    comparison = undefined;
    restricted = undefined;
    fallback = "revert";
  }
  const since = comparison ? asked : undefined;
  const diffFiles = restricted?.files ?? listed.files;
  const diffUnlisted = comparison ? 0 : (listed?.unlisted ?? 0);
  // The base branch's `.gitattributes`, which the maintainers wrote: the head's is the pull
  // request author's, who could mark their own code `linguist-generated` to keep it from review
  // (or feed the glob matcher patterns built to be slow).
  const attributes = parseGitAttributes(await readGitAttributes(github, pull.baseRef));
  // `review.max_tokens`, but never more than the job's cap and the day's budgets leave: a diff
  // that fits the setting must not carry a run past them.
  const { limits, account, scrub } = options.assistant;
  // What is not the diff is bounded in tokens (render-changes.ts), and so is the answer.
  const reserved = NON_DIFF_TOKENS + (limits.maxOutputTokens ?? 0);
  // What the settings give a run (`review.max_tokens`, within TALOS_AGENT_MAX_TOKENS), and
  // what the budgets leave of it.
  const room = Math.min(settings.max_tokens, limits.maxTokens - reserved);
  const budgetLeft = (account?.remaining() ?? Infinity) - reserved;
  const counter = limits.tokenCounter ?? UTF8_TOKEN_BOUND;
  const select = (maxTokens: number) =>
    selectFiles({
      files: diffFiles,
      maxTokens: Math.max(0, maxTokens),
      countTokens: (text, limit) => counter.countTokens(text, limit),
      clean: (text) => cleanCode(text, scrub),
      ignore: settings.ignore,
      attributes,
      unlisted: diffUnlisted,
    });
  const selection = select(Math.min(room, budgetLeft));
  // Spending left out a file the settings would have read: over budget, as the model would be.
  // Left out as not fitting, it was blamed on `review.max_tokens`, and the review (or summary)
  // of the rest stood as the head's, so the next push's run started after it and the file was
  // never read (found by a review; with no file read at all, `/talos review` posted a review no
  // model wrote, at every command). Refused, nothing marks the head as read: the next run, on
  // another day or push, reads since the last one, these files included. Marking the head as
  // read in part would take a second kind of marker; refusing keeps one. A diff too big for the
  // settings themselves is still listed as not fitting.
  if (
    account &&
    budgetLeft < room &&
    selection.skipped.some((file) => file.reason === "over-budget")
  ) {
    const read = new Set(selection.reviewed.map((r) => r.file.filename));
    if (select(room).reviewed.some((r) => !read.has(r.file.filename)))
      throw account.refuse(reserved + room);
  }
  return {
    files: comparison && !options.listAll ? diffFiles : listed.files,
    unlisted: comparison && !options.listAll ? 0 : listed.unlisted,
    since,
    fallback,
    selection,
    attributes,
    prAdded: restricted?.prAdded,
  };
}

/**
 * The comparison, or "too-slow" when GitHub answers it with a server error (already retried by
 * the Octokit plugin). GitHub stops a request after 10 s with a "Server Error" ("this diff is
 * taking too long to generate"), and does so every time for a large push: failing there would
 * fail every later push too, since each compares from the same commit. The pull request's own
 * file list is paginated and still answers, so the whole pull request is read instead.
 * https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#timeouts
 */
async function compareOrGiveUp(
  pulls: PullRequestClient,
  base: string,
  head: string,
): Promise<Comparison | undefined | "too-slow"> {
  try {
    return await pulls.compare(base, head);
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status !== undefined && status >= 500) return "too-slow";
    throw error;
  }
}

/**
 * The part of a comparison that is the pull request's own: files the PR does not change are
 * dropped (the base branch changed them), and of the rest only the hunks that touch a line the
 * PR's diff adds or deletes are kept, so the model is not shown the base branch's changes as the
 * author's. Both diffs end at the head, so their new-side line numbers agree. A revert of the
 * PR's own changes is dropped too (it is not in the PR's diff any more): `outside` keeps the
 * lines of every dropped hunk, for `isTakenBack` to tell the two apart.
 */
function restrictToPullRequest(
  compared: readonly PullRequestFile[],
  own: readonly PullRequestFile[],
): { files: PullRequestFile[]; prAdded: Map<string, Set<number>>; outside: OutsideLines } {
  const ownByName = new Map(own.map((f) => [f.filename, f]));
  const files: PullRequestFile[] = [];
  const prAdded = new Map<string, Set<number>>();
  const outside: OutsideLines = new Map();
  for (const file of compared) {
    const mine = ownByName.get(file.filename);
    if (!mine) {
      if (file.patch !== undefined) keepLines(outside, file.filename, parsePatch(file.patch));
      continue;
    }
    // Without the PR's patch (binary, or too large for GitHub to show) nothing can be matched:
    // the file is still the PR's, but no line of it is known to take a comment.
    if (mine.patch === undefined || file.patch === undefined) {
      files.push(file);
      prAdded.set(file.filename, new Set());
      continue;
    }
    const points = changePoints(parsePatch(mine.patch));
    prAdded.set(file.filename, points.added);
    const hunks: Hunk[] = [];
    const dropped: Hunk[] = [];
    for (const hunk of parsePatch(file.patch))
      (touchesPullRequest(hunk, points) ? hunks : dropped).push(hunk);
    keepLines(outside, file.filename, dropped);
    if (hunks.length === 0) continue;
    let additions = 0;
    let deletions = 0;
    for (const hunk of hunks)
      for (const line of hunk.lines) {
        if (line.kind === "add") additions++;
        else if (line.kind === "delete") deletions++;
      }
    files.push({
      ...file,
      additions,
      deletions,
      changes: additions + deletions,
      patch: hunks.map(renderHunk).join("\n"),
    });
  }
  return { files, prAdded, outside };
}

/** Per file, the texts of the lines that changes outside the PR's diff add and delete. */
type OutsideLines = Map<string, { added: Set<string>; deleted: Set<string> }>;

// A line with no letter or digit (a brace, a blank) is in too many files to tell anything.
const MEANINGFUL = /[\p{L}\p{N}]/u;

function keepLines(outside: OutsideLines, path: string, hunks: Hunk[]): void {
  for (const hunk of hunks)
    for (const line of hunk.lines) {
      if (line.kind === "context" || !MEANINGFUL.test(line.text)) continue;
      const lines = outside.get(path) ?? { added: new Set<string>(), deleted: new Set<string>() };
      outside.set(path, lines);
      (line.kind === "add" ? lines.added : lines.deleted).add(line.text);
    }
}

/**
 * Whether the changes of a comparison that lie outside the PR's diff took back part of that
 * diff as it was at `since` (deleted a line it added, or put back one it deleted) rather than
 * came from the base branch ("Update branch"). The diffs at the head cannot tell the two apart:
 * the PR's diff at `since` (base...since) can, one more comparison, asked for only when there
 * are such changes. When GitHub cannot give it, the answer is yes: reading everything is safe.
 */
async function isTakenBack(
  pulls: PullRequestClient,
  base: string,
  since: string,
  outside: OutsideLines,
): Promise<boolean> {
  if (outside.size === 0) return false;
  const before = await compareOrGiveUp(pulls, base, since);
  if (before === "too-slow" || !before?.complete) return true;
  return before.files.some((file) => {
    const lines = outside.get(file.filename);
    if (!lines || file.patch === undefined) return false;
    return parsePatch(file.patch).some((hunk) =>
      hunk.lines.some((line) =>
        line.kind === "add"
          ? lines.deleted.has(line.text)
          : line.kind === "delete" && lines.added.has(line.text),
      ),
    );
  });
}

interface ChangePoints {
  /** New-side numbers of the lines the diff adds. */
  added: Set<number>;
  /** For each deleted line, the new-side number of the line it was deleted before. */
  deletedAt: Set<number>;
}

function changePoints(hunks: Hunk[]): ChangePoints {
  const points: ChangePoints = { added: new Set(), deletedAt: new Set() };
  for (const hunk of hunks) forEachChange(hunk, points, (set, n) => set.add(n));
  return points;
}

function touchesPullRequest(hunk: Hunk, own: ChangePoints): boolean {
  let touches = false;
  forEachChange(hunk, own, (set, n) => {
    if (set.has(n)) touches = true;
  });
  return touches;
}

/** Calls `visit` with each change of `hunk` and the set of `points` its kind belongs to. */
function forEachChange(
  hunk: Hunk,
  points: ChangePoints,
  visit: (set: Set<number>, line: number) => void,
): void {
  let next = hunk.newStart;
  for (const line of hunk.lines) {
    if (line.kind === "delete") visit(points.deletedAt, next);
    else {
      next = (line.newLine ?? next) + 1;
      if (line.kind === "add") visit(points.added, next - 1);
    }
  }
}

function renderHunk(hunk: Hunk): string {
  const marks = { add: "+", delete: "-", context: " " } as const;
  return [hunk.header, ...hunk.lines.map((l) => `${marks[l.kind]}${l.text}`)].join("\n");
}

/** `.gitattributes` at `ref` (for `linguist-generated`), or nothing when there is none. */
async function readGitAttributes(github: RepoClient, ref: string): Promise<string> {
  try {
    return (await github.getFile(".gitattributes", ref)).text ?? "";
  } catch (error) {
    if ((error as { status?: number }).status === 404) return "";
    throw error;
  }
}

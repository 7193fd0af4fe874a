import type { Assistant } from "../agent/assistant.js";
import { UTF8_TOKEN_BOUND } from "../agent/count-tokens.js";
import type { RepoClient } from "../github/create-repo-client.js";
import type {
  Comparison,
  PullRequestClient,
  PullRequestInfo,
} from "../github/create-pull-request-client.js";
import { parseGitAttributes, type GitAttributes } from "./classify-file.js";
import type { PullRequestFile } from "./pull-request-file.js";
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
  fallback?: "force-push" | "too-many-files" | undefined;
  /** What the model reads of the diff, within the token budget, and what it does not. */
  selection: FileSelection & { unlisted: number };
  /** The base branch's `.gitattributes`, for telling generated files apart. */
  attributes: GitAttributes;
}

export interface LoadChangesOptions {
  github: RepoClient;
  pulls: PullRequestClient;
  pull: PullRequestInfo;
  /** The last commit already read (summarized or reviewed); absent or `full`: read everything. */
  since?: string | undefined;
  full?: boolean;
  /** Read the whole file list even when the diff is a comparison (a summary lists every file). */
  listAll?: boolean;
  settings: { max_tokens: number; ignore: readonly string[] };
  /** Its tokenizer counts the diff; its job cap and budget account bound it too. */
  assistant: Pick<Assistant, "limits" | "account">;
}

// What a run needs besides the diff: system prompt, task, title and description, the answer.
const RESERVED_TOKENS = 4_000;

/**
 * The pull request's changes for one run: the whole diff, or only what came after `since` when
 * `since` is still an ancestor of the head (the compare API). A force-push that dropped `since`,
 * or a comparison too big for GitHub to list, reads everything again. Either way the files are
 * ranked and cut to the token budget (`selectFiles`): nothing is left out without being listed.
 */
export async function loadPullRequestChanges(
  options: LoadChangesOptions,
): Promise<PullRequestChanges> {
  const { github, pulls, pull, settings } = options;
  let comparison: Comparison | undefined;
  let fallback: PullRequestChanges["fallback"];
  if (options.since && !options.full) {
    const compared = await pulls.compare(options.since, pull.headSha);
    if (!compared || compared.status === "diverged" || compared.status === "behind") {
      fallback = "force-push";
    } else if (!compared.complete) {
      fallback = "too-many-files";
    } else {
      comparison = compared;
    }
  }
  // The whole list is read when the diff is the whole pull request, or for the list of files
  // touched; a push's review needs only the comparison.
  const listed =
    comparison && !options.listAll
      ? undefined
      : await pulls.listFiles(pull.number, pull.changedFiles);
  const since = comparison ? options.since : undefined;
  const diffFiles = comparison?.files ?? listed?.files ?? [];
  const diffUnlisted = comparison ? 0 : (listed?.unlisted ?? 0);
  // The base branch's `.gitattributes`, which the maintainers wrote: the head's is the pull
  // request author's, who could mark their own code `linguist-generated` to keep it from review
  // (or feed the glob matcher patterns built to be slow).
  const attributes = parseGitAttributes(await readGitAttributes(github, pull.baseRef));
  // `review.max_tokens`, but never more than the job's cap and the day's budgets leave: a diff
  // that fits the setting must not carry a run past them.
  const { limits, account } = options.assistant;
  const left = Math.min(limits.maxTokens, account?.remaining() ?? Infinity) - RESERVED_TOKENS;
  const counter = limits.tokenCounter ?? UTF8_TOKEN_BOUND;
  const selection = selectFiles({
    files: diffFiles,
    maxTokens: Math.max(0, Math.min(settings.max_tokens, left)),
    countTokens: (text, limit) => counter.countTokens(text, limit),
    ignore: settings.ignore,
    attributes,
    unlisted: diffUnlisted,
  });
  return {
    files: listed?.files ?? diffFiles,
    unlisted: listed?.unlisted ?? 0,
    since,
    fallback,
    selection,
    attributes,
  };
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

import { BudgetExceededError } from "../agent/token-budgets.js";
import { compileTitlePattern, type RepoConfig } from "../config.js";
import type { PullRequestClient, PullRequestInfo } from "../github/create-pull-request-client.js";
import type { IssueInfo } from "../github/create-repo-client.js";
import { toIssueMemory } from "../memory/memory-inputs.js";
import { reviewPullRequest } from "../pulls/review-pull-request.js";
import type { AutomationOptions } from "./automation-options.js";
import { isBotAuthor } from "./is-bot-author.js";
import { summarizePullRequest } from "./summarize-pull-request.js";

/** What the webhook says of the pull request; the head is read again before any work. */
export interface PullRequestEvent {
  action: string;
  installation: number;
  /** The repository's id, from the payload: the hourly budget is kept by it. */
  repository: number;
  /** The pull request as an issue, for memory. */
  issue: IssueInfo;
  draft: boolean;
  authorIsBot: boolean;
  /** False when a bot sent the event: memory follows it, and nothing else runs. */
  automatic: boolean;
  /**
   * An edit that retargeted the base branch: the diff is another one at the same head, so the
   * summary is written again from the whole pull request, and no push review runs.
   */
  baseChanged: boolean;
}

export interface PullRequestChangedOptions extends AutomationOptions {
  event: PullRequestEvent;
  pulls: PullRequestClient;
  /** The job's id: its retries take no second run from the hourly budget. */
  job: string;
}

// GitHub caps titles at 256 characters; anything longer is not a title GitHub sent.
const MAX_TITLE_CHARS = 256;
// Reviews of a head that moved while the model worked, after the first: each is a model call.
const MAX_STALE_REVIEWS = 2;

/**
 * A pull request opened, reopened, made ready, pushed to or retargeted: memory follows it (bots'
 * too), its summary is refreshed, and once a maintainer has asked for a review, each push's new
 * changes are reviewed. Nothing runs while it is a draft: made ready, it gets both for its head,
 * pushes made as a draft included. Jobs of one pull request run one at a time, and each works on
 * the head as it is when the job runs: of a burst of pushes, the first job does the work and the
 * rest find the summary and review already at the head.
 */
export async function onPullRequestChanged(options: PullRequestChangedOptions): Promise<void> {
  const { event, log } = options;
  const repo = `${options.github.repo.owner}/${options.github.repo.repo}`;
  // Memory trouble (an embedding outage, say) must not cost the pull request its summary and
  // review: it is reported once they have run, which fails the job so that it runs again (and
  // finds the summary and the review already at the head).
  let memoryError: unknown;
  // An edit comes here only when it retargeted the pull request; it may have changed the title
  // or body as well, which memory would otherwise have been told by the thread-changed job.
  if (event.action === "opened" || event.action === "reopened" || event.action === "edited") {
    try {
      const memory = await options.memory();
      if (memory) await memory.add(toIssueMemory(repo, event.issue));
    } catch (error) {
      memoryError = error;
      log.error({ err: error }, "remembering the pull request failed");
    }
  }
  await summarizeAndReview(options);
  if (memoryError !== undefined) throw memoryError;
}

/** The summary and the push review, when the repository and the pull request call for them. */
async function summarizeAndReview(options: PullRequestChangedOptions): Promise<void> {
  const { event, config, log } = options;
  const skip = skipReason(event, config);
  if (skip) return log.debug({ reason: skip }, "no pull-request automation");
  if (!options.assistant)
    return log.info("pull-request summaries are on, but no language model is configured");
  const assistant = options.assistant;
  const pull = await options.pulls.getPullRequest(event.issue.number);
  const now = skipReasonAt(event, pull, config);
  if (now) return log.debug({ reason: now }, "no pull-request automation");
  const metrics = assistant.metrics;
  const botLogin = (await options.identity.get()).botLogin;
  // The summary and the push review are a run each.
  const mayRun = (what: string) => async () => {
    const allowed = await options.budget.take(
      { installation: event.installation, repository: event.repository },
      config.automation.max_runs_per_hour,
      `${options.job}:${what}`,
    );
    if (!allowed) log.warn("automatic work skipped: this hour's automation budget is spent");
    return allowed;
  };
  // Which run the day's token budget stopped, if it does: counted as that run's outcome.
  let running: "pr_summary" | "review" = "pr_summary";
  try {
    if (config.pull_requests.enabled) {
      const summary = await summarizePullRequest({
        ...options,
        assistant,
        pull,
        settings: config.review,
        mayRun: mayRun("summary"),
        botLogin,
        baseChanged: event.baseChanged,
      });
      metrics.pullRequestRuns.inc({ kind: "pr_summary", outcome: summary.status });
    }
    // Not on "opened": no review can have been asked for yet. A pull request made ready (or
    // reopened) has had its pushes skipped meanwhile: the review takes them all at once. Not on
    // a retarget: no one pushed, and a review unasked of what the new base brings would be one
    // more review no one wanted. `/talos review`, or the next push's review, reads the new diff
    // whole: the last review's marker names the old base.
    if (
      event.action !== "opened" &&
      !event.baseChanged &&
      config.review.enabled &&
      config.review.on_push
    ) {
      running = "review";
      const review = (head: PullRequestInfo) =>
        reviewPullRequest({
          assistant,
          github: options.github,
          pulls: options.pulls,
          number: pull.number,
          pull: head,
          settings: config.review,
          full: false,
          botLogin,
          markdown: options.markdown,
          limits: options.limits,
          clock: options.clock,
          log,
          mayRun: mayRun("review"),
        });
      // `pull` was read before the summary's model call: a pull request closed or made a draft
      // since is caught when the review reads it again after its own model call, and nothing is
      // posted. That race (seconds) costs at worst the review's model call; reading it again
      // here would cost a request on every push.
      let outcome = await review(pull);
      // The head moved while the model worked. The job of the push that moved it runs nothing
      // when a bot pushed (pre-commit.ci's fix-up, a formatting workflow): left to it, this
      // job's push would go unreviewed until someone pushes again. So the new head is reviewed
      // here, a few times at most; a person's push then finds its review current.
      for (let retry = 0; outcome.status === "stale" && retry < MAX_STALE_REVIEWS; retry++) {
        metrics.pullRequestRuns.inc({ kind: "review", outcome: outcome.status });
        const moved = await options.pulls.getPullRequest(pull.number);
        const reason = skipReasonAt(event, moved, config);
        if (reason) return log.debug({ reason }, "no review of the new head");
        outcome = await review(moved);
      }
      metrics.pullRequestRuns.inc({ kind: "review", outcome: outcome.status });
    }
  } catch (error) {
    // Automatic work has no one to tell: over budget it is skipped, with a line in the log.
    if (!(error instanceof BudgetExceededError)) throw error;
    metrics.pullRequestRuns.inc({ kind: running, outcome: "token-budget" });
    log.warn({ budget: error.scope }, "pull-request automation skipped: the token budget is spent");
  }
}

/** skipReason for the pull request as just read: its title, state and draft may have changed. */
function skipReasonAt(
  event: PullRequestEvent,
  pull: PullRequestInfo,
  config: RepoConfig,
): string | undefined {
  return skipReason(
    {
      ...event,
      issue: { ...event.issue, title: pull.title, state: pull.state },
      draft: pull.draft,
    },
    config,
  );
}

/** Why the automatic work does not apply to this pull request, or undefined when it does. */
export function skipReason(event: PullRequestEvent, config: RepoConfig): string | undefined {
  if (!event.automatic) return "a bot sent the event";
  // Only a retarget changes what the summary describes; other edits are memory's alone.
  if (event.action === "edited" && !event.baseChanged) return "the edit did not change the base";
  if (!config.pull_requests.enabled && !(config.review.enabled && config.review.on_push))
    return "pull_requests.enabled and review.on_push are off";
  if (event.issue.state !== "open") return "the pull request is closed";
  if (event.draft) return "the pull request is a draft";
  const author = event.issue.author?.toLowerCase();
  if (event.authorIsBot || isBotAuthor(author)) return "a bot opened the pull request";
  if (config.pull_requests.ignore_authors.some((login) => login.toLowerCase() === author))
    return "its author is in pull_requests.ignore_authors";
  if (
    compileTitlePattern(config.pull_requests.ignore_title)
      .matcher(event.issue.title.slice(0, MAX_TITLE_CHARS))
      .find()
  )
    return "its title matches pull_requests.ignore_title";
  return undefined;
}

import { BudgetExceededError } from "../agent/token-budgets.js";
import { similarMarker } from "../github/comment-markers.js";
import type { CommentInfo, IssueInfo } from "../github/create-repo-client.js";
import { upsertReply } from "../github/upsert-reply.js";
import {
  findSimilarIssues,
  keepExistingIssues,
  renderSimilarIssues,
} from "../memory/find-similar-issues.js";
import { toIssueMemory } from "../memory/memory-inputs.js";
import type { MemoryStore } from "../memory/memory-store.js";
import type { JobRun } from "../jobs/job-runner.js";
import type { AutomationOptions } from "./automation-options.js";
import { isBotAuthor } from "./is-bot-author.js";
import { triageNewIssue } from "./triage-new-issue.js";

export interface NewIssueOptions extends AutomationOptions {
  installation: number;
  /** The repository's id, from the payload: the hourly budget is kept by it. */
  repository: number;
  /** The job's id: its retries take no second run from the hourly budget. */
  job: string;
  /**
   * The job's run: a triage an earlier run finished is not done again. Its end may leave nothing
   * to look for (no label fitted, and no comment is configured): a retry (after a memory
   * failure, say) ran the model again, and could label the issue where the first run did not.
   */
  run: Pick<JobRun, "stepsDone" | "stepDone">;
  /** The issue as the payload has it; read again before any automatic work (readIssueNow). */
  issue: IssueInfo;
  /** Its comments when known: none, for an issue just opened (a redelivery may have some). */
  comments: CommentInfo[] | undefined;
  /**
   * Why the issue is only remembered, when it is: a bot sent the event, or the issue was
   * transferred from another repository (whoever moved it could write to both, and read it).
   */
  rememberOnly?:
    | "a bot sent the event"
    | "it was opened through a GitHub App"
    | "it was transferred in"
    | undefined;
}

/**
 * The automatic work on a new issue, for every author, as far as the repository's config and
 * the automation budget allow: a "possibly related" comment from memory, triage, and
 * remembering the issue itself. An issue a bot opened, one opened through a GitHub App, one
 * transferred in, or one closed or locked before the job ran, is only remembered.
 */
export async function onNewIssue(options: NewIssueOptions): Promise<void> {
  const { config, github, octokit, log } = options;
  const repo = `${github.repo.owner}/${github.repo.repo}`;
  // A dependency bot's user account (self-hosted Renovate's dashboard issue) is no App sender,
  // but a bot all the same, as its pull requests are (skipReason).
  const rememberOnly =
    options.rememberOnly ??
    (isBotAuthor(options.issue.author) ? "a bot opened the issue" : undefined);
  const similarOn = config.similar.enabled && config.memory.enabled;
  const triageOn = config.triage.enabled && options.assistant !== undefined;
  if (rememberOnly !== undefined) log.debug(`no automatic work: ${rememberOnly}`);
  else if (config.triage.enabled && !options.assistant)
    log.info("triage is on, but no language model is configured");
  // Read only where automatic work would run: an event that does none costs no request.
  const now =
    rememberOnly === undefined && (similarOn || triageOn) ? await readIssueNow(options) : undefined;
  if (now?.skip) log.info({ reason: now.skip }, "no automatic work: the issue changed since");
  const automatic = rememberOnly === undefined && now?.skip === undefined;
  const wantsSimilar = automatic && similarOn;
  const wantsTriage = automatic && triageOn;
  const issue = now?.issue ?? options.issue;
  const comments = now ? now.comments : options.comments;
  // Memory trouble (an embedding outage, say) must not cost the issue its triage, nor a
  // "possibly related" comment GitHub refuses (a locked issue, narrowed permissions), or a budget
  // that cannot be read (Redis away), cost it its memory: the first failure is reported once the
  // rest has run, which fails the job so that it runs again (its retry takes the same run).
  let failure: unknown;
  const allowed =
    (wantsSimilar || wantsTriage) &&
    (await options.budget
      .take(
        { installation: options.installation, repository: options.repository },
        config.automation.max_runs_per_hour,
        `${options.job}:new-issue`,
      )
      .catch((error: unknown) => {
        failure = error;
        return false;
      }));
  if ((wantsSimilar || wantsTriage) && !allowed && failure === undefined)
    log.warn("automatic work skipped: this hour's automation budget is spent");

  // Recorded as triage is: a retry (after triage failed, say) neither searches again nor posts
  // the comment again, which a maintainer may have deleted meanwhile.
  const similarDone = options.run.stepsDone.has(SIMILAR_STEP);
  if (wantsSimilar && allowed && similarDone)
    log.info("similar issues skipped: an earlier run of this job looked for them");
  let similarFinished = false;
  try {
    const memory = await options.memory();
    if (memory && wantsSimilar && allowed && !similarDone)
      similarFinished = await postSimilar({ ...options, issue }, memory).then(
        () => true,
        (error: unknown) => {
          failure = error;
          log.error({ err: error }, "the similar issues of the new issue were not posted");
          return false;
        },
      );
    if (memory) await memory.add(toIssueMemory(repo, issue));
  } catch (error) {
    failure ??= error;
    log.error({ err: error }, "memory work on the new issue failed");
  }
  // After memory, so that a failure to record the step costs the issue neither its memory nor
  // its triage: the job fails, and its retry looks again.
  if (similarFinished) await options.run.stepDone(SIMILAR_STEP);
  const triaged = options.run.stepsDone.has(TRIAGE_STEP);
  if (wantsTriage && allowed && triaged)
    log.info("triage skipped: an earlier run of this job triaged the issue");
  if (wantsTriage && allowed && !triaged) {
    try {
      const outcome = await triageNewIssue({
        assistant: options.assistant!,
        github,
        octokit,
        issue,
        comments,
        settings: config.triage,
        reply: {
          identity: options.identity,
          markdown: options.markdown,
          limits: options.limits,
          clock: options.clock,
        },
        log,
      });
      if (!outcome.repeated)
        log.info(
          {
            labels: outcome.proposal?.labels,
            applied: outcome.applied,
            commented: outcome.commented,
          },
          "issue triaged",
        );
      await options.run.stepDone(TRIAGE_STEP);
    } catch (error) {
      // Automatic work has no one to tell: over budget it is skipped, with a line in the log.
      if (!(error instanceof BudgetExceededError)) throw error;
      log.warn({ budget: error.scope }, "triage skipped: the token budget is spent");
    }
  }
  if (failure) throw failure;
}

const TRIAGE_STEP = "triage";
/** The "possibly related" comment posted, or no similar issue found. */
const SIMILAR_STEP = "similar";

/**
 * The issue as GitHub has it when the job runs, which may be long after it was opened (a backlog
 * in its thread, a retry, a redelivery up to TALOS_REDELIVER_HOURS later), and why it now gets no
 * automatic work, if so: closed meanwhile (as spam, say) or locked, it is neither labelled nor
 * commented on; edited, triage and the search read what it says now. A 404 or 410 (deleted,
 * transferred away) fails the job, which ends as gone (classifyJobFailure).
 */
async function readIssueNow(options: NewIssueOptions): Promise<{
  issue: IssueInfo;
  comments: CommentInfo[] | undefined;
  skip: string | undefined;
}> {
  const { github, octokit } = options;
  const number = options.issue.number;
  // GitHub's answer, not the cache's, as for a pull request's head (getPullRequest): a copy read
  // before a close or an edit whose webhook is late or lost would still be served. `max-age=0`
  // revalidates it (a 304 costs no rate limit) and stores the answer, which getIssue then reads
  // with no second request, checking that the issue is still this repository's (the read of an
  // issue transferred away redirects to its new home).
  const { data } = await octokit.rest.issues.get({
    ...github.repo,
    issue_number: number,
    headers: { "cache-control": "max-age=0" },
  });
  const issue = await github.getIssue(number);
  const skip =
    issue.state !== "open"
      ? "the issue is closed"
      : data.locked
        ? "the issue is locked"
        : undefined;
  // The payload's comment count is the opening's; some may have been posted since.
  return { issue, comments: data.comments === 0 ? [] : undefined, skip };
}

/** "Possibly related: …", searched before the new issue is remembered so it cannot find itself. */
async function postSimilar(options: NewIssueOptions, memory: MemoryStore): Promise<void> {
  const { issue, config, github, octokit, log } = options;
  const hits = await keepExistingIssues(await findSimilarIssues(memory, issue, config.similar), {
    github,
    memory,
    log,
  });
  log.info(
    { similar: hits.map((h) => ({ number: h.record.number, score: Number(h.score.toFixed(3)) })) },
    "similar issues",
  );
  if (hits.length === 0) return;
  await upsertReply({
    limits: options.limits,
    clock: options.clock,
    octokit,
    ...github.repo,
    issueNumber: issue.number,
    botLogin: (await options.identity.get()).botLogin,
    marker: similarMarker(issue.number),
    body: `**Possibly related**: ${renderSimilarIssues(hits)}.`,
    references: hits.flatMap((hit) => hit.record.number ?? []),
    markdown: options.markdown,
  });
}

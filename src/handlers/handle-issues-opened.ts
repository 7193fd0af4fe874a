import type { Context } from "probot";
import { z } from "zod";
import type { Assistant } from "../agent/assistant.js";
import type { AutomationBudget } from "../automations/automation-budget.js";
import { triageNewIssue } from "../automations/triage-new-issue.js";
import type { Clock } from "../clock.js";
import type { AppIdentityLoader } from "../github/app-identity.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import { createRepoClient, toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { IssuePayload, readPayload } from "./read-payload.js";

const IssueOpened = z.object({
  issue: IssuePayload,
  repository: z.object({ name: z.string(), owner: z.object({ login: z.string() }) }),
  installation: z.object({ id: z.number() }),
});

export interface IssuesOpenedDeps {
  assistant: Assistant | undefined;
  budget: AutomationBudget;
  identity: AppIdentityLoader;
  limits: GitHubLimits;
  clock: Clock;
}

/**
 * A new issue: automatic work for every author, as far as the repository's config and the
 * automation budget allow.
 */
export function createIssuesOpenedHandler(deps: IssuesOpenedDeps) {
  return async (context: Context<"issues.opened">): Promise<void> => {
    const { issue, repository, installation } = readPayload(IssueOpened, context.payload);
    const config = await loadRepoConfig(context);
    const { triage, automation } = config.config;
    if (!triage.enabled) return context.log.debug("triage is off in this repository");
    if (!deps.assistant)
      return context.log.info("triage is on, but no language model is configured");
    const repo = { owner: repository.owner.login, repo: repository.name };
    if (
      !deps.budget.take(
        String(installation.id),
        `${repo.owner}/${repo.repo}`,
        automation.max_runs_per_hour,
      )
    ) {
      return context.log.warn("triage skipped: the automation budget for this hour is spent");
    }

    const outcome = await triageNewIssue({
      assistant: deps.assistant,
      github: createRepoClient(context.octokit, repo),
      octokit: context.octokit,
      issue: toIssueInfo(issue),
      // A new issue has no comments yet; nothing to fetch.
      comments: issue.comments === 0 ? [] : undefined,
      settings: triage,
      reply: {
        identity: deps.identity,
        limits: deps.limits,
        clock: deps.clock,
      },
      log: context.log,
    });
    context.log.info(
      { labels: outcome.proposal?.labels, applied: outcome.applied, commented: outcome.commented },
      "issue triaged",
    );
  };
}

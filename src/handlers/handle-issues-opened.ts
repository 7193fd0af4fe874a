import type { Context } from "probot";
import { z } from "zod";
import type { Assistant } from "../agent/assistant.js";
import type { TokenBudgets } from "../agent/token-budgets.js";
import type { AutomationBudget } from "../automations/automation-budget.js";
import { onNewIssue } from "../automations/on-new-issue.js";
import type { Clock } from "../clock.js";
import type { AppIdentityLoader } from "../github/app-identity.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import { createRepoClient, toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import type { JobRun } from "../jobs/job-runner.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import type { BackfillRunner } from "../memory/backfill-runner.js";
import { openRepoMemory, type MemoryAccess } from "../memory/open-repo-memory.js";
import { isBotSender } from "./guard-event.js";
import { jobAssistant } from "./job-assistant.js";
import {
  InstallationPayload,
  IssuePayload,
  OwnedRepositoryPayload,
  readPayload,
} from "./read-payload.js";

const IssueOpened = z.object({
  issue: IssuePayload,
  repository: OwnedRepositoryPayload,
  installation: InstallationPayload,
  // Present when the issue was transferred in: GitHub sends it as opened in its new repository.
  // Read leniently (see transferredIn): a shape not foreseen must not park the new issue.
  changes: z.unknown().optional(),
});

/** Whether `changes` says where the issue was before: its old issue or old repository. */
function transferredIn(changes: unknown): boolean {
  if (typeof changes !== "object" || changes === null) return false;
  const { old_issue: issue, old_repository: repository } = changes as Record<string, unknown>;
  return (
    (issue !== undefined && issue !== null) || (repository !== undefined && repository !== null)
  );
}

export interface IssuesOpenedDeps extends MemoryAccess {
  assistant: Assistant | undefined;
  budgets: TokenBudgets;
  budget: AutomationBudget;
  identity: AppIdentityLoader;
  markdown: MarkdownService;
  limits: GitHubLimits;
  clock: Clock;
  backfill: Pick<BackfillRunner, "issuesSeen" | "opened">;
}

/** A new issue: similar issues, triage and memory, as the repository's config says. */
export function createIssuesOpenedHandler(deps: IssuesOpenedDeps) {
  return async (context: Context<"issues.opened">, run: JobRun): Promise<void> => {
    const { issue, repository, installation, changes } = readPayload(IssueOpened, context.payload);
    const { config } = await loadRepoConfig(context);
    const event = { installation: installation.id, repository };
    await onNewIssue({
      ...deps,
      installation: installation.id,
      repository: repository.id,
      issue: toIssueInfo(issue),
      // A new issue has no comments yet; nothing to fetch.
      comments: issue.comments === 0 ? [] : undefined,
      config,
      job: run.id,
      run,
      rememberOnly: isBotSender(context.payload.sender)
        ? "a bot sent the event"
        : // As for a comment posted so (commentWithoutWork): the app may be an automation.
          issue.performed_via_github_app !== null && issue.performed_via_github_app !== undefined
          ? "it was opened through a GitHub App"
          : transferredIn(changes)
            ? "it was transferred in"
            : undefined,
      assistant: await jobAssistant(deps.assistant, deps.budgets, {
        installation: installation.id,
        repository: repository.id,
        repositoryTokens: config.budget.daily_tokens,
        job: run,
      }),
      github: createRepoClient(context.octokit, {
        owner: repository.owner.login,
        repo: repository.name,
      }),
      octokit: context.octokit,
      memory: () => openRepoMemory(deps, event, config),
      log: context.log,
    });
    // Where the backfill found issues switched off, they are on again: it reads them now.
    await deps.backfill.issuesSeen({
      installation: installation.id,
      repository: repository.id,
      name: repository.full_name,
    });
  };
}

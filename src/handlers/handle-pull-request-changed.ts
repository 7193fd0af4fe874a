import type { Context } from "probot";
import { z } from "zod";
import type { Assistant } from "../agent/assistant.js";
import type { TokenBudgets } from "../agent/token-budgets.js";
import type { AutomationBudget } from "../automations/automation-budget.js";
import { onPullRequestChanged } from "../automations/on-pull-request-changed.js";
import type { Clock } from "../clock.js";
import type { AppIdentityLoader } from "../github/app-identity.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import { createPullRequestClient } from "../github/create-pull-request-client.js";
import { createRepoClient, toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import type { MemoryRegistry } from "../memory/memory-registry.js";
import { openRepoMemory } from "../memory/open-repo-memory.js";
import { isBotSender } from "./guard-event.js";
import { IssuePayload, readPayload } from "./read-payload.js";

export type PullRequestChangedEvent =
  | "pull_request.opened"
  | "pull_request.reopened"
  | "pull_request.ready_for_review"
  | "pull_request.synchronize";

const PullRequestChanged = z.object({
  action: z.string(),
  pull_request: IssuePayload.extend({
    draft: z.boolean().optional(),
    user: z.object({ login: z.string(), type: z.string().optional() }).nullable().optional(),
  }),
  repository: z.object({
    id: z.number(),
    full_name: z.string(),
    name: z.string(),
    owner: z.object({ login: z.string() }),
    created_at: z.union([z.string(), z.number()]).optional(),
  }),
  installation: z.object({ id: z.number() }),
});

export interface PullRequestChangedDeps {
  assistant: Assistant | undefined;
  budgets: TokenBudgets;
  memory: MemoryRegistry;
  budget: AutomationBudget;
  identity: AppIdentityLoader;
  markdown: MarkdownService;
  limits: GitHubLimits;
  clock: Clock;
}

/** A pull request opened, reopened, made ready or pushed to: memory, summary, push review. */
export function createPullRequestChangedHandler(deps: PullRequestChangedDeps) {
  return async (context: Context<PullRequestChangedEvent>): Promise<void> => {
    const { action, pull_request, repository, installation } = readPayload(
      PullRequestChanged,
      context.payload,
    );
    const { config } = await loadRepoConfig(context);
    const repo = { owner: repository.owner.login, repo: repository.name };
    const event = { installation: installation.id, repository };
    await onPullRequestChanged({
      ...deps,
      event: {
        action,
        installation: installation.id,
        issue: { ...toIssueInfo(pull_request), isPullRequest: true },
        draft: pull_request.draft ?? false,
        authorIsBot: pull_request.user?.type === "Bot",
        automatic: !isBotSender(context.payload.sender),
      },
      config,
      // Summaries and push reviews draw on the same daily budgets as commands.
      assistant: deps.assistant && {
        ...deps.assistant,
        account: deps.budgets.account({
          installation: installation.id,
          repository: repository.id,
          repositoryTokens: config.budget.daily_tokens,
        }),
      },
      github: createRepoClient(context.octokit, repo),
      pulls: createPullRequestClient(context.octokit, repo),
      octokit: context.octokit,
      memory: () => openRepoMemory(deps.memory, event, config),
      log: context.log,
    });
  };
}

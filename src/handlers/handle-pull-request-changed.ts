import type { Context } from "probot";
import { z } from "zod";
import { onPullRequestChanged } from "../automations/on-pull-request-changed.js";
import { createPullRequestClient } from "../github/create-pull-request-client.js";
import { createRepoClient, toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import type { JobRun } from "../jobs/job-runner.js";
import { openRepoMemory } from "../memory/open-repo-memory.js";
import { isBotSender } from "./guard-event.js";
import type { IssuesOpenedDeps } from "./handle-issues-opened.js";
import { jobAssistant } from "./job-assistant.js";
import {
  InstallationPayload,
  IssuePayload,
  OwnedRepositoryPayload,
  readPayload,
} from "./read-payload.js";

export type PullRequestChangedEvent =
  | "pull_request.opened"
  | "pull_request.reopened"
  | "pull_request.ready_for_review"
  | "pull_request.synchronize"
  // Only an edit that retargeted the base branch (isBaseChange); other edits are memory's.
  | "pull_request.edited";

// What `pull_request.edited` says of a retarget: `changes.base.ref.from` and `.sha.from`.
// https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request
const BaseChange = z.object({
  action: z.literal("edited"),
  changes: z.object({ base: z.object({}).passthrough() }),
});

/**
 * The pull request's base branch changed (an edit that retargeted it): its diff is another one,
 * though its head did not move. Read from the raw payload, before the delivery is journaled, so
 * anything else (a title edit, a malformed `changes`) is no base change.
 */
export function isBaseChange(payload: unknown): boolean {
  return BaseChange.safeParse(payload).success;
}

const PullRequestChanged = z.object({
  action: z.string(),
  pull_request: IssuePayload.extend({
    draft: z.boolean().optional(),
    user: z.object({ login: z.string(), type: z.string().optional() }).nullable().optional(),
  }),
  repository: OwnedRepositoryPayload,
  installation: InstallationPayload,
});

/**
 * A pull request opened, reopened, made ready, pushed to or retargeted: memory, summary, push
 * review.
 */
// The same services as a new issue's automatic work.
export function createPullRequestChangedHandler(deps: IssuesOpenedDeps) {
  return async (context: Context<PullRequestChangedEvent>, run: JobRun): Promise<void> => {
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
        repository: repository.id,
        issue: { ...toIssueInfo(pull_request), isPullRequest: true },
        draft: pull_request.draft ?? false,
        authorIsBot: pull_request.user?.type === "Bot",
        automatic: !isBotSender(context.payload.sender),
        baseChanged: isBaseChange(context.payload),
      },
      config,
      job: run.id,
      assistant: await jobAssistant(deps.assistant, deps.budgets, {
        installation: installation.id,
        repository: repository.id,
        repositoryTokens: config.budget.daily_tokens,
        job: run,
      }),
      github: createRepoClient(context.octokit, repo),
      pulls: createPullRequestClient(context.octokit, repo),
      octokit: context.octokit,
      memory: () => openRepoMemory(deps, event, config),
      log: context.log,
    });
  };
}

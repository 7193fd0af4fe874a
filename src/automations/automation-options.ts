import type { Logger } from "pino";
import type { Assistant } from "../agent/assistant.js";
import type { Clock } from "../clock.js";
import type { RepoConfig } from "../config.js";
import type { AppIdentityLoader } from "../github/app-identity.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import type { RepoClient } from "../github/create-repo-client.js";
import type { Octokit } from "../github/octokit.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import type { MemoryStore } from "../memory/memory-store.js";
import type { AutomationBudget } from "./automation-budget.js";

/** What automatic work on one event needs besides the event itself: the event's repository. */
export interface AutomationOptions {
  config: RepoConfig;
  github: RepoClient;
  octokit: Octokit;
  /** This repository's memory, or undefined when its config switches memory off. */
  memory: () => Promise<MemoryStore | undefined>;
  /** The job's assistant (its model calls charged to the budgets); undefined without a model. */
  assistant: Assistant | undefined;
  budget: AutomationBudget;
  identity: AppIdentityLoader;
  markdown: MarkdownService;
  limits: GitHubLimits;
  clock: Clock;
  log: Logger;
}

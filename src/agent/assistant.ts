import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { SystemMessage } from "@langchain/core/messages";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { nameSpan } from "../markdown/safe-text.js";
import type { RepoClient } from "../github/create-repo-client.js";
import type { Metrics } from "../metrics/create-metrics.js";
import type { PromptLibrary } from "../prompts/prompt-library.js";
import type { ToolContext } from "../tools/define-tool.js";
import type { ToolRegistry } from "../tools/tool-registry.js";
import type { AgentLimits } from "./run-agent.js";
import type { TokenAccount } from "./token-budgets.js";
import { createFence, type Fence } from "./untrusted-text.js";

/** Everything an agent flow needs, built once at start-up. */
export interface Assistant {
  model: BaseChatModel;
  prompts: PromptLibrary;
  /** The read tools; flows that write add their own, never to this registry. */
  tools: ToolRegistry;
  limits: AgentLimits;
  metrics: Metrics;
  clock: Clock;
  /** Removes configured secrets and credential shapes from text bound for the model. */
  scrub: (text: string) => string;
  /**
   * The token budget this job draws on; every model call is checked against it and charged.
   * Handlers set it per job; `talos chat`, run by the operator, has none.
   */
  account?: TokenAccount | undefined;
}

export interface RunSetup {
  fence: Fence;
  system: SystemMessage;
  /** Absent when the run has no repository (`talos chat` without `--repo`): then no tools. */
  toolContext: ToolContext | undefined;
  finalNote: string;
}

/**
 * The parts every run shares: a fence with a fresh tag, the system prompt for this repository,
 * and the tool context bound to it.
 */
export async function prepareRun(
  assistant: Assistant,
  github: RepoClient | undefined,
  log: Logger,
): Promise<RunSetup> {
  const fence = createFence(assistant.scrub);
  const info = github ? await github.getRepository() : undefined;
  const system = await assistant.prompts.render("system", {
    repository_context: info
      ? `Its default branch is ${nameSpan(info.defaultBranch)}; it is ${info.visibility}${info.archived ? " and archived" : ""}. Its description: ${fence.wrap("repository description", info.description ?? "(none)")}`
      : "No repository was chosen, so you have no tools.",
    repository: github
      ? `${github.repo.owner}/${github.repo.repo}`
      : "(none: no repository was chosen)",
    today: new Date(assistant.clock.now()).toISOString().slice(0, 10),
    untrusted_tag: fence.tag,
  });
  return {
    fence,
    system: new SystemMessage(system),
    toolContext: github ? { github, log } : undefined,
    finalNote: await assistant.prompts.render("step-limit", {}),
  };
}

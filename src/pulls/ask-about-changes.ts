import { HumanMessage } from "@langchain/core/messages";
import type { Logger } from "pino";
import { prepareRun, type Assistant } from "../agent/assistant.js";
import { UTF8_TOKEN_BOUND } from "../agent/count-tokens.js";
import { runAgent } from "../agent/run-agent.js";
import type { Fence } from "../agent/untrusted-text.js";
import type { PullRequestInfo } from "../github/create-pull-request-client.js";
import type { RepoClient } from "../github/create-repo-client.js";
import type { PullRequestChanges } from "./load-pull-request-changes.js";
import { MAX_TEXT_TOKENS, renderChangesForPrompt } from "./render-changes.js";

export interface AskAboutChangesOptions {
  assistant: Assistant;
  github: RepoClient;
  pull: PullRequestInfo;
  changes: PullRequestChanges;
  /** The prompt file; it takes the changes' parts and `values`. */
  prompt: "review" | "pr-summary";
  /**
   * Further prompt variables; untrusted text in them must go through the fence, which cuts each
   * text to MAX_TEXT_TOKENS (the token budget counts on it).
   */
  values: (fence: Fence) => Record<string, string>;
  /** For `talos_llm_tokens_total{kind}`. */
  kind: string;
  log: Logger;
}

/**
 * One model call about a pull request's changes (a review, a summary), with no tools: the model
 * reads the diff it is given, within its budget, and nothing else. Returns the model's raw text,
 * and whether it finished: with no tools, `finished` is false when the output limit
 * (TALOS_LLM_MAX_OUTPUT_TOKENS) cut the answer, which a review's JSON must know.
 */
export async function askAboutChanges(
  options: AskAboutChangesOptions,
): Promise<{ text: string; finished: boolean }> {
  const { assistant, log } = options;
  const setup = await prepareRun(assistant, options.github, log);
  const texts = setup.fence.bounded(
    MAX_TEXT_TOKENS,
    assistant.limits.tokenCounter ?? UTF8_TOKEN_BOUND,
  );
  const prompt = await assistant.prompts.render(options.prompt, {
    ...renderChangesForPrompt(options.pull, options.changes, texts, setup.fence),
    ...options.values(texts),
  });
  const result = await runAgent({
    model: assistant.model,
    messages: [setup.system, new HumanMessage(prompt)],
    tools: [],
    toolContext: undefined,
    fence: setup.fence,
    limits: assistant.limits,
    finalNote: setup.finalNote,
    metrics: assistant.metrics,
    log,
    account: assistant.account,
    kind: options.kind,
  });
  return { text: result.text, finished: result.finished };
}

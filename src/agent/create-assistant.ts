import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { ConfigError, getSecrets, type Env } from "../config.js";
import { createSecretScrubber } from "../create-logger.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { PromptLibrary } from "../prompts/prompt-library.js";
import { PROMPT_VARIABLES } from "../prompts/prompt-variables.js";
import { READ_TOOLS } from "../tools/read-tools.js";
import { ToolRegistry } from "../tools/tool-registry.js";
import type { Assistant } from "./assistant.js";
import { createTokenCounter, type TokenCounter } from "./count-tokens.js";

/** The prompts shipped with Talos, one level above src/ and dist/. */
const BUNDLED_PROMPTS = new URL("../../prompts/", import.meta.url).pathname;

/**
 * Builds the assistant, or nothing when there is no model. The prompts are loaded either way, so
 * a broken prompt file fails start-up with its name and the reason.
 */
export async function createAssistant(options: {
  env: Env;
  model: BaseChatModel | undefined;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
  /** Share the embedder's: each counter builds its own 50 MB encoder on first use. */
  tokenCounter?: TokenCounter;
}): Promise<Assistant | undefined> {
  const { env, model, metrics, clock, log } = options;
  const shared = {
    clock,
    checkIntervalMs: env.TALOS_PROMPT_CHECK_INTERVAL_MS,
    log,
  };
  // Either directory, the shipped one too (edited in place), must hold every prompt the code
  // renders, declaring the variables the code fills: else each command that needs it fails.
  const prompts = await PromptLibrary.open({
    ...shared,
    directory: env.TALOS_PROMPTS_DIR ?? BUNDLED_PROMPTS,
    required: PROMPT_VARIABLES,
  }).catch((error: unknown) => {
    // The operator's directory is bad input, named as every bad setting is (exit 2); the shipped
    // prompts failing (a broken install, or one edited in place) stays an error naming the file.
    if (!env.TALOS_PROMPTS_DIR) throw error;
    throw new ConfigError(
      `Invalid environment: TALOS_PROMPTS_DIR: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  });
  if (!model) {
    log.info("no OPENAI_API_KEY: the language-model features are off");
    return undefined;
  }
  return {
    model,
    prompts,
    tools: new ToolRegistry().register(...READ_TOOLS),
    limits: {
      maxSteps: env.TALOS_AGENT_MAX_STEPS,
      maxTokens: env.TALOS_AGENT_MAX_TOKENS,
      contextTokens: env.TALOS_AGENT_CONTEXT_TOKENS,
      maxToolCalls: env.TALOS_AGENT_MAX_TOOL_CALLS,
      maxOutputTokens: env.TALOS_LLM_MAX_OUTPUT_TOKENS,
      tokenCounter: options.tokenCounter ?? createTokenCounter(),
    },
    metrics,
    clock,
    scrub: createSecretScrubber(getSecrets(env)),
  };
}

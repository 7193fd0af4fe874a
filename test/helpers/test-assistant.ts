import { fileURLToPath } from "node:url";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { Assistant } from "../../src/agent/assistant.js";
import { createSecretScrubber } from "../../src/create-logger.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { PromptLibrary } from "../../src/prompts/prompt-library.js";
import { READ_TOOLS } from "../../src/tools/read-tools.js";
import { ToolRegistry } from "../../src/tools/tool-registry.js";
import { createFakeClock } from "./fake-clock.js";
import { captureLogs } from "./test-app.js";

export const TEST_OPENAI_KEY = "sk-test-openai-key-0123456789abcdef";

/** The assistant with the shipped prompts and read tools, around a given (fake) model. */
export async function createTestAssistant(
  model: BaseChatModel,
  limits: Partial<Assistant["limits"]> = {},
): Promise<Assistant> {
  const logs = await captureLogs("warn");
  const clock = createFakeClock();
  return {
    model,
    prompts: await PromptLibrary.open({
      directory: fileURLToPath(new URL("../../prompts/", import.meta.url)),
      clock,
      checkIntervalMs: 60_000,
      log: logs.log,
    }),
    tools: new ToolRegistry().register(...READ_TOOLS),
    limits: { maxSteps: 6, maxTokens: 60_000, contextTokens: 12_000, ...limits },
    metrics: createMetrics(),
    clock,
    scrub: createSecretScrubber([TEST_OPENAI_KEY]),
  };
}

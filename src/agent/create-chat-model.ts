import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAICompletions } from "@langchain/openai";
import type { Env } from "../config.js";

/**
 * The chat model: LangChain's OpenAI client against OpenAI or any compatible server (`OPENAI_BASE_URL`), or
 * nothing when no key is configured. Timeout, retries and the output cap are explicit (LangChain's
 * defaults are no timeout and six retries); a 429's `retry-after` is honoured by LangChain's
 * retry loop. No streaming: LangChain counts streamed tokens with tokenizer files it downloads.
 * Chat completions only, whatever the model's name: `ChatOpenAI` sends a model named `*codex*`
 * (or `gpt-5.x-pro`) to `/v1/responses` even with `useResponsesApi: false`, and most compatible
 * servers have no such route (every call was a 404).
 */
export function createChatModel(env: Env): BaseChatModel | undefined {
  if (!env.OPENAI_API_KEY) return undefined;
  return new ChatOpenAICompletions({
    model: env.TALOS_MODEL,
    apiKey: env.OPENAI_API_KEY,
    ...(env.OPENAI_BASE_URL ? { configuration: { baseURL: env.OPENAI_BASE_URL } } : {}),
    timeout: env.TALOS_LLM_TIMEOUT_MS,
    maxRetries: env.TALOS_LLM_MAX_RETRIES,
    maxTokens: env.TALOS_LLM_MAX_OUTPUT_TOKENS,
    streaming: false,
  });
}

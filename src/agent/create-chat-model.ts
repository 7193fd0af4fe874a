import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAI } from "@langchain/openai";
import type { Env } from "../config.js";

/**
 * The chat model: `ChatOpenAI` against OpenAI or any compatible server (`OPENAI_BASE_URL`), or
 * nothing when no key is configured. Timeout, retries and the output cap are explicit (LangChain's
 * defaults are no timeout and six retries); a 429's `retry-after` is honoured by LangChain's
 * retry loop. No streaming: LangChain counts streamed tokens with tokenizer files it downloads.
 */
export function createChatModel(env: Env): BaseChatModel | undefined {
  if (!env.OPENAI_API_KEY) return undefined;
  return new ChatOpenAI({
    model: env.TALOS_MODEL,
    apiKey: env.OPENAI_API_KEY,
    ...(env.OPENAI_BASE_URL ? { configuration: { baseURL: env.OPENAI_BASE_URL } } : {}),
    timeout: env.TALOS_LLM_TIMEOUT_MS,
    maxRetries: env.TALOS_LLM_MAX_RETRIES,
    maxTokens: env.TALOS_LLM_MAX_OUTPUT_TOKENS,
    streaming: false,
    useResponsesApi: false,
  });
}

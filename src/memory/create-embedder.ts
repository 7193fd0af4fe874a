import type { TokenCounter } from "../agent/count-tokens.js";
import type { Env } from "../config.js";
import { withEmbeddingCache } from "./caching-embedder.js";
import type { Embedder } from "./embedder.js";
import { createLocalEmbedder } from "./local-embedder.js";
import { createOpenAIEmbedder } from "./openai-embedder.js";

/** The value of TALOS_EMBEDDING_MODEL that picks the local embedder even with a key. */
export const LOCAL_EMBEDDING_MODEL = "local";

/**
 * OpenAI-compatible embeddings when a key is configured, the local hashing embedder otherwise or
 * when `TALOS_EMBEDDING_MODEL=local` (for a chat server without an embeddings endpoint); either
 * way identical texts are embedded once. The OpenAI one cuts every text to
 * TALOS_EMBEDDING_MAX_TOKENS, counted with `tokenCounter` (share the assistant's).
 */
export function createEmbedder(
  env: Env,
  { tokenCounter }: { tokenCounter?: TokenCounter } = {},
): Embedder {
  const embedder =
    env.OPENAI_API_KEY && env.TALOS_EMBEDDING_MODEL !== LOCAL_EMBEDDING_MODEL
      ? createOpenAIEmbedder({
          apiKey: env.OPENAI_API_KEY,
          baseURL: env.OPENAI_BASE_URL,
          model: env.TALOS_EMBEDDING_MODEL,
          dimension: env.TALOS_EMBEDDING_DIMENSIONS,
          maxTokens: env.TALOS_EMBEDDING_MAX_TOKENS,
          tokenCounter,
          timeoutMs: env.TALOS_LLM_TIMEOUT_MS,
          maxRetries: env.TALOS_LLM_MAX_RETRIES,
        })
      : createLocalEmbedder();
  return withEmbeddingCache(embedder);
}

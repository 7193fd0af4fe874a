import type { Env } from "../config.js";
import { withEmbeddingCache } from "./caching-embedder.js";
import type { Embedder } from "./embedder.js";
import { createLocalEmbedder } from "./local-embedder.js";
import { createOpenAIEmbedder } from "./openai-embedder.js";

/**
 * OpenAI-compatible embeddings when a key is configured, the local hashing embedder otherwise;
 * either way identical texts are embedded once.
 */
export function createEmbedder(env: Env): Embedder {
  const embedder = env.OPENAI_API_KEY
    ? createOpenAIEmbedder({
        apiKey: env.OPENAI_API_KEY,
        baseURL: env.OPENAI_BASE_URL,
        model: env.TALOS_EMBEDDING_MODEL,
        dimension: env.TALOS_EMBEDDING_DIMENSIONS,
        timeoutMs: env.TALOS_LLM_TIMEOUT_MS,
        maxRetries: env.TALOS_LLM_MAX_RETRIES,
      })
    : createLocalEmbedder();
  return withEmbeddingCache(embedder);
}

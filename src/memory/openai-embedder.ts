import { OpenAIEmbeddings } from "@langchain/openai";
import type { Embedder } from "./embedder.js";

export interface OpenAIEmbedderOptions {
  apiKey: string;
  baseURL?: string | undefined;
  model: string;
  /** text-embedding-3-* can shorten their vectors; otherwise the model's own size. */
  dimension: number;
  timeoutMs: number;
  maxRetries: number;
}

/**
 * OpenAI (or compatible) embeddings through LangChain, many texts per request. The dimension
 * is checked on every answer: a server that returns another size fails loudly rather than
 * filling the index with vectors that cannot be compared.
 */
export function createOpenAIEmbedder(options: OpenAIEmbedderOptions): Embedder {
  const client = new OpenAIEmbeddings({
    model: options.model,
    apiKey: options.apiKey,
    ...(options.baseURL ? { configuration: { baseURL: options.baseURL } } : {}),
    ...(options.model.startsWith("text-embedding-3") ? { dimensions: options.dimension } : {}),
    batchSize: 256,
    timeout: options.timeoutMs,
    maxRetries: options.maxRetries,
  });
  return {
    model: options.model,
    dimension: options.dimension,
    relatedScore: 0.7,
    async embed(texts) {
      if (texts.length === 0) return [];
      const vectors = await client.embedDocuments(texts);
      return vectors.map((vector) => {
        if (vector.length !== options.dimension) {
          throw new Error(
            `the embedding model ${options.model} returned ${vector.length} dimensions, not the configured ${options.dimension} (TALOS_EMBEDDING_DIMENSIONS)`,
          );
        }
        return Float32Array.from(vector);
      });
    },
  };
}

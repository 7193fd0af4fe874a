import { OpenAIEmbeddings } from "@langchain/openai";
import { createTokenCounter, type TokenCounter } from "../agent/count-tokens.js";
import type { Embedder } from "./embedder.js";
import { storableText } from "./memory-store.js";

export interface OpenAIEmbedderOptions {
  apiKey: string;
  baseURL?: string | undefined;
  model: string;
  /** text-embedding-3-* can shorten their vectors; otherwise the model's own size. */
  dimension: number;
  /** The model's input limit (TALOS_EMBEDDING_MAX_TOKENS): longer texts are cut to their head. */
  maxTokens: number;
  /** Counts the tokens; one of its own by default (its encoder takes 50 MB: share one). */
  tokenCounter?: TokenCounter | undefined;
  timeoutMs: number;
  maxRetries: number;
}

/**
 * LangChain's embedDocuments pairs the answer's items with the texts by position, ignoring each
 * item's `index` and never counting them: a server or gateway that answers out of order would
 * give each memory another text's vector. This sends the same request (with LangChain's retries
 * and error wrapping) and leaves the pairing to `inOrder`.
 */
class BatchEmbeddings extends OpenAIEmbeddings {
  embedBatch(input: string[]) {
    return this.embeddingWithRetry({
      model: this.model,
      input,
      ...(this.dimensions ? { dimensions: this.dimensions } : {}),
      ...(this.encodingFormat ? { encoding_format: this.encodingFormat } : {}),
    }).then((response) => response.data);
  }
}

/**
 * Puts each vector at its item's `index`. A count other than the texts', or an index missing,
 * repeated or out of range, fails the batch: no text may get another text's vector.
 */
function inOrder(
  data: ReadonlyArray<{ index: number; embedding: number[] }>,
  count: number,
  model: string,
): number[][] {
  const vectors: number[][] = [];
  // As many distinct indexes within range as texts: then every text has exactly one vector.
  const paired =
    data.length === count &&
    data.every(({ index, embedding }) => {
      if (!Number.isInteger(index) || index < 0 || index >= count || vectors[index]) return false;
      vectors[index] = embedding;
      return true;
    });
  if (!paired) {
    const indexes = data.map(({ index }) => index).join(", ");
    throw new Error(
      `the embedding model ${model} returned ${data.length} vectors for ${count} texts (indexes: ${indexes || "none"})`,
    );
  }
  return vectors;
}

/**
 * OpenAI (or compatible) embeddings through LangChain, many texts per request. Each vector goes
 * to the text its `index` names, and the dimension is checked on every answer: a server that
 * returns another size fails loudly rather than filling the index with vectors that cannot be
 * compared.
 *
 * Every text is cut to its head within `maxTokens`, whatever it is (an issue, a note, an answer
 * or a search): OpenAI answers an input over the model's limit with a 400 that fails the whole
 * batch (8,192 tokens for text-embedding-3-*:
 * https://platform.openai.com/docs/guides/embeddings#embedding-models). An issue's memory text
 * starts with its title, so a long issue is embedded as its title and the head of its body.
 */
export function createOpenAIEmbedder(options: OpenAIEmbedderOptions): Embedder {
  const counter = options.tokenCounter ?? createTokenCounter();
  const client = new BatchEmbeddings({
    model: options.model,
    apiKey: options.apiKey,
    ...(options.baseURL ? { configuration: { baseURL: options.baseURL } } : {}),
    ...(options.model.startsWith("text-embedding-3") ? { dimensions: options.dimension } : {}),
    batchSize: 256,
    // Done below, before counting, so that what is counted is what is sent.
    stripNewLines: false,
    timeout: options.timeoutMs,
    maxRetries: options.maxRetries,
  });
  return {
    model: options.model,
    dimension: options.dimension,
    relatedScore: 0.7,
    async embed(texts) {
      if (texts.length === 0) return [];
      // Line breaks become spaces, as LangChain sends them by default (and as vectors already
      // stored were made). A query's text is not validated as a memory's is: a lone surrogate in
      // it (anyone can put one in an issue) is sent as U+FFFD, which a strict JSON server does
      // not refuse the whole request over, as a similar-issue search's had been.
      const inputs = texts.map((text) =>
        counter.truncateToTokens(storableText(text).replace(/\n/g, " "), options.maxTokens),
      );
      const batches: string[][] = [];
      for (let i = 0; i < inputs.length; i += client.batchSize) {
        batches.push(inputs.slice(i, i + client.batchSize));
      }
      const answers = await Promise.all(batches.map((batch) => client.embedBatch(batch)));
      const vectors = answers.flatMap((data, i) =>
        inOrder(data, batches[i]!.length, options.model),
      );
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

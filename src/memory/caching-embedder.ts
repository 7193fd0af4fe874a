import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Embedder } from "./embedder.js";

/**
 * Never embeds the same text twice: identical texts in a batch are sent once, and recent
 * vectors are kept by a hash of the text. (A memory re-added with unchanged text keeps its
 * stored vector, so that case needs no cache at all.)
 */
export function withEmbeddingCache(
  embedder: Embedder,
  max = 5_000,
): Embedder & { requested: () => number } {
  const cache = new LRUCache<string, Float32Array>({ max });
  let requested = 0;
  return {
    model: embedder.model,
    dimension: embedder.dimension,
    relatedScore: embedder.relatedScore,
    requested: () => requested,
    async embed(texts) {
      const keys = texts.map((text) => createHash("sha256").update(text).digest("base64"));
      // Taken out of the cache first: storing new vectors may evict old ones.
      const found = new Map<string, Float32Array>();
      const missing = new Map<string, string>();
      keys.forEach((key, i) => {
        const cached = cache.get(key);
        if (cached) found.set(key, cached);
        else missing.set(key, texts[i]!);
      });
      if (missing.size > 0) {
        const vectors = await embedder.embed([...missing.values()]);
        requested += missing.size;
        [...missing.keys()].forEach((key, i) => {
          found.set(key, vectors[i]!);
          cache.set(key, vectors[i]!);
        });
      }
      return keys.map((key) => found.get(key)!);
    },
  };
}

import { createHash } from "node:crypto";
import type { Embedder } from "./embedder.js";

const DIMENSION = 512;

/**
 * The embedder used when no model endpoint is configured: deterministic feature hashing of
 * words and word pairs, no network. It finds issues that share words, not ones that mean the
 * same in other words, and knows nothing of synonyms or languages.
 */
export function createLocalEmbedder(): Embedder {
  return {
    model: "talos-local-hash-v1",
    dimension: DIMENSION,
    // Shared words, not meaning: scores run lower than a trained model's.
    relatedScore: 0.45,
    async embed(texts) {
      return texts.map(embedOne);
    },
  };
}

function embedOne(text: string): Float32Array {
  const vector = new Float32Array(DIMENSION);
  const words = text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
  const features = [...words, ...words.slice(1).map((word, i) => `${words[i]} ${word}`)];
  const counts = new Map<string, number>();
  for (const feature of features) counts.set(feature, (counts.get(feature) ?? 0) + 1);
  for (const [feature, count] of counts) {
    const hash = createHash("sha1").update(feature).digest();
    const slot = hash.readUInt32LE(0) % DIMENSION;
    // A signed hash keeps collisions from adding up; log weights damp repeated words.
    vector[slot] = (vector[slot] ?? 0) + (hash[4]! & 1 ? 1 : -1) * (1 + Math.log(count));
  }
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < DIMENSION; i++) vector[i] = vector[i]! / norm;
  return vector;
}

import { createHash } from "node:crypto";
import type { Embedder } from "./embedder.js";
import { forEachWord } from "./english-words.js";

const DIMENSION = 512;
// Word pairs count for less than words: they add order, not new vocabulary.
const PAIR_WEIGHT = 0.5;

/**
 * The embedder used when no model endpoint is configured: deterministic feature hashing of
 * words and word pairs, with English function words left out and common endings cut off
 * ("crashes", "crashed" and "crashing" are one word). No network, no model. It finds texts
 * that share words, not ones that mean the same in other words, and knows nothing of synonyms
 * or of languages other than English.
 */
export function createLocalEmbedder(): Embedder {
  return {
    model: "talos-local-hash-v2",
    dimension: DIMENSION,
    // Shared words, not meaning: scores of related texts run lower than a trained model's.
    relatedScore: 0.4,
    async embed(texts) {
      return texts.map(embedOne);
    },
  };
}

function embedOne(text: string): Float32Array {
  const features = new Map<string, { count: number; weight: number }>();
  const add = (feature: string, weight: number) => {
    const seen = features.get(feature);
    if (seen) seen.count++;
    else features.set(feature, { count: 1, weight });
  };
  let previous: string | undefined;
  forEachWord(text, (stemmed) => {
    add(stemmed, 1);
    if (previous !== undefined) add(`${previous} ${stemmed}`, PAIR_WEIGHT);
    previous = stemmed;
  });
  const vector = new Float32Array(DIMENSION);
  for (const [feature, { count, weight }] of features) {
    const hash = createHash("sha1").update(feature).digest();
    const slot = hash.readUInt32LE(0) % DIMENSION;
    // A signed hash keeps collisions from adding up; log weights damp repeated words.
    vector[slot] = (vector[slot] ?? 0) + (hash[4]! & 1 ? 1 : -1) * weight * (1 + Math.log(count));
  }
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < DIMENSION; i++) vector[i] = vector[i]! / norm;
  return vector;
}

import { createHash } from "node:crypto";
import type { Embedder } from "./embedder.js";

const DIMENSION = 512;
// Word pairs count for less than words: they add order, not new vocabulary.
const PAIR_WEIGHT = 0.5;

// English function words: shared by almost any two texts, they would make everything similar.
const STOP_WORDS = new Set(
  (
    "a an and are as at be been but by can could did do does doing for from had has have how i if " +
    "in into is it its it's me my no not of on or our so than that the their them then there these " +
    "they this those to too up us was we were what when where which while who why will with would " +
    "you your yes also just only very should shall may might must any all some each about after " +
    "before again get got"
  ).split(" "),
);

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
  // One word at a time, not an array of every word: tens of thousands of strings in one array
  // land in V8's large-object space, and the time stopped growing linearly with the text.
  const stems = new Map<string, string>();
  const pattern = /[\p{L}\p{N}_']+/gu;
  const lower = text.toLowerCase();
  let previous: string | undefined;
  for (let match = pattern.exec(lower); match; match = pattern.exec(lower)) {
    const word = trimApostrophes(match[0]);
    if (!word || STOP_WORDS.has(word)) continue;
    let stemmed = stems.get(word);
    if (stemmed === undefined) stems.set(word, (stemmed = stem(word)));
    add(stemmed, 1);
    if (previous !== undefined) add(`${previous} ${stemmed}`, PAIR_WEIGHT);
    previous = stemmed;
  }
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

/** `'quoted'` → `quoted`, by index: `/'+$/` would rescan a long run of quotes from each one. */
function trimApostrophes(word: string): string {
  let start = 0;
  let end = word.length;
  while (start < end && word[start] === "'") start++;
  while (end > start && word[end - 1] === "'") end--;
  return word.slice(start, end);
}

/** A crude English stemmer: enough to make plurals and tenses meet, never a dictionary. */
function stem(word: string): string {
  if (/\d/.test(word)) return word;
  const cut = word.length > 4 ? word.replace(/(?:ing|ed|es|s)$/, "") : word;
  const base = cut.length >= 3 ? cut : word;
  return base.length >= 4 ? base.replace(/e$/, "") : base;
}

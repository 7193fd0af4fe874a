import { LocalIndex, VirtualFileStorage } from "vectra";
import type { SearchHit } from "./memory-store.js";

// Reciprocal rank fusion's usual constant: it keeps one list's top rank from drowning the other.
const RRF_K = 60;

/**
 * vectra's BM25 hybrid over the semantic candidates of a short query: embeddings of two or three
 * words are vague, and a keyword match is often the better signal. vectra returns the semantic
 * top `k` and appends up to `k` keyword (BM25) hits from the rest. It sets BM25 up anew on every
 * query, which is cheap over a pool of about 50 candidates and would not be over the whole
 * memory. Both rankings are then merged by reciprocal rank fusion.
 */
export async function rerankWithKeywords(
  query: string,
  vector: Float32Array,
  candidates: SearchHit[],
  k: number,
  vectorOf: (id: string) => Float32Array | undefined,
): Promise<SearchHit[]> {
  // wink's BM25 needs a few documents to compute its statistics.
  if (candidates.length < 3) return candidates;
  const texts = new Map(candidates.map((hit) => [hit.record.id, hit.record.text]));
  const index = new LocalIndex("/candidates", undefined, new VirtualFileStorage(), undefined, {
    docReader: async (id: string) => texts.get(id) ?? "",
  });
  await index.createIndex({ version: 1 });
  await index.batchInsertItems(
    candidates.map((hit) => ({
      id: hit.record.id,
      vector: Array.from(vectorOf(hit.record.id) ?? []),
      metadata: { documentId: hit.record.id, startPos: 0, endPos: hit.record.text.length - 1 },
    })),
  );
  let results;
  try {
    results = await index.queryItems(Array.from(vector), query, k, undefined, true);
  } catch {
    return candidates;
  }
  const keywordRank = new Map(
    results.filter((r) => r.item.metadata.isBm25 === true).map((r, rank) => [r.item.id, rank]),
  );
  return candidates
    .map((hit, rank) => {
      const keyword = keywordRank.get(hit.record.id);
      const fused = 1 / (RRF_K + rank) + (keyword === undefined ? 0 : 1 / (RRF_K + keyword));
      return { hit: { ...hit, keyword: keyword !== undefined }, fused };
    })
    .sort((a, b) => b.fused - a.fused)
    .map(({ hit }) => hit);
}

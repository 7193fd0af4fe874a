import type { Bm25Index } from "./bm25-index.js";
import { keywordCharOf } from "./english-words.js";
import type { MemoryRecord, SearchHit, SearchOptions } from "./memory-store.js";
import type { NearDuplicateIndex } from "./near-duplicate.js";

/**
 * Weighted reciprocal-rank fusion: a candidate scores `vector / (k + its vector rank)` plus
 * `keyword / (k + its BM25 rank)` (ranks from 1; a list it is missing from adds nothing).
 *
 * Why ranks rather than a weighted sum of scores: on the dev split both reached the same recall
 * (recall@3 0.349 and 0.351: one query apart, see `npm run bench -- similar --tune`), but cosine
 * and BM25 live on scales that move with the embedder (the local one or OpenAI's), the query's
 * length and the memory's vocabulary, so a sum's weight would need re-tuning for each; ranks do
 * not. BM25 weighs three times the vector rank: with the local embedder, words are the stronger
 * signal (dev recall@3: BM25 0.34, vectors 0.24), and the vector rank mostly breaks its ties.
 */
export interface FusionParameters {
  k: number;
  vector: number;
  keyword: number;
  /** How deep each ranking is read. */
  pool: number;
}

/** Tuned on the dev split of the duplicate-issue set (bench/similar-bench.ts --tune). */
export const DEFAULT_FUSION: FusionParameters = { k: 10, vector: 1, keyword: 3, pool: 100 };

export interface HybridHit {
  id: string;
  /** Cosine similarity of the embeddings. */
  score: number;
  /** Among the BM25 candidates, or a near-exact duplicate. */
  keyword: boolean;
  /** Fingerprints (error line, panic message, trace) shared with the query. */
  shared: number;
}

export interface HybridIndexes {
  keywords: Bm25Index;
  duplicates: NearDuplicateIndex;
}

export interface HybridSearchOptions {
  k: number;
  accept: (id: string) => boolean;
  /** The cosine of a hit the vector ranking does not hold (a keyword or near-duplicate hit). */
  scoreOf: (id: string) => number;
  fusion?: FusionParameters;
  /** Rank records that share an error, panic or trace with the query first (default true). */
  nearDuplicatesFirst?: boolean;
  /** The query's own records (the issue itself, remembered), which `accept` leaves out. */
  self?: readonly string[];
  /**
   * How many fused hits to give back (default `k`): a caller that filters them afterwards (by
   * `minScore`) asks for all, or a candidate that passes could be cut for ones that do not.
   */
  limit?: number;
}

/** Ids of both rankings, best first, fused (ties keep the vector order). */
export function fuseRankings(
  vectorIds: readonly string[],
  keywordIds: readonly string[],
  fusion: FusionParameters = DEFAULT_FUSION,
): string[] {
  const fused = new Map<string, number>();
  vectorIds.forEach((id, rank) => fused.set(id, fusion.vector / (fusion.k + rank + 1)));
  keywordIds.forEach((id, rank) =>
    fused.set(id, (fused.get(id) ?? 0) + fusion.keyword / (fusion.k + rank + 1)),
  );
  return [...fused].sort((a, b) => b[1] - a[1]).map(([id]) => id);
}

/**
 * Near-exact duplicates first (most shared fingerprints first), then the fusion of `semantic`
 * (the vector ranking of what `accept` lets through, best first, at least `fusion.pool` deep
 * when there are that many) and the BM25 ranking.
 */
export function searchHybrid(
  indexes: HybridIndexes,
  query: string,
  semantic: ReadonlyArray<{ id: string; score: number }>,
  options: HybridSearchOptions,
): HybridHit[] {
  const fusion = options.fusion ?? DEFAULT_FUSION;
  const pool = Math.max(fusion.pool, options.k);
  const keyword = indexes.keywords.search(query, pool, options.accept).map((hit) => hit.id);
  const shared =
    options.nearDuplicatesFirst === false
      ? new Map<string, number>()
      : indexes.duplicates.match(query, options.accept, options.self);
  return orderHits({ semantic, keyword, shared }, options);
}

/** The three rankings of a search, however they were found (in RAM, or by SQL). */
export interface Rankings {
  /** By cosine, best first. */
  semantic: ReadonlyArray<{ id: string; score: number }>;
  /** By keywords (BM25 or the database's text ranking), best first. */
  keyword: readonly string[];
  /** Near-exact duplicates, by fingerprints shared with the query, most first. */
  shared: ReadonlyMap<string, number>;
}

/** Near-exact duplicates first, then the fusion of the vector and keyword rankings. */
export function orderHits(
  { semantic, keyword, shared }: Rankings,
  options: Pick<HybridSearchOptions, "k" | "scoreOf" | "fusion" | "limit">,
): HybridHit[] {
  const cosine = new Map(semantic.map((hit) => [hit.id, hit.score]));
  const keywordIds = new Set(keyword);
  const order = fuseRankings(
    semantic.map((hit) => hit.id),
    keyword,
    options.fusion ?? DEFAULT_FUSION,
  );
  const rest = order.filter((id) => !shared.has(id));
  // Equally shared, in the fused order, then by id: not in the order records were last written
  // to the index, which an edit or a reopen changes.
  const rank = new Map(order.map((id, i) => [id, i]));
  const near = [...shared.keys()].sort(
    (a, b) =>
      shared.get(b)! - shared.get(a)! ||
      (rank.get(a) ?? order.length) - (rank.get(b) ?? order.length) ||
      (a < b ? -1 : a > b ? 1 : 0),
  );
  const ids = [...near, ...rest].slice(0, options.limit ?? options.k);
  return ids.map((id) => ({
    id,
    score: cosine.get(id) ?? options.scoreOf(id),
    keyword: keywordIds.has(id) || shared.has(id),
    shared: shared.get(id) ?? 0,
  }));
}

// How far under `minScore` a cosine may fall and still reach it: float32 rounding. Identical texts
// have unit vectors whose dot product is 0.99999994, not 1, so `similar.threshold: 1` (the
// fallback that promises identical text) had left some of them out.
const SCORE_TOLERANCE = 1e-6;

// Up to this many words, a keyword (BM25) hit is kept below `minScore`: embeddings of a short
// query are vague, and its words are the better signal. A longer query (an issue's text) shares
// some word with almost anything, so there a keyword hit must reach `minScore` like any other.
const SHORT_QUERY_WORDS = 4;

/**
 * Which hits a search with `minScore` (a cosine, reached within `SCORE_TOLERANCE`) keeps:
 * near-exact duplicates and, for a short query unless `shortQueryKeywords` is false, keyword
 * hits, below it too. Both stores (local and PostgreSQL) filter here, through `keptHits`.
 */
function keepsHit(
  query: string,
  {
    minScore = -1,
    shortQueryKeywords = true,
  }: Pick<SearchOptions, "minScore" | "shortQueryKeywords">,
): (hit: HybridHit) => boolean {
  const short =
    shortQueryKeywords && countQueryWords(query, SHORT_QUERY_WORDS + 1) <= SHORT_QUERY_WORDS;
  return (hit) =>
    hit.shared > 0 || (short && hit.keyword) || hit.score >= minScore - SCORE_TOLERANCE;
}

/**
 * A query's words, counted up to `upTo`, at the boundaries BM25 reads (`forEachKeyword`:
 * punctuation too, so `pages:render-wrong:colours` is three words, not one run between spaces,
 * which had made a whole slug-like title a short query). Its stop words count: "how to fix it"
 * is four words, as a reader counts them. Chinese and Japanese have no spaces: a run of their
 * letters counts a word per two of them (most words are two), or a sentence would count as one
 * word, and, its pairs shared with unrelated issues, keep keyword hits a long query may not.
 * Thai, Lao, Khmer and Burmese write no spaces between words either: a run of theirs counts a
 * word per `UNSPACED_WORD_CHARS` characters (their marks among them).
 */
export function countQueryWords(query: string, upTo = Infinity): number {
  let words = 0;
  let inWord = false;
  let cjk = 0;
  let unspaced = 0;
  for (const char of query) {
    if (words >= upTo) break;
    const point = char.codePointAt(0)!;
    const kind = keywordCharOf(point);
    if (kind === "word" && isUnspacedScript(point)) {
      if (unspaced++ % UNSPACED_WORD_CHARS === 0) words++;
      cjk = 0;
      inWord = false;
      continue;
    }
    unspaced = 0;
    if (kind === "cjk") {
      if (cjk++ % 2 === 0) words++;
      inWord = false;
      continue;
    }
    cjk = 0;
    if (kind === "between") inWord = false;
    // An apostrophe alone is no word (`forEachKeyword` trims them).
    else if (!inWord && char !== "'") {
      words++;
      inWord = true;
    }
  }
  return words;
}

// Thai words average about four characters, vowel and tone marks included.
const UNSPACED_WORD_CHARS = 4;

/** Thai, Lao, Burmese or Khmer (their main blocks): scripts written without spaces. */
function isUnspacedScript(point: number): boolean {
  return (
    (point >= 0x0e00 && point <= 0x0eff) ||
    (point >= 0x1000 && point <= 0x109f) ||
    (point >= 0x1780 && point <= 0x17ff)
  );
}

/**
 * The first `k` hits of `ranked` (the whole fused list, in order) that the search keeps, with
 * their records. Cut at `k` before `minScore`, keyword hits below it pushed out hits that reach
 * it, and fewer than `k` came back while more existed. `minScore` is checked against the exact
 * cosine (`exactScores`, a batch at a time; a hit it leaves out is gone), not the int8 scan's
 * approximation, which let through hits below it. The first batch is `k` (all a search without
 * `minScore` reads), then each twice the last: few rounds when most fail.
 */
export async function keptHits(
  ranked: readonly HybridHit[],
  query: string,
  options: Pick<SearchOptions, "k" | "minScore" | "shortQueryKeywords">,
  exactScores: (hits: readonly HybridHit[]) => Promise<ReadonlyMap<string, number>>,
  recordOf: (id: string) => Promise<MemoryRecord | undefined>,
): Promise<SearchHit[]> {
  const keep = keepsHit(query, options);
  const found: SearchHit[] = [];
  for (
    let from = 0, batch = Math.max(options.k, 1);
    from < ranked.length && found.length < options.k;
    from += batch, batch *= 2
  ) {
    const hits = ranked.slice(from, from + batch);
    const scores = await exactScores(hits);
    const kept = hits
      .flatMap((hit) => {
        const score = scores.get(hit.id);
        return score === undefined ? [] : [{ ...hit, score }];
      })
      .filter(keep);
    // Read as many as are still wanted, then more of this batch for each record gone meanwhile
    // (removed since the ranking): cutting the batch once had skipped the hits after the cut,
    // and fewer than `k` came back, or ones ranked lower took their place.
    for (let at = 0; at < kept.length && found.length < options.k;) {
      const next = kept.slice(at, at + options.k - found.length);
      at += next.length;
      const records = await Promise.all(
        next.map(async (hit) => {
          const record = await recordOf(hit.id);
          return record && { record, score: hit.score, keyword: hit.keyword };
        }),
      );
      found.push(...records.filter((hit) => hit !== undefined));
    }
  }
  return found;
}

/** `vector` scaled to length 1 (a zero vector stays zero), as float32. */
export function unitVector(vector: ArrayLike<number>): Float32Array {
  // The loops below see Float32Arrays only: reading a number[] in them too (vectra's items)
  // made every read generic, and the call took ~18 µs for 1,536 values, not ~10.
  return unitFloat32(vector instanceof Float32Array ? vector : Float32Array.from(vector));
}

/**
 * `vector` itself when it is a Float32Array of unit length already, as most embedders'
 * (OpenAI's among them) are; otherwise as `unitVector`. For a store's adds: it never writes
 * into a vector it keeps, and each copy was 6 KB more of the external memory whose growth
 * makes V8 run full collections.
 */
export function asUnitVector(vector: ArrayLike<number>): Float32Array {
  return vector instanceof Float32Array ? unitFloat32(vector, false) : unitVector(vector);
}

/**
 * Most embedders (OpenAI's among them) return unit vectors already: those are copied as they
 * are (or, without `copy`, given back), ~4 µs rather than ~10 to scale them. With a squared
 * length within a millionth of 1, a scaled copy would differ from them by half a millionth of
 * their value at most.
 */
function unitFloat32(vector: Float32Array, copy = true): Float32Array {
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += vector[i]! * vector[i]!;
  if (Math.abs(norm - 1) < 1e-6) return copy ? vector.slice() : vector;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  // A plain loop: Float32Array.from with a map function took ~95 µs for 1,536 values, a third
  // of a durable add.
  const unit = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) unit[i] = vector[i]! * scale;
  return unit;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

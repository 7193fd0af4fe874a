// Similar-issue retrieval on real duplicates: rust-lang/rust issues 2010–2015, read at run time
// from ../shared/data/duplicates (see its README for the source, licence caveat and split).
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RepoConfigSchema } from "../src/config.js";
import { Bm25Index, DEFAULT_BM25, type Bm25Parameters } from "../src/memory/bm25-index.js";
import { similarSearchOptions } from "../src/memory/find-similar-issues.js";
import {
  DEFAULT_FUSION,
  dot,
  fuseRankings,
  keptHits,
  searchHybrid,
  type FusionParameters,
  type HybridIndexes,
  unitVector,
} from "../src/memory/hybrid-search.js";
import { createLocalEmbedder } from "../src/memory/local-embedder.js";
import { issueMemoryText } from "../src/memory/memory-inputs.js";
import { NearDuplicateIndex } from "../src/memory/near-duplicate.js";
import { QuantizedMatrix } from "../src/memory/quantized-matrix.js";
import { RESCORE_FACTOR } from "../src/memory/vectra-memory-store.js";
import { printTable } from "./stats.js";

const DATA = fileURLToPath(new URL("../../shared/data/duplicates/", import.meta.url));
// The README's plain TF-IDF ranker: the original in the top 3 for 36% of the duplicates.
const README_TFIDF_AT_3 = 0.36;
const CUTOFFS = [1, 3, 10] as const;
// What the store keeps of a text (VectraMemoryStore cuts at 20,000 characters).
const MAX_TEXT = 20_000;
const EMBED_BATCH = 500;

type Split = "dev" | "test";
type Method = "vector" | "bm25" | "hybrid" | "hybrid, no near-dup" | "tf-idf";
const METHODS: Method[] = ["vector", "bm25", "hybrid, no near-dup", "hybrid", "tf-idf"];

interface Issue {
  number: number;
  title: string;
  body: string | null;
  created_at: string;
}

interface Pair {
  duplicate: number;
  original: number;
  split: Split;
}

export interface Recall {
  at1: number;
  at3: number;
  at10: number;
}

/** Of the duplicates, how many had their original named, and how many had nothing named. */
export interface Named {
  original: number;
  nothing: number;
}

export interface SplitResult {
  pairs: number;
  recall: Record<Method, Recall>;
  /**
   * What a new issue's similar-issue comment names with the default settings (`similar.max`
   * issues, the local embedder's threshold): the hybrid as `findSimilarIssues` searches, and
   * the local embedder alone at the same threshold (the original Talos's search).
   */
  named: { max: number; threshold: number; hybrid: Named; vector: Named };
  /** Queries where a near-exact match was found, and how often the first one was the original. */
  nearDuplicate: { queries: number; firstIsOriginal: number };
}

export type SimilarBenchResult =
  | { skipped: string }
  | {
      data: string;
      issues: number;
      setupSeconds: number;
      fusion: FusionParameters;
      bm25: Bm25Parameters;
      splits: Partial<Record<Split, SplitResult>>;
      quantized: { queries: number; recallAt5: number; approximateOnlyRecallAt5: number };
      targets: {
        readmeTfIdfAt3: number;
        hybridBeatsVector: boolean;
        hybridBeatsBm25: boolean;
        hybridBeatsReadmeTfIdf: boolean;
        hybridNamesMoreThanVector: boolean;
      } | null;
      tuning?: Array<Record<string, string | number>>;
    };

export interface SimilarBenchOptions {
  json: boolean;
  splits?: Split[];
  /** Grid-search the fusion and BM25 parameters on dev and print the best. */
  tune?: boolean;
  /** Only the first n pairs of each split (for the smoke test). */
  limit?: number;
  /** Where the data set is; `../shared/data/duplicates` next to the repository by default. */
  directory?: string;
}

interface Corpus {
  ids: string[];
  texts: string[];
  created: number[];
  byNumber: Map<number, number>;
  indexes: HybridIndexes;
  matrix: QuantizedMatrix;
  /** Unit vectors, by position. */
  vectors: Float32Array[];
  tfidf: TfIdfIndex;
  /** The local embedder's threshold of related, the default `similar.threshold`. */
  relatedScore: number;
}

// As the store does for k 10: the int8 scan's best 4 × 10 are rescored with float32 vectors.
const RESCORE = RESCORE_FACTOR * 10;

/** The vector ranking as the store computes it: an int8 scan, the head rescored exactly. */
function semanticOf(corpus: Corpus, query: Query, k: number, rescore = RESCORE) {
  const approximate = corpus.matrix.candidates(query.vector, k, query.accept);
  const head = approximate
    .slice(0, rescore)
    .map((c) => ({ id: c.id, score: dot(query.vector, corpus.vectors[c.slot]!) }))
    .sort((a, b) => b.score - a.score);
  return [...head, ...approximate.slice(head.length)];
}

export async function runSimilarBench(options: SimilarBenchOptions): Promise<SimilarBenchResult> {
  const directory = options.directory ?? DATA;
  const say = (line: string) => {
    if (!options.json) console.log(line);
  };
  if (!existsSync(`${directory}/issues.jsonl`) || !existsSync(`${directory}/pairs.jsonl`)) {
    const skipped = `no duplicate-issue data at ${directory} (issues.jsonl, pairs.jsonl): the similar-issue recall is not measured`;
    say(`similar: skipped — ${skipped}`);
    return { skipped };
  }
  const started = performance.now();
  const issues = readJsonLines<Issue>(`${directory}/issues.jsonl`);
  const pairs = readJsonLines<Pair>(`${directory}/pairs.jsonl`);
  const corpus = await buildCorpus(issues);
  const setupSeconds = (performance.now() - started) / 1000;
  say(
    `similar: ${issues.length} issues, ${pairs.length} duplicate pairs; indexed in ${setupSeconds.toFixed(1)} s`,
  );

  const tuning = options.tune ? tune(corpus, pairsOf(pairs, "dev", options.limit)) : undefined;
  const splits: Partial<Record<Split, SplitResult>> = {};
  for (const split of options.splits ?? ["test", "dev"]) {
    splits[split] = await evaluate(corpus, pairsOf(pairs, split, options.limit));
  }
  const quantized = quantizedRecall(
    queriesOf(corpus, pairsOf(pairs, options.splits?.[0] ?? "test", options.limit)),
    corpus,
  );
  const test = splits.test?.recall;
  const targets = test
    ? {
        readmeTfIdfAt3: README_TFIDF_AT_3,
        hybridBeatsVector: test.hybrid.at3 > test.vector.at3,
        hybridBeatsBm25: test.hybrid.at3 > test.bm25.at3,
        hybridBeatsReadmeTfIdf: test.hybrid.at3 > README_TFIDF_AT_3,
        hybridNamesMoreThanVector:
          splits.test!.named.hybrid.original > splits.test!.named.vector.original,
      }
    : null;
  const result = {
    data: directory,
    issues: issues.length,
    setupSeconds,
    fusion: DEFAULT_FUSION,
    bm25: DEFAULT_BM25,
    splits,
    quantized,
    targets,
    ...(tuning ? { tuning } : {}),
  };
  if (!options.json) printReport(result);
  return result;
}

export function readJsonLines<T>(file: string): T[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as T);
}

function pairsOf(pairs: Pair[], split: Split, limit?: number): Pair[] {
  const chosen = pairs.filter((pair) => pair.split === split);
  return limit === undefined ? chosen : chosen.slice(0, limit);
}

/** Every issue once, as the store would hold it: the same text, vector, keywords, fingerprints. */
async function buildCorpus(issues: Issue[]): Promise<Corpus> {
  const embedder = createLocalEmbedder();
  const ids = issues.map((issue) => `issue-${issue.number}`);
  const texts = issues.map((issue) =>
    issueMemoryText({ title: issue.title, body: issue.body }).slice(0, MAX_TEXT),
  );
  const matrix = new QuantizedMatrix(embedder.dimension, issues.length);
  const indexes: HybridIndexes = {
    keywords: new Bm25Index(),
    duplicates: new NearDuplicateIndex(),
  };
  const vectors: Float32Array[] = [];
  for (let i = 0; i < texts.length; i += EMBED_BATCH)
    vectors.push(...(await embedder.embed(texts.slice(i, i + EMBED_BATCH))).map(unitVector));
  texts.forEach((text, i) => {
    matrix.set(i, ids[i]!, vectors[i]!);
    indexes.keywords.set(i, ids[i]!, text);
    indexes.duplicates.set(ids[i]!, text);
  });
  return {
    ids,
    texts,
    created: issues.map((issue) => Date.parse(issue.created_at)),
    byNumber: new Map(issues.map((issue, i) => [issue.number, i])),
    indexes,
    matrix,
    vectors,
    tfidf: new TfIdfIndex(ids, texts),
    relatedScore: embedder.relatedScore,
  };
}

interface Query {
  pair: Pair;
  text: string;
  vector: Float32Array;
  original: string;
  /** The memory when the duplicate was filed: issues created strictly before it, not itself. */
  accept: (id: string) => boolean;
}

function queriesOf(corpus: Corpus, pairs: Pair[]): Query[] {
  const position = new Map(corpus.ids.map((id, i) => [id, i]));
  return pairs.map((pair) => {
    const at = corpus.byNumber.get(pair.duplicate);
    if (at === undefined) throw new Error(`duplicate #${pair.duplicate} is not in issues.jsonl`);
    const created = corpus.created[at]!;
    const self = corpus.ids[at]!;
    return {
      pair,
      text: corpus.texts[at]!,
      vector: corpus.vectors[at]!,
      original: `issue-${pair.original}`,
      accept: (id) => id !== self && corpus.created[position.get(id)!]! < created,
    };
  });
}

async function evaluate(corpus: Corpus, pairs: Pair[]): Promise<SplitResult> {
  const found = Object.fromEntries(METHODS.map((m) => [m, [] as number[]])) as Record<
    Method,
    number[]
  >;
  const nearDuplicate = { queries: 0, firstIsOriginal: 0 };
  const settings = RepoConfigSchema.parse({}).similar;
  const named = {
    max: settings.max,
    threshold: settings.threshold ?? corpus.relatedScore,
    hybrid: { original: 0, nothing: 0 },
    vector: { original: 0, nothing: 0 },
  };
  for (const query of queriesOf(corpus, pairs)) {
    const { indexes } = corpus;
    const semantic = semanticOf(corpus, query, DEFAULT_FUSION.pool);
    const scoreOf = () => 0;
    const rankings: Record<Method, string[]> = {
      vector: semantic.slice(0, 10).map((h) => h.id),
      bm25: indexes.keywords.search(query.text, 10, query.accept).map((h) => h.id),
      "hybrid, no near-dup": searchHybrid(indexes, query.text, semantic, {
        k: 10,
        accept: query.accept,
        scoreOf,
        nearDuplicatesFirst: false,
      }).map((h) => h.id),
      hybrid: [],
      "tf-idf": corpus.tfidf.search(query.text, 10, query.accept),
    };
    const hybrid = searchHybrid(indexes, query.text, semantic, {
      k: 10,
      accept: query.accept,
      scoreOf,
    });
    rankings.hybrid = hybrid.map((h) => h.id);
    if (hybrid[0] && hybrid[0].shared > 0) {
      nearDuplicate.queries++;
      if (hybrid[0].id === query.original) nearDuplicate.firstIsOriginal++;
    }
    for (const method of METHODS) found[method].push(rankings[method].indexOf(query.original));
    const { hybrid: byHybrid, vector: byVector } = await namedFor(corpus, query, settings);
    for (const [ids, count] of [
      [byHybrid, named.hybrid],
      [byVector, named.vector],
    ] as const) {
      if (ids.includes(query.original)) count.original++;
      if (ids.length === 0) count.nothing++;
    }
  }
  const recall = Object.fromEntries(
    METHODS.map((method) => [method, recallOf(found[method])]),
  ) as Record<Method, Recall>;
  return { pairs: pairs.length, recall, nearDuplicate, named };
}

/**
 * The ids a similar-issue comment on the duplicate names: the store's search as
 * `findSimilarIssues` asks it (the vector ranking, BM25 and near-exact matches fused, then
 * `keptHits` with its threshold and `similar.max`), and the local embedder alone with the same
 * threshold and number.
 */
async function namedFor(
  corpus: Corpus,
  query: Query,
  settings: { max: number; threshold?: number | undefined },
): Promise<{ hybrid: string[]; vector: string[] }> {
  const options = similarSearchOptions(query.pair.duplicate, settings, corpus.relatedScore);
  const minScore = options.minScore!;
  const cosine = (id: string) =>
    dot(query.vector, corpus.vectors[corpus.byNumber.get(numberOf(id))!]!);
  const pool = Math.max(options.k, DEFAULT_FUSION.pool);
  const semantic = semanticOf(corpus, query, pool, RESCORE_FACTOR * options.k);
  const ranked = searchHybrid(corpus.indexes, query.text, semantic, {
    k: pool,
    accept: query.accept,
    self: options.excludeIds,
    scoreOf: cosine,
    limit: Number.POSITIVE_INFINITY,
  });
  const kept = await keptHits(
    ranked,
    query.text,
    options,
    async (hits) => new Map(hits.map((hit) => [hit.id, cosine(hit.id)])),
    // Only the id is read here.
    async (id) => ({ id, kind: "issue", text: "", repo: "rust-lang/rust", createdAt: "" }),
  );
  const vector = semantic
    .map((hit) => ({ id: hit.id, score: cosine(hit.id) }))
    .filter((hit) => hit.score >= minScore)
    .sort((a, b) => b.score - a.score)
    .slice(0, options.k);
  return { hybrid: kept.map((hit) => hit.record.id), vector: vector.map((hit) => hit.id) };
}

const numberOf = (id: string) => Number(id.slice("issue-".length));

/**
 * How often the store's vector search (int8 scan, best 4 × 5 rescored in float32) finds the
 * exact top 5, on these real issues embedded by the local embedder. A hit is any record scoring
 * at least the exact fifth best: texts with the same words embed to the same vector.
 */
function quantizedRecall(queries: Query[], corpus: Corpus) {
  let rescored = 0;
  let approximateOnly = 0;
  for (const query of queries) {
    const exact = corpus.vectors
      .map((vector, i) => ({ i, score: dot(query.vector, vector) }))
      .filter(({ i }) => query.accept(corpus.ids[i]!))
      .sort((a, b) => b.score - a.score)
      .slice(0, 5);
    const fifth = exact.at(-1)?.score ?? -Infinity;
    const found = (slots: number[]) =>
      slots.filter((slot) => dot(query.vector, corpus.vectors[slot]!) >= fifth - 1e-6).length /
      Math.max(1, exact.length);
    const candidates = corpus.matrix.candidates(query.vector, 4 * 5, query.accept);
    approximateOnly += found(candidates.slice(0, 5).map((c) => c.slot));
    rescored += found(
      candidates
        .map((c) => ({ slot: c.slot, score: dot(query.vector, corpus.vectors[c.slot]!) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 5)
        .map((c) => c.slot),
    );
  }
  return {
    queries: queries.length,
    recallAt5: rescored / Math.max(1, queries.length),
    approximateOnlyRecallAt5: approximateOnly / Math.max(1, queries.length),
  };
}

function recallOf(positions: number[]): Recall {
  const at = (cutoff: number) =>
    positions.filter((p) => p >= 0 && p < cutoff).length / Math.max(1, positions.length);
  return { at1: at(CUTOFFS[0]), at3: at(CUTOFFS[1]), at10: at(CUTOFFS[2]) };
}

/**
 * A grid over the fusion's constant and weights and BM25's parameters, on dev only: the vector
 * and BM25 rankings are computed once per BM25 setting, the fusion replayed over them.
 */
function tune(corpus: Corpus, pairs: Pair[]): Array<Record<string, string | number>> {
  const queries = queriesOf(corpus, pairs);
  const pool = DEFAULT_FUSION.pool;
  const semantic = queries.map((q) => semanticOf(corpus, q, pool));
  const at3 = (ranking: (i: number) => string[]) =>
    queries.filter((q, i) => ranking(i).slice(0, 3).includes(q.original)).length / queries.length;
  const rows: Array<Record<string, string | number>> = [];
  const bm25Grid: Array<Partial<Bm25Parameters>> = [];
  for (const k1 of [0.9, 1.2, 1.6])
    for (const bBody of [0.5, 0.75])
      for (const titleWeight of [2, 3]) bm25Grid.push({ k1, bBody, titleWeight });
  for (const bm25 of bm25Grid) {
    const keyword = queries.map((q) =>
      corpus.indexes.keywords.search(q.text, pool, q.accept, bm25),
    );
    const bm25At3 = at3((i) => keyword[i]!.map((h) => h.id));
    for (const k of [5, 10, 30, 60])
      for (const weight of [1, 1.5, 2, 3, 4]) {
        const fusion = { k, vector: 1, keyword: weight, pool };
        rows.push({
          ...bm25,
          fusion: `rrf k ${k}`,
          "bm25 weight": weight,
          "bm25 @3": bm25At3,
          "hybrid @3": at3((i) =>
            fuseRankings(
              semantic[i]!.map((h) => h.id),
              keyword[i]!.map((h) => h.id),
              fusion,
            ),
          ),
        });
      }
    // The alternative: cosine plus BM25 scaled by the query's best BM25 score.
    for (const weight of [0.25, 0.5, 1, 2, 4])
      rows.push({
        ...bm25,
        fusion: "weighted sum",
        "bm25 weight": weight,
        "bm25 @3": bm25At3,
        "hybrid @3": at3((i) => weightedSum(semantic[i]!, keyword[i]!, weight)),
      });
  }
  rows.sort((a, b) => Number(b["hybrid @3"]) - Number(a["hybrid @3"]));
  return rows.slice(0, 15);
}

function weightedSum(
  semantic: Array<{ id: string; score: number }>,
  keyword: Array<{ id: string; score: number }>,
  weight: number,
): string[] {
  const best = keyword[0]?.score ?? 1;
  const floor = semantic.at(-1)?.score ?? 0;
  const sum = new Map(semantic.map((h) => [h.id, h.score]));
  for (const h of keyword) sum.set(h.id, (sum.get(h.id) ?? floor) + (weight * h.score) / best);
  return [...sum].sort((a, b) => b[1] - a[1]).map(([id]) => id);
}

/**
 * A plain TF-IDF ranker (raw counts × smoothed idf, unit vectors, cosine) over title and body,
 * words of two or more letters or digits, no stemming or stop words: the README's baseline.
 */
class TfIdfIndex {
  readonly #postings = new Map<string, { docs: number[]; weights: number[] }>();
  readonly #idf = new Map<string, number>();
  readonly #ids: string[];

  constructor(ids: string[], texts: string[]) {
    this.#ids = ids;
    const counts = texts.map(countWords);
    const df = new Map<string, number>();
    for (const c of counts) for (const term of c.keys()) df.set(term, (df.get(term) ?? 0) + 1);
    for (const [term, n] of df) this.#idf.set(term, Math.log((1 + texts.length) / (1 + n)) + 1);
    counts.forEach((c, doc) => {
      const weights = this.#weigh(c);
      for (const [term, weight] of weights) {
        let posting = this.#postings.get(term);
        if (!posting) this.#postings.set(term, (posting = { docs: [], weights: [] }));
        posting.docs.push(doc);
        posting.weights.push(weight);
      }
    });
  }

  search(query: string, k: number, accept: (id: string) => boolean): string[] {
    const scores = new Map<number, number>();
    for (const [term, weight] of this.#weigh(countWords(query))) {
      const posting = this.#postings.get(term);
      if (!posting) continue;
      for (let i = 0; i < posting.docs.length; i++) {
        const doc = posting.docs[i]!;
        scores.set(doc, (scores.get(doc) ?? 0) + weight * posting.weights[i]!);
      }
    }
    const ranked = [...scores].sort((a, b) => b[1] - a[1]);
    const hits: string[] = [];
    for (const [doc] of ranked) {
      const id = this.#ids[doc]!;
      if (!accept(id)) continue;
      hits.push(id);
      if (hits.length === k) break;
    }
    return hits;
  }

  #weigh(counts: Map<string, number>): Map<string, number> {
    const weights = new Map<string, number>();
    let norm = 0;
    for (const [term, count] of counts) {
      const weight = count * (this.#idf.get(term) ?? 0);
      if (weight === 0) continue;
      weights.set(term, weight);
      norm += weight * weight;
    }
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (const [term, weight] of weights) weights.set(term, weight * scale);
    return weights;
  }
}

function countWords(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}_]{2,}/gu))
    counts.set(match[0], (counts.get(match[0]) ?? 0) + 1);
  return counts;
}

function printReport(result: Exclude<SimilarBenchResult, { skipped: string }>): void {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  for (const [split, r] of Object.entries(result.splits)) {
    console.log(`\n${split} split: ${r.pairs} duplicates, each against the issues filed before it`);
    printTable(
      METHODS.map((method) => ({
        ranker: method,
        "recall@1": pct(r.recall[method].at1),
        "recall@3": pct(r.recall[method].at3),
        "recall@10": pct(r.recall[method].at10),
      })),
    );
    console.log(
      `near-exact match (shared error, panic or trace) ranked first for ${r.nearDuplicate.queries} duplicates; it was the original for ${r.nearDuplicate.firstIsOriginal}`,
    );
    const { named } = r;
    const share = (count: number) => `${pct(count / Math.max(1, r.pairs))} (${count})`;
    console.log(
      `\nnamed by the similar-issue comment (similar.max ${named.max}, similarity at least ${named.threshold}: the defaults with the local embedder)`,
    );
    printTable(
      (["vector", "hybrid"] as const).map((search) => ({
        search: search === "hybrid" ? "hybrid (as findSimilarIssues searches)" : "vector alone",
        "original named": share(named[search].original),
        "nothing named": share(named[search].nothing),
      })),
    );
  }
  const q = result.quantized;
  console.log(
    `\nvector search as the store runs it (int8 scan, best 20 rescored in float32) against exact float32 top 5, ${q.queries} duplicates: recall@5 ${q.recallAt5.toFixed(3)} (${q.approximateOnlyRecallAt5.toFixed(3)} without rescoring)`,
  );
  const f = result.fusion;
  console.log(
    `\nhybrid: near-exact matches first, then reciprocal-rank fusion of the top ${f.pool} of each (k ${f.k}, vector weight ${f.vector}, BM25 weight ${f.keyword}); BM25F k1 ${result.bm25.k1}, b ${result.bm25.bBody} (title ${result.bm25.bTitle}), title weight ${result.bm25.titleWeight}; tuned on dev`,
  );
  if (result.tuning) {
    console.log("\ntuning on dev (best 15 by hybrid recall@3):");
    printTable(result.tuning);
  }
  const t = result.targets;
  if (t) {
    const verdict = (met: boolean) => (met ? "met" : "NOT met");
    console.log(
      `\ntarget hybrid recall@3 > local embedder alone (test): ${verdict(t.hybridBeatsVector)}`,
    );
    console.log(`target hybrid recall@3 > BM25 alone (test): ${verdict(t.hybridBeatsBm25)}`);
    console.log(
      `target hybrid recall@3 > the README's TF-IDF ${pct(t.readmeTfIdfAt3)} (test): ${verdict(t.hybridBeatsReadmeTfIdf)}`,
    );
    console.log(
      `target the comment names the original more often than the local embedder alone at the same threshold (test): ${verdict(t.hybridNamesMoreThanVector)}`,
    );
  }
}

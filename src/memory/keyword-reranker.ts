import { LocalIndex, VirtualFileStorage } from "vectra";
import model from "wink-eng-lite-web-model";
import winkNLP, { type ItemToken } from "wink-nlp";
import type { SearchHit } from "./memory-store.js";

// Reciprocal rank fusion's usual constant: it keeps one list's top rank from drowning the other.
const RRF_K = 60;
// Angles under a quarter turn for up to a few hundred candidates: cosine falls with the rank.
const RANK_ANGLE = Math.PI / 2 / 1_000;
// wink's BM25 refuses to compute its statistics over fewer documents than this.
const MIN_KEYWORD_DOCS = 3;
// Keywords are looked for in the title and the start of the text: tokenizing whole bodies
// (up to 20,000 characters each, 50 of them) would cost more than the search itself.
const KEYWORD_TEXT = 2_000;

/** The parts of vectra's `LocalIndex` that set up BM25 on every query (private in its types). */
interface Bm25Internals {
  _bm25Engine: unknown;
  _bm25Factory: () => {
    defineConfig(config: object): void;
    definePrepTasks(tasks: Array<(text: string) => string[]>): void;
  };
  setupBm25: () => Promise<void>;
}

/**
 * vectra's BM25 hybrid over the semantic candidates of a short query: embeddings of two or three
 * words are vague, and a keyword match is often the better signal. vectra returns the semantic
 * top `k` and appends up to `k` keyword (BM25) hits from the rest; both rankings are merged here
 * by reciprocal rank fusion.
 *
 * vectra 0.15 builds a new wink-nlp pipeline (loading its language model) on every query: about
 * 100 ms each, and garbage that made searches take seconds after a few dozen. This class loads
 * the pipeline once and hands vectra's BM25 engine the same tokenizer vectra would build.
 */
export class KeywordReranker {
  #tokenize: ((text: string) => string[]) | undefined;

  /** `candidates` are the semantic hits, best first; the result is the best `k` of both rankings. */
  async rerank(query: string, candidates: SearchHit[], k: number): Promise<SearchHit[]> {
    // vectra keeps its semantic top k out of BM25; the rest must be enough for BM25's statistics.
    if (candidates.length - Math.min(k, candidates.length) < MIN_KEYWORD_DOCS) return candidates;
    const texts = new Map(
      candidates.map((hit) => [hit.record.id, hit.record.text.slice(0, KEYWORD_TEXT)]),
    );
    const index = new LocalIndex("/candidates", undefined, new VirtualFileStorage(), undefined, {
      docReader: async (id: string) => texts.get(id) ?? "",
    });
    const internals = index as unknown as Bm25Internals;
    const tokenize = this.#tokenizer();
    internals.setupBm25 = async () => {
      const engine = internals._bm25Factory();
      engine.defineConfig({ fldWeights: { body: 1 } });
      engine.definePrepTasks([tokenize]);
      internals._bm25Engine = engine;
    };
    await index.createIndex({ version: 1 });
    // vectra's semantic pass only decides which candidates BM25 leaves out: its top k, which
    // are ours. Two-dimensional vectors that rank the candidates as they already are ranked
    // spare copying and normalizing 50 full-size embeddings.
    await index.batchInsertItems(
      candidates.map((hit, rank) => ({
        id: hit.record.id,
        vector: [Math.cos(rank * RANK_ANGLE), Math.sin(rank * RANK_ANGLE)],
        metadata: {
          documentId: hit.record.id,
          startPos: 0,
          endPos: (texts.get(hit.record.id) ?? "").length - 1,
        },
      })),
    );
    const results = await index.queryItems([1, 0], query, k, undefined, true);
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

  /** vectra's own BM25 preparation: words only, no stop words, stemmed, negation marked. */
  #tokenizer(): (text: string) => string[] {
    if (this.#tokenize) return this.#tokenize;
    const nlp = winkNLP(model);
    const its = nlp.its;
    // The model's typings of its addons disagree with wink-nlp's; `stem` yields a string.
    const stemOf = its.stem as unknown as typeof its.value;
    this.#tokenize = (text) => {
      const tokens: string[] = [];
      nlp
        .readDoc(text)
        .tokens()
        .filter((t: ItemToken) => t.out(its.type) === "word" && !t.out(its.stopWordFlag))
        .each((t: ItemToken) => {
          const stem = t.out(stemOf);
          tokens.push(t.out(its.negationFlag) ? `!${stem}` : stem);
        });
      return tokens;
    };
    return this.#tokenize;
  }
}

import { forEachKeyword } from "./english-words.js";
import { IntListArena } from "./int-list-arena.js";

/** BM25F parameters; the defaults were tuned on the dev split of the duplicate-issue set. */
export interface Bm25Parameters {
  /** Term-frequency saturation. */
  k1: number;
  /** Length normalisation of the title and of the body (0: none, 1: full). */
  bTitle: number;
  bBody: number;
  /** A title word counts as this many body words. */
  titleWeight: number;
}

export const DEFAULT_BM25: Bm25Parameters = { k1: 0.9, bTitle: 0.5, bBody: 0.75, titleWeight: 2 };

// User text: a record's text is already cut at 20,000 characters; a query is cut here too. Words
// longer than this are base64, hashes or minified code, not words anyone searches for.
const MAX_TEXT = 20_000;
const MAX_WORD = 40;
// Distinct words of one record or query: bounds a hostile text's postings and a query's work.
const MAX_TERMS = 2_000;
// A term frequency is stored in 16 bits.
const MAX_TF = 0xffff;
// A term's Map entry and its name's slot, beyond the key's characters.
const TERM_OVERHEAD_BYTES = 80;
// A document's id slot (the string is the caller's).
const DOC_OVERHEAD_BYTES = 8;

/** Documents counted before (a segment's words file), to load into an empty index. */
export interface Bm25Part {
  /** Added to each posting's document number (a segment's first slot). */
  base: number;
  terms: readonly string[];
  /** Postings per term, in `postings` one term after the other. */
  counts: Int32Array;
  /** `[document, title tf << 16 | body tf]` pairs. */
  postings: Int32Array;
  titleLengths: Uint32Array;
  bodyLengths: Uint32Array;
  /** By document (before `base`): the id to answer with, or undefined to leave it out. */
  ids: ReadonlyArray<string | undefined>;
}

export interface Bm25Hit {
  id: string;
  score: number;
}

/** A text's words, each with its title and body counts packed as `title << 16 | body`. */
export interface Fields {
  counts: Map<string, number>;
  titleLength: number;
  bodyLength: number;
}

/**
 * An in-RAM inverted index over records' title and body, ranked by BM25F (the title weighted
 * more). Owned by a store and kept in step with its records: `set` adds or replaces, `delete`
 * removes. Search scores only the documents that share a word with the query.
 */
export class Bm25Index {
  readonly #parameters: Bm25Parameters;
  readonly #terms = new Map<string, number>();
  readonly #termNames: string[] = [];
  /** Per term, `[doc, title tf << 16 | body tf]` pairs, in no order (removal swaps). */
  readonly #postings = new IntListArena(2);
  /** Term ids whose last posting went: a term no record holds leaves the vocabulary. */
  readonly #freeTerms: number[] = [];
  /** Per document, its term ids: what a removal takes out of the postings. */
  readonly #docTerms = new IntListArena(1);
  /** By document number: the id search answers with, or undefined where there is none. */
  readonly #docIds: Array<string | undefined> = [];
  #size = 0;
  // Field lengths by document number, in typed arrays: search reads one per posting, and a
  // Doc object per posting costs a pointer chase each (at 250,000 records, a third of a search).
  #titleLengths = new Uint32Array(64);
  #bodyLengths = new Uint32Array(64);
  /** Search's per-document scores, kept between searches and zeroed after each. */
  #scores = new Float64Array(64);
  #titleTotal = 0;
  #bodyTotal = 0;
  #termBytes = 0;
  #docBytes = 0;

  constructor(parameters: Partial<Bm25Parameters> = {}) {
    this.#parameters = { ...DEFAULT_BM25, ...parameters };
  }

  get size(): number {
    return this.#size;
  }

  /** What the index holds in RAM, estimated: postings, the vocabulary and per-record slots. */
  get bytes(): number {
    const perDoc = this.#titleLengths.byteLength * 2 + this.#scores.byteLength;
    return this.#postings.bytes + this.#docTerms.bytes + perDoc + this.#termBytes + this.#docBytes;
  }

  has(number: number): boolean {
    return this.#docIds[number] !== undefined;
  }

  /**
   * Indexes `text` as document `number`, answering searches with `id`; replaces what was
   * indexed as that number before. The caller numbers its documents (the store by slot, which
   * it has already): the index keeps no map from id to number.
   */
  set(number: number, id: string, text: string): void {
    this.delete(number);
    const fields = countFields(text);
    const terms = new Int32Array(fields.counts.size);
    let i = 0;
    for (const [term, packed] of fields.counts) {
      const termId = this.#termId(term);
      terms[i++] = termId;
      this.#postings.push(termId, number, packed);
    }
    this.#docTerms.set(number, terms);
    this.#docIds[number] = id;
    this.#size++;
    if (number >= this.#titleLengths.length) this.#grow(number + 1);
    this.#titleLengths[number] = fields.titleLength;
    this.#bodyLengths[number] = fields.bodyLength;
    this.#titleTotal += fields.titleLength;
    this.#bodyTotal += fields.bodyLength;
    this.#docBytes += DOC_OVERHEAD_BYTES;
  }

  /**
   * Fills an empty index with documents counted before, in two passes over their postings
   * (count, then place): no word is read, and no posting list grows or moves.
   */
  restore(parts: readonly Bm25Part[]): void {
    if (this.#size > 0) throw new Error("restore fills an empty index");
    const termIds = parts.map((part) => Int32Array.from(part.terms, (term) => this.#termId(term)));
    const termCounts = new Int32Array(this.#termNames.length);
    let documents = 0;
    for (const part of parts) documents = Math.max(documents, part.base + part.ids.length);
    const docCounts = new Int32Array(documents);
    // Two passes over the postings, written out rather than through a callback: a call per
    // posting was a third of a restore.
    for (let pass = 0; pass < 2; pass++) {
      if (pass === 1) {
        // A word's list grows with each record added after; a record's list is only replaced.
        this.#postings.allocate(termCounts, { growth: true });
        this.#docTerms.allocate(docCounts);
      }
      parts.forEach(({ counts, postings, ids, base }, p) => {
        let at = 0;
        for (let local = 0; local < counts.length; local++) {
          const term = termIds[p]![local]!;
          for (const end = at + 2 * counts[local]!; at < end; at += 2) {
            const position = postings[at]!;
            if (ids[position] === undefined) continue;
            if (pass === 0) {
              termCounts[term]!++;
              docCounts[base + position]!++;
            } else {
              this.#postings.push(term, base + position, postings[at + 1]!);
              this.#docTerms.push(base + position, term);
            }
          }
        }
      });
    }
    // Words only left-out documents held.
    termCounts.forEach((count, term) => {
      if (count > 0) return;
      const name = this.#termNames[term]!;
      this.#terms.delete(name);
      this.#termBytes -= TERM_OVERHEAD_BYTES + name.length * 2;
      this.#freeTerms.push(term);
    });
    if (documents > this.#titleLengths.length) this.#grow(documents);
    for (const { base, ids, titleLengths, bodyLengths } of parts) {
      ids.forEach((id, position) => {
        if (id === undefined) return;
        const number = base + position;
        this.#docIds[number] = id;
        this.#titleLengths[number] = titleLengths[position]!;
        this.#bodyLengths[number] = bodyLengths[position]!;
        this.#titleTotal += titleLengths[position]!;
        this.#bodyTotal += bodyLengths[position]!;
        this.#docBytes += DOC_OVERHEAD_BYTES;
        this.#size++;
      });
    }
  }

  delete(number: number): boolean {
    const id = this.#docIds[number];
    if (id === undefined) return false;
    const start = this.#docTerms.start(number);
    const count = this.#docTerms.count(number);
    for (let i = 0; i < count; i++) this.#remove(this.#docTerms.data[start + i]!, number);
    this.#docTerms.clear(number);
    this.#titleTotal -= this.#titleLengths[number]!;
    this.#bodyTotal -= this.#bodyLengths[number]!;
    this.#docBytes -= DOC_OVERHEAD_BYTES;
    this.#docIds[number] = undefined;
    this.#size--;
    return true;
  }

  /**
   * The `k` best-scoring records that share a word with `query` and that `accept` lets
   * through, best first. The query's words count once each, title or body alike.
   */
  search(
    query: string,
    k: number,
    accept: (id: string) => boolean = () => true,
    /** Overrides for this search only (the benchmark tunes with them). */
    parameters: Partial<Bm25Parameters> = {},
  ): Bm25Hit[] {
    const size = this.#size;
    if (size === 0 || k <= 0) return [];
    const touched: number[] = [];
    try {
      return this.#rank(query, k, accept, touched, { ...this.#parameters, ...parameters });
    } finally {
      for (const number of touched) this.#scores[number] = 0;
    }
  }

  #rank(
    query: string,
    k: number,
    accept: (id: string) => boolean,
    touched: number[],
    { k1, bTitle, bBody, titleWeight }: Bm25Parameters,
  ): Bm25Hit[] {
    const size = this.#size;
    const avgTitle = Math.max(this.#titleTotal / size, 1);
    const avgBody = Math.max(this.#bodyTotal / size, 1);
    const scores = this.#scores;
    const titleLengths = this.#titleLengths;
    const bodyLengths = this.#bodyLengths;
    const titleNorm = bTitle / avgTitle;
    const bodyNorm = bBody / avgBody;
    const postings = this.#postings;
    for (const term of queryTerms(query)) {
      const termId = this.#terms.get(term);
      if (termId === undefined) continue;
      const count = postings.count(termId);
      const start = postings.start(termId);
      const data = postings.data;
      // Lucene's idf: never negative, however common the word.
      const idf = Math.log(1 + (size - count + 0.5) / (count + 0.5));
      for (let i = start; i < start + 2 * count; i += 2) {
        const number = data[i]!;
        const packed = data[i + 1]!;
        const title = (packed >>> 16) / (1 - bTitle + titleNorm * titleLengths[number]!);
        const body = (packed & 0xffff) / (1 - bBody + bodyNorm * bodyLengths[number]!);
        const tf = titleWeight * title + body;
        if (scores[number] === 0) touched.push(number);
        scores[number]! += (idf * tf) / (k1 + tf);
      }
    }
    // The best k that `accept` lets through, in a min-heap: O(n log k), and `accept` is asked
    // only about documents that score high enough to enter it.
    // Ties go to the lower document number: the postings' order (hence `touched`'s) changes
    // with removals, which swap, and differs after a reopen, which restores them in order;
    // without this, equal scores came out in another order before and after a reopen.
    const worse = (a: number, b: number) =>
      scores[a]! < scores[b]! || (scores[a] === scores[b] && a > b);
    const heap: number[] = [];
    const less = (a: number, b: number) => worse(heap[a]!, heap[b]!);
    for (const number of touched) {
      if (heap.length === k && !worse(heap[0]!, number)) continue;
      if (!accept(this.#docIds[number]!)) continue;
      if (heap.length < k) {
        heap.push(number);
        siftUp(heap, heap.length - 1, less);
      } else {
        heap[0] = number;
        siftDown(heap, less);
      }
    }
    return heap
      .sort((a, b) => scores[b]! - scores[a]! || a - b)
      .map((number) => ({ id: this.#docIds[number]!, score: scores[number]! }));
  }

  /** Room for `count` documents in the typed arrays, doubling. */
  #grow(count: number): void {
    let length = this.#titleLengths.length;
    while (length < count) length *= 2;
    const titles = new Uint32Array(length);
    titles.set(this.#titleLengths);
    const bodies = new Uint32Array(length);
    bodies.set(this.#bodyLengths);
    this.#titleLengths = titles;
    this.#bodyLengths = bodies;
    this.#scores = new Float64Array(length);
  }

  #termId(term: string): number {
    let termId = this.#terms.get(term);
    if (termId === undefined) {
      termId = this.#freeTerms.pop() ?? this.#termNames.length;
      this.#terms.set(term, termId);
      this.#termNames[termId] = term;
      this.#termBytes += TERM_OVERHEAD_BYTES + term.length * 2;
    }
    return termId;
  }

  /** Takes the document's posting out of the term's list; a term left with none goes. */
  #remove(termId: number, number: number): void {
    const postings = this.#postings;
    const start = postings.start(termId);
    const count = postings.count(termId);
    for (let i = 0; i < count; i++) {
      if (postings.data[start + 2 * i] !== number) continue;
      postings.removeAt(termId, i);
      if (count === 1) {
        const term = this.#termNames[termId]!;
        this.#terms.delete(term);
        postings.clear(termId);
        this.#termBytes -= TERM_OVERHEAD_BYTES + term.length * 2;
        this.#freeTerms.push(termId);
      }
      return;
    }
  }
}

/**
 * The first line is the title (`issueMemoryText`: title, blank line, body); the rest the body.
 * Words as `forEachKeyword` reads them (CJK text as pairs of characters); the words files of
 * `segment-words.ts` hold these counts, so a change here changes their version.
 */
export function countFields(text: string): Fields {
  const cut = text.slice(0, MAX_TEXT);
  const newline = cut.indexOf("\n");
  const fields: Fields = { counts: new Map(), titleLength: 0, bodyLength: 0 };
  const { counts } = fields;
  // One count per field, 16 bits each: a word past MAX_TF in a field stops counting there.
  const count = (word: string, one: number, field: number): boolean => {
    if (word.length > MAX_WORD) return false;
    const seen = counts.get(word);
    if (seen === undefined) {
      if (counts.size >= MAX_TERMS) return false;
      counts.set(word, one);
    } else if (((seen >>> field) & MAX_TF) < MAX_TF) {
      counts.set(word, seen + one);
    }
    return true;
  };
  forEachKeyword(newline < 0 ? cut : cut.slice(0, newline), (word) => {
    if (count(word, 1 << 16, 16)) fields.titleLength++;
  });
  if (newline >= 0) {
    forEachKeyword(cut.slice(newline + 1), (word) => {
      if (count(word, 1, 0)) fields.bodyLength++;
    });
  }
  return fields;
}

/** The query's distinct words, at most `MAX_TERMS`. */
export function queryTerms(query: string): Set<string> {
  const terms = new Set<string>();
  forEachKeyword(query.slice(0, MAX_TEXT), (word) => {
    if (word.length <= MAX_WORD && terms.size < MAX_TERMS) terms.add(word);
  });
  return terms;
}

function siftUp(heap: number[], start: number, less: (a: number, b: number) => boolean): void {
  let i = start;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!less(i, parent)) break;
    [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
    i = parent;
  }
}

function siftDown(heap: number[], less: (a: number, b: number) => boolean): void {
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let smallest = i;
    if (left < heap.length && less(left, smallest)) smallest = left;
    if (right < heap.length && less(right, smallest)) smallest = right;
    if (smallest === i) return;
    [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
    i = smallest;
  }
}

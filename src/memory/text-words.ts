import { countWords, type WordCounts } from "./bm25-index.js";
import { fingerprintText } from "./near-duplicate.js";

/** What the keyword and near-duplicate indexes take from a record's text, worked out once. */
export interface TextWords extends WordCounts {
  fingerprints: readonly string[];
}

export function textWordsOf(text: string): TextWords {
  return { ...countWords(text), fingerprints: fingerprintText(text) };
}

/** A row of a words file: position, title length, body length, [term, packed]…, fingerprints. */
type Row = [number, number, number, number[], string[]];

/**
 * A segment's words, by position, as a snapshot keeps them next to its rows: the first search
 * after an open builds the keyword index from these instead of reading and splitting every
 * text (most of that search's time). JSON, each word once in a vocabulary the rows point into.
 */
export function encodeTextWords(rows: ReadonlyMap<number, TextWords>): Buffer {
  const vocabulary: string[] = [];
  const indexOf = new Map<string, number>();
  const encoded: Row[] = [];
  for (const [position, words] of rows) {
    const pairs: number[] = [];
    words.terms.forEach((term, i) => {
      let index = indexOf.get(term);
      if (index === undefined) {
        index = vocabulary.push(term) - 1;
        indexOf.set(term, index);
      }
      pairs.push(index, words.packed[i]!);
    });
    encoded.push([position, words.titleLength, words.bodyLength, pairs, [...words.fingerprints]]);
  }
  return Buffer.from(JSON.stringify({ vocabulary, rows: encoded }), "utf8");
}

/** The words of a words file by position; throws on anything not in its shape. */
export function decodeTextWords(content: Buffer): Map<number, TextWords> {
  const { vocabulary, rows } = JSON.parse(content.toString("utf8")) as {
    vocabulary: unknown;
    rows: unknown;
  };
  if (!Array.isArray(vocabulary) || !Array.isArray(rows)) throw new Error("not a words file");
  const words = new Map<number, TextWords>();
  for (const row of rows as unknown[]) {
    if (!Array.isArray(row) || row.length !== 5) throw new Error("a words row is malformed");
    const [position, titleLength, bodyLength, pairs, fingerprints] = row as Row;
    if (!Array.isArray(pairs) || pairs.length % 2 !== 0 || !Array.isArray(fingerprints))
      throw new Error("a words row is malformed");
    const terms: string[] = [];
    const packed: number[] = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const term = vocabulary[pairs[i]!] as unknown;
      if (typeof term !== "string") throw new Error("a words row names no word");
      terms.push(term);
      packed.push(pairs[i + 1]!);
    }
    words.set(position, { terms, packed, titleLength, bodyLength, fingerprints });
  }
  return words;
}

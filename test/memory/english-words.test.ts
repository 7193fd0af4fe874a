import { describe, expect, it } from "vitest";
import { forEachWord, STOP_WORDS } from "../../src/memory/english-words.js";
import { seededRandom } from "../helpers/seeded-random.js";

/** The regular-expression version this scan replaced: the local embedder's vectors depend on it. */
function reference(text: string): string[] {
  const words: string[] = [];
  const pattern = /[\p{L}\p{N}_']+/gu;
  const lower = text.toLowerCase();
  for (let match = pattern.exec(lower); match; match = pattern.exec(lower)) {
    const word = match[0].replace(/^'+/, "").replace(/'+$/, "");
    if (!word || STOP_WORDS.has(word)) continue;
    if (/\d/.test(word)) {
      words.push(word);
      continue;
    }
    const cut = word.length > 4 ? word.replace(/(?:ing|ed|es|s)$/, "") : word;
    const base = cut.length >= 3 ? cut : word;
    words.push(base.length >= 4 ? base.replace(/e$/, "") : base);
  }
  return words;
}

const words = (text: string) => {
  const out: string[] = [];
  forEachWord(text, (word) => out.push(word));
  return out;
};

const PIECES = [
  "Crashes",
  "crashed",
  "crashing",
  "saves",
  "buses",
  "seeds",
  "it's",
  "'quoted'",
  "''",
  "_x_",
  "v2.0",
  "3rd",
  "naïve",
  "Über",
  "日本語",
  "𝐀𝐁",
  "½",
  "²",
  "café",
  "e\u0301",
  "\ud800",
  "🙂",
  "CamelCase",
  "don't",
  "rings",
  "tests",
  "ed",
  "es",
  "s",
  "the",
  "When",
  " ",
  "\n",
  "-",
  "/",
  "x",
  "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  "Ǆ",
  "İstanbul",
  "ß",
  "Σίσυφος",
  "١٢٣",
  "wrote",
  "notes",
];

describe("forEachWord", () => {
  it("finds the words the regular expression it replaced found, stemmed alike", () => {
    const next = seededRandom(7);
    for (let n = 0; n < 2_000; n++) {
      const length = 1 + Math.floor(next() * 12);
      const text = Array.from(
        { length },
        () => PIECES[Math.floor(next() * PIECES.length)]! + (next() < 0.5 ? " " : ""),
      ).join("");
      expect(words(text)).toEqual(reference(text));
    }
  });
});

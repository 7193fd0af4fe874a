import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Bm25Index, queryTerms } from "../../src/memory/bm25-index.js";
import { forEachKeyword, forEachWord } from "../../src/memory/english-words.js";
import { countQueryWords } from "../../src/memory/hybrid-search.js";
import { decodeSegmentWords } from "../../src/memory/segment-words.js";
import { expectLinearTime } from "../helpers/hostile-input.js";
import { openWithOlderWordsFile } from "../helpers/test-memory.js";

const words = (text: string) => {
  const seen: string[] = [];
  forEachWord(text, (word) => seen.push(word));
  return seen;
};

describe("keyword words of scripts with combining marks", () => {
  it("keeps a Hindi word whole rather than splitting it at each vowel sign", () => {
    // त्रुटि ("error"): त ् र ु ट ि. The marks (\p{M}) had ended the word: त, र and ट.
    expect([...queryTerms("त्रुटि")]).toEqual(["त्रुटि"]);
    expect([...queryTerms("ऐप में त्रुटि")]).toEqual(["ऐप", "में", "त्रुटि"]);
  });

  it("does not match 'error' (त्रुटि) to an issue that only says 'night' (रात)", () => {
    const index = new Bm25Index();
    index.set(0, "issue-1", "रात में ऐप बंद\n\nरात को");
    index.set(1, "issue-2", "Dark mode\n\ncolours");
    index.set(2, "issue-3", "ऐप में त्रुटि\n\nसहेजते समय");
    expect(index.search("त्रुटि", 5).map((h) => h.id)).toEqual(["issue-3"]);
  });

  it("finds a word typed decomposed (NFD, as macOS pastes it) in a text composed, and back", () => {
    const index = new Bm25Index();
    index.set(0, "issue-1", "Öffnen einer Datei schlägt fehl".normalize("NFC"));
    index.set(1, "issue-2", "Dark mode colours are wrong");
    index.set(2, "issue-3", "Schließen: Fenster bleibt hängen".normalize("NFD"));
    expect(index.search("Öffnen".normalize("NFD"), 5).map((h) => h.id)).toEqual(["issue-1"]);
    expect(index.search("hängen".normalize("NFC"), 5).map((h) => h.id)).toEqual(["issue-3"]);
  });

  it("leaves the local embedder's words as they were, so that stored vectors stay valid", () => {
    expect(words("त्रुटि")).toEqual(["त", "र", "ट"]);
    expect(words("Öffnen".normalize("NFD"))).toEqual(["o", "ffnen"]);
  });
});

describe("a words file counted before combining marks were kept in their word", () => {
  it("is not read as current: it is recounted, said so, and written again", async () => {
    const SEGMENT_SIZE = 4;
    const texts = [
      "ऐप में त्रुटि\n\nसहेजते समय ऐप बंद हो जाता है",
      "Dark mode colours are wrong",
      "रात में ऐप बंद\n\nरात को",
      "Export to CSV fails",
      "Crash on save",
    ];
    // Version 2's file, as the Talos before this one wrote it: issue 1's words as it split them
    // (त, र, ट), under the hash of issue 1's text. Read as current, त्रुटि would not find it.
    const { file, old, current, store, logged } = await openWithOlderWordsFile({
      texts,
      segmentSize: SEGMENT_SIZE,
      version: 2,
      firstWords: "ऐप में त र ट\n\nसहेजते समय",
    });
    expect(decodeSegmentWords(old, SEGMENT_SIZE)).toBe("counted by words file version 2, not 3");
    // Above any vector score: only keyword hits of this short query are kept.
    const found = await store.search("त्रुटि", { k: 3, minScore: 0.99 });
    await store.close();
    expect(found.map((hit) => hit.record.id)).toEqual(["issue-1"]);
    expect(logged).toEqual(["memory words file not usable; recounting"]);
    expect(readFileSync(file)).toEqual(current);
  });
});

describe("hostile runs of combining marks", () => {
  it("are read in linear time, though NFC sorts a run of marks by insertion", async () => {
    // Marks of two combining classes (230 and 220), alternating: the order NFC must sort.
    const options = { fragments: ["\u0301\u0316", "a\u0301\u0316", "\u0301\u0316 "], runs: [] };
    await expectLinearTime((text) => {
      let count = 0;
      forEachKeyword(text, () => count++);
      return count;
    }, options);
    await expectLinearTime((text) => countQueryWords(text), options);
  }, 120_000);

  it("keep 30 marks of a run in the word, as Unicode's stream-safe format does", () => {
    const [word] = queryTerms(`x${"\u0301\u0316".repeat(100)}`);
    expect(word).toHaveLength(31);
  });
});

import { describe, expect, it } from "vitest";
import { Bm25Index } from "../../src/memory/bm25-index.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

/** The documents numbered in order, as the store numbers its records by slot. */
function indexOf(texts: Record<string, string>) {
  const index = new Bm25Index();
  Object.entries(texts).forEach(([id, text], number) => index.set(number, id, text));
  return index;
}

const TEXTS = {
  a: "Crash when saving a file on Windows\n\nThe editor crashes on save.",
  b: "Dark mode for the settings page\n\nPlease add a dark theme.",
  c: "Export to CSV\n\nExporting widgets as CSV files would help; saving is slow too.",
  d: "Slow startup\n\nThe window takes long to open, even without a CSV file.",
};

describe("the BM25 index", () => {
  it("ranks the records that share the query's rarer words first, stemmed", async () => {
    const index = indexOf(TEXTS);
    expect(index.search("crashed while saving", 4).map((h) => h.id)).toEqual(["a", "c"]);
    expect(index.search("dark themes", 4).map((h) => h.id)).toEqual(["b"]);
    expect(index.search("nothing shares this", 4)).toEqual([]);
    const hits = index.search("csv export", 4);
    expect(hits.map((h) => h.id)).toEqual(["c", "d"]);
    expect(hits[0]!.score).toBeGreaterThan(hits[1]!.score);
  });

  it("weighs a word in the title more than the same word in the body", async () => {
    const index = indexOf({
      title: "Tooltip flickers\n\nSome text about the app here.",
      body: "Some text about the app\n\nThe tooltip flickers here.",
    });
    expect(index.search("tooltip", 2).map((h) => h.id)).toEqual(["title", "body"]);
  });

  it("leaves out what accept refuses, and returns at most k", async () => {
    const index = indexOf(TEXTS);
    expect(index.search("csv", 1).map((h) => h.id)).toEqual(["c"]);
    expect(index.search("csv", 5, (id) => id !== "c").map((h) => h.id)).toEqual(["d"]);
  });

  it("scores every search afresh, even after a filter threw half-way", async () => {
    const index = indexOf(TEXTS);
    const before = index.search("csv export saving", 4);
    expect(() =>
      index.search("csv export saving", 4, () => {
        throw new Error("filter failed");
      }),
    ).toThrow("filter failed");
    expect(index.search("csv export saving", 4)).toEqual(before);
    // Many documents, so that the scores' array grows between searches: the same as a new index.
    const notes = Object.fromEntries(
      Array.from({ length: 200 }, (_, i) => [`n${i}`, `Note ${i}\n\nnothing in common ${i}`]),
    );
    index.search("csv export", 4);
    Object.entries(notes).forEach(([id, text], i) => index.set(4 + i, id, text));
    expect(index.search("csv export saving", 4)).toEqual(
      indexOf({ ...TEXTS, ...notes }).search("csv export saving", 4),
    );
  });

  it("replaces and deletes records, and its RAM estimate follows", async () => {
    const index = indexOf(TEXTS);
    const bytes = index.bytes;
    expect(bytes).toBeGreaterThan(0);
    // Document 2 is "c".
    index.set(2, "c", "Export to JSON\n\nPlease.");
    expect(index.has(2)).toBe(true);
    expect(index.search("csv", 5).map((h) => h.id)).toEqual(["d"]);
    expect(index.search("json", 5).map((h) => h.id)).toEqual(["c"]);
    expect(index.delete(2)).toBe(true);
    expect(index.delete(2)).toBe(false);
    expect(index.has(2)).toBe(false);
    expect(index.size).toBe(3);
    expect(index.search("json", 5)).toEqual([]);
    expect(index.bytes).toBeLessThan(bytes);
    // The number can be given to another document.
    index.set(2, "e", "Export to CSV again");
    expect(
      index
        .search("csv", 5)
        .map((h) => h.id)
        .sort(),
    ).toEqual(["d", "e"]);
  });

  it("indexes and searches hostile text in linear time", async () => {
    await expectLinearTime((text) => {
      const index = indexOf(TEXTS);
      index.set(4, "hostile", text);
      return index.search(text, 5);
    });
  }, 120_000);
});

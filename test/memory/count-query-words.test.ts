import { describe, expect, it } from "vitest";
import { queryTerms } from "../../src/memory/bm25-index.js";
import { countQueryWords } from "../../src/memory/hybrid-search.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";

// Ten words, the same ones, joined by spaces and by punctuation (a path-like or slug title).
const SPACED = "pages render wrong colours in dark mode of settings on every deploy";
const JOINED = "pages:render-wrong:colours-in-dark-mode-of-settings-on-every-deploy";
// "The program hangs when saving a file and the window closes itself every time I press the
// button": 14 words, no space between them.
const THAI = "โปรแกรมค้างเมื่อบันทึกไฟล์และหน้าต่างปิดเองทุกครั้งที่กดปุ่ม";

describe("countQueryWords, which decides whether keyword hits may stay below minScore", () => {
  it("counts words at the punctuation BM25 splits at, not only runs between spaces", () => {
    expect(queryTerms(JOINED).size).toBeGreaterThan(4);
    expect(countQueryWords(JOINED)).toBe(countQueryWords(SPACED));
    expect(countQueryWords("crash: on/save")).toBe(3);
    // Stop words and numbers count, as a reader counts them; apostrophes alone do not.
    expect(countQueryWords("how to fix it")).toBe(4);
    expect(countQueryWords("it's ' '' 2 times")).toBe(3);
  });

  it("counts a Thai, Lao, Khmer or Burmese run (no spaces) a word per four characters", () => {
    expect(countQueryWords(THAI)).toBeGreaterThan(10);
    expect(countQueryWords("ไฟล์")).toBe(1);
    expect(countQueryWords("ไฟล์ Rust")).toBe(2);
  });

  it("stops at the limit", () => {
    expect(countQueryWords(JOINED, 5)).toBe(5);
    expect(countQueryWords(THAI, 5)).toBe(5);
  });

  it("keeps keyword hits below minScore for neither the joined title nor the spaced one", async () => {
    const store = await openTestStore(makeDataDir());
    await store.addMany([
      issueMemory(
        1,
        "Docs site is down\n\nEvery page of the docs site answers 502 since this morning's deploy of the web servers.",
      ),
      issueMemory(4, "Dark mode colours are wrong in the settings page"),
    ]);
    const ids = async (query: string) =>
      (await store.search(query, { k: 3, minScore: 0.99 })).map((h) => h.record.id);
    const spaced = await ids(SPACED);
    // It had kept every record sharing a word, however low its cosine: one word, a short query.
    const joined = await ids(JOINED);
    await store.close();
    expect(spaced).toEqual([]);
    expect(joined).toEqual([]);
  });
});

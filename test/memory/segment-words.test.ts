import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { Bm25Index } from "../../src/memory/bm25-index.js";
import {
  decodeSegmentWords,
  encodeSegmentWords,
  hashText,
  readWordsFiles,
  SegmentWordsBuilder,
  wordsFile,
} from "../../src/memory/segment-words.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";

const SEGMENT_SIZE = 4;
const TEXTS = [
  "App crashes when saving a widget on Windows\n\nthread 'main' panicked at 'index out of bounds: the len is 3 but the index is 7', src/widget.rs:12:5",
  "Dark mode colours are wrong in the settings page",
  "Saving a widget fails with permission denied",
  "Add support for exporting widgets to CSV",
  "Crash on startup after updating to 2.0\n\nthread 'main' panicked at 'index out of bounds: the len is 9 but the index is 11', src/widget.rs:40:9",
  "Login token expires after one minute",
  "Upload of large files times out",
  "Plugin install fails behind a proxy",
  "Memory leak when the editor stays open overnight",
  "Export to PDF loses the page margins",
];
const QUERIES = ["saving a widget crashes", "export csv pdf", "token login", "proxy", "widget"];

function wordsOf(texts: string[], segmentSize: number) {
  const builder = new SegmentWordsBuilder(segmentSize);
  texts.forEach((text, position) => builder.add(position, text));
  return builder.finish();
}

async function seeded() {
  const directory = makeDataDir();
  const store = await openTestStore(directory, { segmentSize: SEGMENT_SIZE });
  await store.addMany(TEXTS.map((text, i) => issueMemory(i + 1, text)));
  await store.close();
  return directory;
}

async function reopen(directory: string) {
  const logged: string[] = [];
  const log = pino(
    { level: "warn" },
    { write: (line: string) => logged.push(JSON.parse(line).msg as string) },
  );
  const store = await openTestStore(directory, { segmentSize: SEGMENT_SIZE, log });
  return { store, logged };
}

const summary = (hits: Array<{ record: { id: string }; score: number; keyword?: boolean }>) =>
  hits.map((hit) => [hit.record.id, hit.score.toFixed(6), hit.keyword]);

async function searchAll(directory: string) {
  const { store, logged } = await reopen(directory);
  const results = [];
  for (const query of QUERIES) results.push(summary(await store.search(query, { k: 4 })));
  const duplicates = await store.search(
    "thread 'main' panicked at 'index out of bounds: the len is 1 but the index is 2', src/widget.rs:1:1",
    { k: 2, minScore: 0.99 },
  );
  await store.close();
  return { results, duplicates: duplicates.map((hit) => hit.record.id), logged };
}

describe("a segment's words file", () => {
  it("decodes what it encodes, and refuses damage, another version or another segment size", () => {
    const words = wordsOf(TEXTS.slice(0, 3), SEGMENT_SIZE);
    const encoded = encodeSegmentWords(words);
    const decoded = decodeSegmentWords(encoded, SEGMENT_SIZE);
    expect(decoded).toEqual(words);
    expect(words.hashes).toEqual([...TEXTS.slice(0, 3).map(hashText), null]);
    expect(words.fingerprints.map(([position]) => position)).toEqual([0]);

    for (const at of [0, 5, 9, 20, encoded.length - 1]) {
      const damaged = Buffer.from(encoded);
      damaged[at] = damaged[at]! ^ 0xff;
      expect(typeof decodeSegmentWords(damaged, SEGMENT_SIZE)).toBe("string");
    }
    expect(decodeSegmentWords(encoded.subarray(0, encoded.length - 4), SEGMENT_SIZE)).toBe(
      "does not match its checksum",
    );
    expect(decodeSegmentWords(encoded, 8)).toBe("counted for segments of 4");
    expect(decodeSegmentWords(Buffer.alloc(3), SEGMENT_SIZE)).toBe(
      "not a words file of this version",
    );
  });

  it("reads files into one buffer, each four-byte aligned, and a missing one as undefined", async () => {
    const directory = makeDataDir();
    const files = [1, 2, 3].map((s) => join(directory, wordsFile(s)));
    // Odd lengths, so that the next file's place must be rounded up.
    writeFileSync(files[0]!, Buffer.from("abcde"));
    writeFileSync(files[2]!, encodeSegmentWords(wordsOf(TEXTS.slice(0, 2), SEGMENT_SIZE)));
    const [first, missing, third] = await readWordsFiles(files);
    expect(first?.toString()).toBe("abcde");
    expect(missing).toBeUndefined();
    expect(third!.byteOffset % 4).toBe(0);
    expect(third!.buffer).toBe(first!.buffer);
    expect(decodeSegmentWords(third!, SEGMENT_SIZE)).toEqual(
      wordsOf(TEXTS.slice(0, 2), SEGMENT_SIZE),
    );
  });

  it("restores a keyword index that ranks and scores as one built from the texts, leaving out what it is told", () => {
    const built = new Bm25Index();
    const kept = TEXTS.map((_, i) => i !== 2 && i !== 5);
    TEXTS.forEach((text, i) => {
      if (kept[i]) built.set(i, `r${i}`, text);
    });
    const restored = new Bm25Index();
    const parts = [0, 1, 2].map((segment) => {
      const texts = TEXTS.slice(segment * SEGMENT_SIZE, (segment + 1) * SEGMENT_SIZE);
      const base = segment * SEGMENT_SIZE;
      return {
        ...wordsOf(texts, SEGMENT_SIZE),
        base,
        ids: texts.map((_, p) => (kept[base + p] ? `r${base + p}` : undefined)),
      };
    });
    restored.restore(parts);
    expect(restored.size).toBe(8);
    expect(restored.has(2)).toBe(false);
    for (const query of [...QUERIES, "permission denied", "minute"])
      expect(restored.search(query, 10)).toEqual(built.search(query, 10));
    // Words only the left-out documents held are not in the vocabulary, nor their postings:
    // the index takes what one restored from files without those documents' words takes.
    const withoutLeftOut = new Bm25Index();
    withoutLeftOut.restore(
      parts.map((part, segment) => {
        const base = segment * SEGMENT_SIZE;
        const texts = TEXTS.slice(base, base + SEGMENT_SIZE).map((text, p) =>
          kept[base + p] ? text : "",
        );
        return { ...wordsOf(texts, SEGMENT_SIZE), base, ids: part.ids };
      }),
    );
    expect(restored.bytes).toBe(withoutLeftOut.bytes);
    expect(() => restored.restore(parts)).toThrow("restore fills an empty index");

    // Restored documents are updated and removed as any other.
    for (const index of [built, restored]) {
      index.delete(0);
      index.set(6, "r6", "Upload of huge widgets times out");
    }
    for (const query of [...QUERIES, "huge widgets", "upload"])
      expect(restored.search(query, 10)).toEqual(built.search(query, 10));
  });

  it("is written for each full segment, and a reopened memory searches as one that counts every text", async () => {
    const directory = await seeded();
    // Two full segments of four; the third holds two records and is counted at each build.
    expect([1, 2, 3].map((s) => existsSync(join(directory, wordsFile(s))))).toEqual([
      true,
      true,
      false,
    ]);
    const fromFiles = await searchAll(directory);
    expect(fromFiles.logged).toEqual([]);
    // Both quote the panic once: they come in the fused order, the same from texts below.
    expect([...fromFiles.duplicates].sort()).toEqual(["issue-1", "issue-5"]);
    expect(fromFiles.results.flat().length).toBeGreaterThan(QUERIES.length);

    for (const s of [1, 2]) rmSync(join(directory, wordsFile(s)));
    const fromTexts = await searchAll(directory);
    expect(fromTexts).toEqual(fromFiles);
    // The build from the texts wrote them again.
    expect(existsSync(join(directory, wordsFile(1)))).toBe(true);
  });

  it("is trusted only for records whose text it was counted from", async () => {
    const directory = await seeded();
    const file = join(directory, wordsFile(1));
    // A forged file that gives issue 1 the word "zebra": read only while it names issue 1's text.
    const forge = (hash: string) => {
      const builder = new SegmentWordsBuilder(SEGMENT_SIZE);
      builder.add(0, "Zebra\n\nzebra", hash);
      TEXTS.slice(1, 4).forEach((text, i) => builder.add(i + 1, text));
      writeFileSync(file, encodeSegmentWords(builder.finish()));
    };
    const zebra = async () => {
      const { store, logged } = await reopen(directory);
      // Above any vector score: only a keyword hit of this one-word query is kept.
      const hits = await store.search("zebra", { k: 3, minScore: 0.99 });
      await store.close();
      return { ids: hits.map((hit) => hit.record.id), logged };
    };
    forge(hashText(TEXTS[0]!));
    expect(await zebra()).toEqual({ ids: ["issue-1"], logged: [] });

    // The record's text is another now: its words are counted from it, and the file rewritten.
    forge(hashText("an older text"));
    expect(await zebra()).toEqual({ ids: [], logged: [] });
    expect(decodeSegmentWords(readFileSync(file), SEGMENT_SIZE)).toEqual(
      wordsOf(TEXTS.slice(0, 4), SEGMENT_SIZE),
    );
  });

  it("recounts a damaged file from the texts, says so, and writes it again", async () => {
    const directory = await seeded();
    const file = join(directory, wordsFile(2));
    const before = await searchAll(directory);
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff;
    writeFileSync(file, bytes);
    const after = await searchAll(directory);
    expect(after.logged).toEqual(["memory words file not usable; recounting"]);
    expect(after.results).toEqual(before.results);
    expect(decodeSegmentWords(readFileSync(file), SEGMENT_SIZE)).toEqual(
      wordsOf(TEXTS.slice(4, 8), SEGMENT_SIZE),
    );
  });

  it("keeps in step with puts and deletes made while it loads", async () => {
    const directory = await seeded();
    const { store } = await reopen(directory);
    // The first search loads the words files; the writes go on meanwhile.
    const searching = store.search("widget", { k: 3 });
    const writes = Promise.all([
      store.add(issueMemory(3, "Zebra stripes\n\nThe zebra widget renders stripes")),
      store.remove("issue-6"),
      store.add(issueMemory(11, "Quagga crashes\n\nThe quagga importer crashes")),
    ]);
    await Promise.all([searching, writes]);
    await store.flush();
    const keywordHits = async (query: string) =>
      (await store.search(query, { k: 5, minScore: 0.99 })).map((hit) => hit.record.id);
    expect(await keywordHits("zebra")).toEqual(["issue-3"]);
    expect(await keywordHits("quagga")).toEqual(["issue-11"]);
    expect(await keywordHits("login token")).toEqual([]);
    expect(await keywordHits("permission denied")).toEqual([]);
    await store.close();
  });
});

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { decodeSegmentWords } from "../../src/memory/segment-words.js";
import { countSegmentWords, countWordsHere, WordsWorker } from "../../src/memory/words-counter.js";
import { makeDataDir } from "../helpers/test-app.js";

const SEGMENT_SIZE = 300;
// More than one slice of the caller-thread counter, with holes (deleted records).
const TEXTS = Array.from(
  { length: 250 },
  (_, i) =>
    [
      i + Math.floor(i / 5),
      `Issue ${i}: the editor crashes when saving file ${i % 17}\n\nthread 'main' panicked at 'index out of bounds in widget ${i % 3}', src/lib.rs:${i}:1`,
    ] as const,
);

const workers: WordsWorker[] = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.close();
});

describe("the words counter", () => {
  it("counts the same on a worker thread as on the caller's", async () => {
    const worker = new WordsWorker();
    workers.push(worker);
    const expected = countSegmentWords(SEGMENT_SIZE, TEXTS);
    const [here, there, again] = await Promise.all([
      countWordsHere.count(SEGMENT_SIZE, TEXTS),
      worker.count(SEGMENT_SIZE, TEXTS),
      worker.count(SEGMENT_SIZE, TEXTS.slice(0, 3)),
    ]);
    expect(Buffer.from(here)).toEqual(Buffer.from(expected));
    expect(Buffer.from(there)).toEqual(Buffer.from(expected));
    expect(worker.broken).toBeUndefined();
    const words = decodeSegmentWords(Buffer.from(again), SEGMENT_SIZE);
    if (typeof words === "string") throw new Error(words);
    expect(words.hashes.filter((hash) => hash !== null)).toHaveLength(3);
    expect(words.fingerprints.map(([position]) => position)).toEqual([0, 1, 2]);
  });

  it("counts on the caller's thread when the worker fails, and says why", async () => {
    const script = join(makeDataDir(), "broken-worker.mjs");
    writeFileSync(script, 'throw new Error("no words here");\n');
    const worker = new WordsWorker(pathToFileURL(script));
    workers.push(worker);
    const bytes = await worker.count(SEGMENT_SIZE, TEXTS);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(countSegmentWords(SEGMENT_SIZE, TEXTS)));
    expect(worker.broken).toContain("no words here");
    // Later counts do not try the worker again.
    expect(await worker.count(SEGMENT_SIZE, TEXTS.slice(0, 1))).toEqual(
      countSegmentWords(SEGMENT_SIZE, TEXTS.slice(0, 1)),
    );
  });
});

import { describe, expect, it } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import { unitVector } from "../../src/memory/hybrid-search.js";
import { QuantizedMatrix } from "../../src/memory/quantized-matrix.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, keywordCrowdedMemories, openTestStore } from "../helpers/test-memory.js";

/** An embedder that gives each listed text its vector, and any other text `fallback`. */
function tableEmbedder(
  table: Map<string, number[]>,
  dimension: number,
  fallback: number[],
): Embedder {
  return {
    model: "table",
    dimension,
    relatedScore: 0.5,
    embed: async (texts) => texts.map((text) => Float32Array.from(table.get(text) ?? fallback)),
  };
}

describe("search filters", () => {
  it("returns k hits that reach minScore when many keyword-only hits below it outrank them in the fusion", async () => {
    const { query, inputs, embedder } = keywordCrowdedMemories();
    const store = await openTestStore(makeDataDir(), { embedder });
    await store.addMany(inputs);
    const hits = await store.search(query, { k: 30, minScore: 0.5 });
    expect(hits.every((hit) => hit.score >= 0.5)).toBe(true);
    expect(hits).toHaveLength(30);
    await store.close();
  });

  it("checks minScore against a hit's exact cosine, not its int8 approximation", async () => {
    const dimension = 16;
    const query = "saving a widget crashes the whole application window";
    const queryVector = [1, ...new Array<number>(dimension - 1).fill(0)];
    // A vector whose int8 codes round its first component up or down noticeably.
    const xVector = Array.from({ length: dimension }, (_, i) => (i === 0 ? 0.3 : 0.2 + 0.013 * i));
    const matrix = new QuantizedMatrix(dimension);
    matrix.set(0, "x", xVector);
    const unit = unitVector(queryVector);
    const approximate = matrix.candidates(unit, 1, () => true)[0]!.score;
    const exact = unitVector(xVector)[0]!;
    expect(approximate).not.toBe(exact);
    const minScore = (approximate + exact) / 2;
    const table = new Map<string, number[]>([[query, queryVector]]);
    const inputs = [];
    // Four records closer by meaning, with none of the query's words: the rescored head.
    for (let i = 1; i <= 4; i++) {
      const text = `unrelated words ${i}`;
      table.set(text, [1, 0.1 * i, ...new Array<number>(dimension - 2).fill(0)]);
      inputs.push(issueMemory(i, text));
    }
    const xText = "saving widget crashes whole application window";
    table.set(xText, xVector);
    inputs.push(issueMemory(9, xText));
    const store = await openTestStore(makeDataDir(), {
      embedder: tableEmbedder(table, dimension, [
        0,
        1,
        ...new Array<number>(dimension - 2).fill(0),
      ]),
    });
    await store.addMany(inputs);
    const hits = await store.search(query, { k: 1, minScore });
    // The keyword match ranks first in the fusion: it is the hit exactly when its cosine
    // reaches minScore, whichever side of it the approximation fell.
    expect(hits.every((hit) => hit.score >= minScore)).toBe(true);
    expect(hits.map((hit) => hit.record.id)).toEqual([exact >= minScore ? "issue-9" : "issue-1"]);
    await store.close();
  });

  it("orders tied hits the same before and after a reopen, whatever was removed in between", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory);
    const text = "CSV export drops the header row";
    await store.addMany([1, 2, 3, 4].map((n) => issueMemory(n, text)));
    const search = async (s: typeof store) =>
      (await s.search("CSV export header", { k: 4 })).map((hit) => hit.record.id);
    await search(store);
    await store.remove("issue-2");
    const before = await search(store);
    await store.close();
    const reopened = await openTestStore(directory);
    expect(await search(reopened)).toEqual(before);
    await reopened.close();
  });
});

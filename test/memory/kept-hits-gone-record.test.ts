import { describe, expect, it } from "vitest";
import { keptHits, type HybridHit } from "../../src/memory/hybrid-search.js";
import { issueMemory } from "../helpers/test-memory.js";

const hit = (id: string, score: number): HybridHit => ({ id, score, keyword: false, shared: 0 });

describe("keptHits when a kept hit's record is gone by the time it is read", () => {
  it("names the next hit that reaches minScore in its place, in the ranking's order", async () => {
    // k = 3: the first batch (3 hits) keeps only "c"; the second (6 hits) keeps all six, of
    // which "d" was removed (forgotten, say) between the ranking and the read of its record.
    const ranked = [
      hit("a", 0.1),
      hit("b", 0.1),
      hit("c", 0.9),
      ...["d", "e", "f", "g", "h", "i"].map((id) => hit(id, 0.9)),
    ];
    const found = await keptHits(
      ranked,
      "a long query of more than four words",
      { k: 3, minScore: 0.5 },
      async (hits) => new Map(hits.map((h) => [h.id, h.score])),
      async (id) => (id === "d" ? undefined : issueMemory(id.charCodeAt(0), id)),
    );
    // "f" had been skipped (cut from its batch before "d" was found gone): two hits came back,
    // or, with a third batch, one ranked below it took its place.
    expect(found.map((h) => h.record.text)).toEqual(["c", "e", "f"]);
  });
});

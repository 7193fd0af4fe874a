import { describe, expect, it, onTestFinished } from "vitest";
import { makeDataDir } from "../helpers/test-app.js";
import { holdingEmbedder, issueMemory, openTestStore } from "../helpers/test-memory.js";

const T1 = "App crashes when saving a widget on Windows";
const T2 = "Dark mode colours are wrong in the settings page";
const B = "Add support for exporting widgets to CSV";

describe("a record's vector is its own text's: a re-added record whose text did not change", () => {
  it("keeps the vector of its own text when the record changes while its batch is embedded", async () => {
    const { embedder, holding, release } = holdingEmbedder(B);
    const store = await openTestStore(makeDataDir(), { embedder });
    onTestFinished(() => store.close().catch(() => undefined));
    await store.add(issueMemory(1, T1));
    await store.flush();

    // A backfill page: issue 1 unchanged (T1: no embedding, its stored vector is reused), and a
    // new issue 2 whose embedding takes a while.
    const page = store.addMany([issueMemory(1, T1), issueMemory(2, B)]);
    await holding;
    // Meanwhile issue 1 is edited to T2 (an edit delivered by webhook).
    await store.add(issueMemory(1, T2));
    release();
    await page;

    // The page's put won: issue 1's text is T1 again...
    expect((await store.get("issue-1"))?.text).toBe(T1);
    // ...so its vector must be T1's: a search for T1 itself scores ~1.
    const hits = await store.search(T1, { k: 5 });
    const hit = hits.find((h) => h.record.id === "issue-1");
    expect(hit?.score).toBeGreaterThan(0.99);
  });
});

const OLD = "App crashes when saving a widget on Windows";
const NEW = "Dark mode colours are wrong in the settings page";

describe("one batch naming a source twice", () => {
  it("gives the version that stays the vector of its own text", async () => {
    const store = await openTestStore(makeDataDir());
    onTestFinished(() => store.close().catch(() => undefined));
    // The newer version first, an older one after it (a page that read the issue twice).
    await store.addMany([
      issueMemory(1, NEW, { metadata: { updatedAt: "2026-11-02T00:00:00Z" } }),
      issueMemory(1, OLD, { metadata: { updatedAt: "2026-11-01T00:00:00Z" } }),
    ]);
    expect((await store.get("issue-1"))?.text).toBe(NEW);
    const hit = (await store.search(NEW, { k: 5 })).find((h) => h.record.id === "issue-1");
    expect(hit?.score).toBeGreaterThan(0.99);
  });
});

import { describe, expect, it } from "vitest";
import type { IssueInfo } from "../../src/github/create-repo-client.js";
import { findSimilarIssues } from "../../src/memory/find-similar-issues.js";
import { keptHits, type HybridHit } from "../../src/memory/hybrid-search.js";
import { parseRepoConfig } from "../../src/parse-repo-config.js";
import { makeDataDir } from "../helpers/test-app.js";
import { ISSUE_TEXTS, issueMemory, openTestStore } from "../helpers/test-memory.js";

const newIssue = (title: string, body = "", number = 10): IssueInfo => ({
  number,
  title,
  body,
  state: "open",
  author: "bob",
  labels: [],
  isPullRequest: false,
  url: `https://github.com/acme/widgets/issues/${number}`,
  createdAt: "2026-11-02T00:00:00.000Z",
});

/** A memory whose issue 1 shares the word "docs" with "Typo in docs", at a cosine near 0.26. */
async function storeWithDocsOutage() {
  const store = await openTestStore(makeDataDir());
  await store.addMany([
    issueMemory(
      1,
      "Docs site is down\n\nEvery page of the docs site answers 502 since this morning's deploy of the web servers.",
    ),
    issueMemory(4, "Dark mode colours are wrong in the settings page"),
  ]);
  return store;
}

describe("similar issues of a short issue", () => {
  it("names no issue below similar.threshold, even when it shares a keyword with the issue", async () => {
    const store = await storeWithDocsOutage();
    // Not a near-exact duplicate (no error line, panic or trace), not identical text.
    const strict = await findSimilarIssues(store, newIssue("Typo in docs"), {
      max: 3,
      threshold: 1,
    });
    const lenient = await findSimilarIssues(store, newIssue("Typo in docs"), {
      max: 3,
      threshold: 0.1,
    });
    // A plain search of the same words (as `ask` recalls notes) still keeps its keyword hit.
    const recalled = await store.search("Typo in docs", { k: 3, minScore: 1 });
    await store.close();
    expect(strict).toEqual([]);
    // Reached, the threshold names it as before.
    expect(lenient.map((hit) => hit.record.id)).toContain("issue-1");
    expect(recalled.map((hit) => hit.record.id)).toEqual(["issue-1"]);
  });
});

describe("keptHits with shortQueryKeywords", () => {
  const keyword: HybridHit = { id: "keyword", score: 0.2, keyword: true, shared: 0 };
  const nearDuplicate: HybridHit = { id: "near", score: 0.1, keyword: true, shared: 1 };
  const kept = (shortQueryKeywords?: boolean) =>
    keptHits(
      [nearDuplicate, keyword],
      "Typo in docs",
      { k: 5, minScore: 0.9, ...(shortQueryKeywords === undefined ? {} : { shortQueryKeywords }) },
      async (hits) => new Map(hits.map((hit) => [hit.id, hit.score])),
      async (id) => issueMemory(id === "near" ? 1 : 2, id),
    ).then((hits) => hits.map((hit) => hit.record.text));

  it("keeps a short query's keyword hit below minScore by default, and not when false", async () => {
    expect(await kept()).toEqual(["near", "keyword"]);
    // Both stores (vectra and PostgreSQL) keep what keptHits keeps: a near-exact duplicate stays.
    expect(await kept(false)).toEqual(["near"]);
  });
});

describe("similar.threshold's fallback, 1 (README: only identical text)", () => {
  it("an invalid threshold falls back to 1", () => {
    const { config, errors } = parseRepoConfig({ similar: { enabled: true, threshold: 7 } });
    expect(errors.length).toBeGreaterThan(0);
    expect(config.similar.threshold).toBe(1);
  });

  it("still names a remembered issue whose text is identical", async () => {
    const store = await openTestStore(makeDataDir());
    await store.addMany(ISSUE_TEXTS.map((text, i) => issueMemory(i + 1, text)));
    const missed: string[] = [];
    for (const [i, text] of ISSUE_TEXTS.entries()) {
      const hits = await findSimilarIssues(store, newIssue(text, "", 100 + i), {
        max: 3,
        threshold: 1,
      });
      if (!hits.some((hit) => hit.record.id === `issue-${i + 1}`)) missed.push(text);
    }
    await store.close();
    // Identical unit vectors have a float32 dot product of 0.99999994 for some texts.
    expect(missed).toEqual([]);
  });

  it("keptHits reaches minScore within float32 rounding, in both stores", async () => {
    // The PostgreSQL store filters through keptHits too, with its own exact cosines.
    const hits: HybridHit[] = [
      { id: "identical", score: 0.99999994, keyword: false, shared: 0 },
      { id: "close", score: 0.9999, keyword: false, shared: 0 },
    ];
    const kept = await keptHits(
      hits,
      "Memory leak when the editor stays open overnight",
      { k: 5, minScore: 1, shortQueryKeywords: false },
      async (batch) => new Map(batch.map((hit) => [hit.id, hit.score])),
      async (id) => issueMemory(id === "identical" ? 1 : 2, id),
    );
    expect(kept.map((hit) => hit.record.text)).toEqual(["identical"]);
  });
});

import { describe, expect, it } from "vitest";
import { findSimilarIssues } from "../../src/memory/find-similar-issues.js";
import { toIssueMemory } from "../../src/memory/memory-inputs.js";
import { MAX_SHARED } from "../../src/memory/near-duplicate.js";
import type { IssueInfo } from "../../src/github/create-repo-client.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";

const PANIC =
  "thread 'rustc' panicked at 'assertion failed: !ty.has_escaping_regions()', src/librustc/middle/traits.rs:123:5";
const TOPICS = [
  "widgets",
  "gadgets",
  "sprockets",
  "levers",
  "pulleys",
  "gears",
  "springs",
  "bolts",
  "nuts",
];

const issue = (number: number): IssueInfo => ({
  number,
  title: `Compiler panic while building ${TOPICS[number % TOPICS.length]}`,
  body: `Steps: build the ${TOPICS[number % TOPICS.length]} crate.\n\n${PANIC}`,
  state: "open",
  author: "alice",
  labels: [],
  isPullRequest: false,
  url: `https://github.com/acme/widgets/issues/${number}`,
  createdAt: "2026-11-01T10:00:00.000Z",
});

describe("near-exact duplicates in a search", () => {
  it("/talos similar on a remembered issue names the near-duplicates the new-issue search named", async () => {
    const store = await openTestStore(makeDataDir());
    // MAX_SHARED older issues quote the same panic.
    await store.addMany(
      Array.from({ length: MAX_SHARED }, (_, i) => toIssueMemory("acme/widgets", issue(i + 1))),
    );
    const newIssue = issue(100);
    // Threshold 1: only near-exact duplicates (shown below it) can come back.
    const settings = { max: 3, threshold: 1 };
    const atOpening = await findSimilarIssues(store, newIssue, settings);
    expect(atOpening).toHaveLength(3);
    // The new issue is remembered after the search (on-new-issue.ts), then /talos similar runs.
    await store.add(toIssueMemory("acme/widgets", newIssue));
    const onDemand = await findSimilarIssues(store, newIssue, settings);
    await store.close();
    expect(onDemand.map((h) => h.record.id)).toEqual(atOpening.map((h) => h.record.id));
  });

  it("names the same near-exact duplicate before and after a reopen (ties do not follow edit history)", async () => {
    const directory = makeDataDir();
    const store = await openTestStore(directory);
    await store.addMany([
      issueMemory(1, `Compiler panics on traits\n\n${PANIC}`),
      issueMemory(2, `ICE in trait selection\n\n${PANIC}`),
      issueMemory(3, "Unrelated\n\nDark mode colours are wrong."),
    ]);
    // The keyword and near-duplicate indexes are built by the first search.
    await store.search("warm up", { k: 1 });
    // An edit that keeps the panic.
    await store.add(issueMemory(1, `Compiler panics on traits (edited)\n\n${PANIC}`));
    const query = `Another panic\n\n${PANIC}`;
    const before = (await store.search(query, { k: 1, minScore: 0.99 })).map((h) => h.record.id);
    await store.close();
    const reopened = await openTestStore(directory);
    const after = (await reopened.search(query, { k: 1, minScore: 0.99 })).map((h) => h.record.id);
    await reopened.close();
    expect(before).toHaveLength(1);
    expect(after).toEqual(before);
  });
});

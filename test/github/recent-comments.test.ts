import { ProbotOctokit } from "probot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  COMMENT_OVERHEAD_CHARS,
  createRepoClient,
  getLastPage,
} from "../../src/github/create-repo-client.js";
import { loadThread } from "../../src/agent/thread.js";
import { visibleLength } from "../../src/agent/untrusted-text.js";
import { makeIssue } from "../helpers/fake-repo-client.js";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";

const REPO = "acme/widgets";

/** Comment `i` (from 1) of a thread: its number is in its body, which is `size` long. */
const bodyOf = (i: number, size = 200) => `comment ${i} `.padEnd(size, ".");

describe("reading a long thread newest first", () => {
  let github: GitHubStandIn;
  const client = () =>
    createRepoClient(
      new ProbotOctokit({
        baseUrl: github.url,
        retry: { enabled: false },
        throttle: { enabled: false },
      }),
      { owner: "acme", repo: "widgets" },
    );
  const commentReads = (number: number) =>
    github.requests
      .filter((r) => r.method === "GET" && r.path === `/repos/${REPO}/issues/${number}/comments`)
      .map((r) => r.query);

  beforeAll(async () => {
    github = await startGitHubStandIn();
    for (let i = 1; i <= 1_000; i++) github.addComment(REPO, 1, { body: bodyOf(i), login: "u" });
    for (let i = 1; i <= 30; i++) github.addComment(REPO, 2, { body: bodyOf(i), login: "u" });
    for (let i = 1; i <= 150; i++) github.addComment(REPO, 3, { body: bodyOf(i), login: "u" });
    github.addComment(REPO, 4, { body: bodyOf(1), login: "u" });
    github.addComment(REPO, 4, { body: bodyOf(2, 50_000), login: "u" });
    github.addComment(REPO, 6, { body: bodyOf(1), login: "maintainer" });
    for (let i = 0; i < 3; i++)
      github.addComment(REPO, 6, { body: `<!-- ${"x".repeat(20_000)} -->`, login: "anyone" });
  });

  afterAll(() => github?.close());

  it("reads the first page and the last ones of a 1,000-comment thread, and keeps the newest", async () => {
    const repo = client();
    const maxChars = 48_000;

    const result = await repo.listRecentComments(1, { maxChars });

    // 48,000 characters hold 160 comments of 300: pages 10 and 9, after page 1 for its Link.
    expect(commentReads(1)).toEqual([
      "?per_page=100",
      "?per_page=100&page=10",
      "?per_page=100&page=9",
    ]);
    expect(result.total).toBe(1_000);
    expect(result.comments).toHaveLength(160);
    expect(result.omitted).toBe(840);
    expect(result.comments.at(-1)?.body).toBe(bodyOf(1_000));
    expect(result.comments[0]?.body).toBe(bodyOf(841));
    const ids = result.comments.map((c) => c.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const chars = result.comments.reduce((n, c) => n + c.body.length + COMMENT_OVERHEAD_CHARS, 0);
    expect(chars).toBeLessThanOrEqual(maxChars);
    expect([...repo.retrieved]).toEqual([1]);
  });

  it("reads however many pages the budget needs, and no more than maxComments", async () => {
    const before = commentReads(1).length;
    const result = await client().listRecentComments(1, { maxChars: 1_000_000, maxComments: 20 });
    expect(commentReads(1).slice(before)).toEqual(["?per_page=100", "?per_page=100&page=10"]);
    expect(result.comments.map((c) => c.body)).toEqual(
      Array.from({ length: 20 }, (_, i) => bodyOf(981 + i)),
    );
    expect(result).toMatchObject({ total: 1_000, omitted: 980 });
  });

  it("reads a one-page thread once and keeps all of it", async () => {
    const result = await client().listRecentComments(2, { maxChars: 48_000 });
    expect(commentReads(2)).toEqual(["?per_page=100"]);
    expect(result.comments.map((c) => c.body)).toEqual(
      Array.from({ length: 30 }, (_, i) => bodyOf(i + 1)),
    );
    expect(result).toMatchObject({ total: 30, omitted: 0 });
  });

  it("walks back into the first page it already holds, without reading it again", async () => {
    const result = await client().listRecentComments(3, { maxChars: 1_000_000 });
    expect(commentReads(3)).toEqual(["?per_page=100", "?per_page=100&page=2"]);
    expect(result.comments.map((c) => c.body)).toEqual(
      Array.from({ length: 150 }, (_, i) => bodyOf(i + 1)),
    );
    expect(result).toMatchObject({ total: 150, omitted: 0 });
  });

  it("keeps the newest comment even when it alone is over the budget", async () => {
    const result = await client().listRecentComments(4, { maxChars: 10_000 });
    expect(result.comments.map((c) => c.body.length)).toEqual([50_000]);
    expect(result).toMatchObject({ total: 2, omitted: 1 });
  });

  it("weighs comments as the caller says: hidden ones, weighed as a reader sees them, take no room", async () => {
    // By their length, three comments hidden in HTML comments pushed the visible one out.
    const raw = await client().listRecentComments(6, { maxChars: 10_000 });
    expect(raw).toMatchObject({ total: 4, omitted: 3 });
    const seen = await client().listRecentComments(6, {
      maxChars: 10_000,
      weigh: visibleLength,
    });
    expect(seen).toMatchObject({ total: 4, omitted: 0 });
    expect(seen.comments[0]).toMatchObject({ author: "maintainer", body: bodyOf(1) });
    // The thread a prompt is made of weighs them so.
    const thread = await loadThread(client(), 6, { issue: makeIssue(6) }, 2_500);
    expect(thread.comments.map((c) => c.author)).toEqual([
      "maintainer",
      "anyone",
      "anyone",
      "anyone",
    ]);
  });

  it("says when a thread has no comments", async () => {
    const result = await client().listRecentComments(5, { maxChars: 10_000 });
    expect(result).toEqual({ comments: [], total: 0, omitted: 0 });
  });
});

describe("getLastPage", () => {
  it.each([
    [undefined, 1],
    ["", 1],
    [
      '<https://api.github.com/repositories/1/issues/1/comments?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/issues/1/comments?per_page=100&page=10>; rel="last"',
      10,
    ],
    [
      '<https://api.github.com/x?page=3>; rel="prev", <https://api.github.com/x?page=1>; rel="first"',
      1,
    ],
    ['<https://api.github.com/x?page=zero>; rel="last"', 1],
  ])("%j → %d", (link, page) => {
    expect(getLastPage(link)).toBe(page);
  });
});

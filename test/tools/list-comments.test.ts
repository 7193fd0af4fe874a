import { ProbotOctokit } from "probot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRepoClient } from "../../src/github/create-repo-client.js";
import { MAX_RESULT_CHARS } from "../../src/tools/clip-result.js";
import { listCommentsTool } from "../../src/tools/list-comments.js";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { captureLogs } from "../helpers/test-app.js";

const REPO = "acme/widgets";

describe("list_comments", () => {
  let github: GitHubStandIn;

  beforeAll(async () => {
    github = await startGitHubStandIn();
    for (let i = 1; i <= 1_000; i++)
      github.addComment(REPO, 7, { body: `comment number ${i}`, login: `user${i}` });
    for (let i = 1; i <= 3; i++) github.addComment(REPO, 8, { body: `short ${i}`, login: "bob" });
    github.addComment(REPO, 10, {
      body: "Do not merge: #12 leaks the token.",
      login: "maintainer",
    });
    github.addComment(REPO, 10, { body: `<!-- ${"x".repeat(30_000)} -->`, login: "anyone" });
    github.addComment(REPO, 11, { body: "Fixed in #13.", login: "maintainer" });
    github.addComment(REPO, 11, {
      body: "Thanks! <!-- and nothing after this shows",
      login: "anyone",
    });
  });

  afterAll(() => github?.close());

  async function listComments(args: { number: number; limit?: number }) {
    const octokit = new ProbotOctokit({
      baseUrl: github.url,
      retry: { enabled: false },
      throttle: { enabled: false },
    });
    const tool = createRepoClient(octokit, { owner: "acme", repo: "widgets" });
    const { log } = await captureLogs("warn");
    return listCommentsTool.execute(listCommentsTool.schema.parse(args), { github: tool, log });
  }

  it("reads two pages of a 1,000-comment thread and gives the newest, saying what it left out", async () => {
    const result = await listComments({ number: 7 });

    expect(
      github.requests
        .filter((r) => r.path === `/repos/${REPO}/issues/7/comments`)
        .map((r) => `${r.method} ${r.query}`),
    ).toEqual(["GET ?per_page=100", "GET ?per_page=100&page=10"]);
    expect(
      result.startsWith(
        "Newest first: the latest 20 of 1000 comments; 980 older comment(s) left out.\n\n--- user1000 at ",
      ),
    ).toBe(true);
    expect(result).toContain("--- user981 at ");
    expect(result).not.toContain("comment number 980\n");
    expect(result.trimEnd().endsWith("comment number 981")).toBe(true);
    expect(result.length).toBeLessThanOrEqual(MAX_RESULT_CHARS + 100);
  });

  it("lists a short thread whole, newest first", async () => {
    const result = await listComments({ number: 8, limit: 50 });
    expect(result).toMatch(
      /^Newest first: all 3 comment\(s\)\.\n\n--- bob at .*:\nshort 3\n\n--- bob at .*:\nshort 2\n\n--- bob at .*:\nshort 1$/,
    );
  });

  it("shows the comments before one hidden in an HTML comment, which no reader sees", async () => {
    // The hidden one's 30,000 characters took the result's room, and the cut left nothing else.
    const result = await listComments({ number: 10 });
    expect(result).toContain("Do not merge: #12 leaks the token.");
    expect(result).not.toContain("xxxx");
  });

  it("shows the comments before one with an unclosed HTML comment, which hid them all", async () => {
    const result = await listComments({ number: 11 });
    expect(result).toContain("Thanks!");
    expect(result).toContain("Fixed in #13.");
    expect(result).not.toContain("nothing after this shows");
  });

  it("says when there are no comments", async () => {
    expect(await listComments({ number: 9 })).toBe("#9 has no comments.");
  });
});

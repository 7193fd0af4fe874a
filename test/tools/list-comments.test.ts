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

  it("says when there are no comments", async () => {
    expect(await listComments({ number: 9 })).toBe("#9 has no comments.");
  });
});

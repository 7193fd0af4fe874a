import { createPublicKey } from "node:crypto";
import { AIMessage } from "@langchain/core/messages";
import { ProbotOctokit } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "./github-stand-in.js";
import { createRestDescription } from "./rest-description.js";
import { scriptedModel } from "./scripted-model.js";
import { createTestApp, loadFixture, TEST_PRIVATE_KEY } from "./test-app.js";

// One per file: the description is read once, on the first check.
const rest = createRestDescription();
const REVIEWS = "/repos/o/r/pulls/1/reviews";
const review = {
  commit_id: "6dcb09b5b57875f334f61aebed695e2e4193db5e",
  body: "Two notes.",
  event: "COMMENT",
  comments: [{ path: "src/a.ts", line: 12, side: "RIGHT", body: "Close the file?" }],
};

describe("GitHub's REST description", () => {
  it("passes a review as Talos posts it", () => {
    expect(rest.check({ method: "POST", path: REVIEWS, body: review })).toEqual([]);
    const range = { ...review.comments[0], start_line: 10, start_side: "RIGHT" };
    expect(
      rest.check({ method: "post", path: REVIEWS, body: { ...review, comments: [range] } }),
    ).toEqual([]);
  });

  it("names the operation and the field of a body that does not match", () => {
    expect(
      rest.check({ method: "POST", path: REVIEWS, body: { ...review, event: "APPROVED" } }),
    ).toEqual([
      'pulls/create-review: body.event must be one of "APPROVE", "REQUEST_CHANGES", "COMMENT", got "APPROVED"',
    ]);
    const comments = [{ line: 12, side: "RIGHT", body: "Where?" }];
    expect(rest.check({ method: "POST", path: REVIEWS, body: { ...review, comments } })).toEqual([
      "pulls/create-review: body.comments[0].path is required",
    ]);
    expect(
      rest.check({
        method: "POST",
        path: REVIEWS,
        body: { ...review, comments: [{ path: "a", line: "12", body: "" }] },
      }),
    ).toEqual(['pulls/create-review: body.comments[0].line must be integer, got "12"']);
  });

  it("knows which routes and methods exist", () => {
    expect(rest.check({ method: "GET", path: "/repos/o/r/pull/1/files" })).toEqual([
      "no operation in GitHub's REST description has the path /repos/o/r/pull/1/files",
    ]);
    expect(rest.check({ method: "DELETE", path: REVIEWS })).toEqual([
      "/repos/{owner}/{repo}/pulls/{pull_number}/reviews has no DELETE operation (it has GET, POST)",
    ]);
    // A literal segment wins over a parameter: this is not pull request number "comments".
    expect(rest.check({ method: "GET", path: "/repos/o/r/pulls/comments" })).toEqual([]);
    expect(rest.check({ method: "GET", path: "/repos/o/r/pulls/latest" })).toEqual([
      'pulls/get: path.pull_number must be integer, got "latest"',
    ]);
  });

  it("checks query parameters: known, required, and valid once coerced from text", () => {
    const files = "/repos/o/r/pulls/1/files";
    expect(rest.check({ method: "GET", path: files, query: "?per_page=100&page=2" })).toEqual([]);
    // The description says "max 100" in prose only: its schema has no maximum.
    expect(rest.check({ method: "GET", path: files, query: "per_page=500" })).toEqual([]);
    expect(rest.check({ method: "GET", path: files, query: "per_page=all&perPage=100" })).toEqual([
      "pulls/list-files: query.perPage is not a query parameter it takes",
      'pulls/list-files: query.per_page must be integer, got "all"',
    ]);
    expect(
      rest.check({
        method: "GET",
        path: "/repos/o/r/pulls",
        query: new URLSearchParams({ state: "merged" }),
      }),
    ).toEqual(['pulls/list: query.state must be one of "open", "closed", "all", got "merged"']);
    expect(rest.check({ method: "GET", path: "/search/issues", query: "per_page=5" })).toEqual([
      "search/issues-and-pull-requests: query.q is required",
    ]);
  });

  it("takes a basehead of two refs, and multi-segment parameters with slashes", () => {
    const compare = "/repos/o/r/compare/main...feature/sync-writes";
    expect(rest.check({ method: "GET", path: compare, query: "per_page=1&page=1" })).toEqual([]);
    expect(rest.check({ method: "GET", path: compare, query: "page=first" })).toEqual([
      'repos/compare-commits-with-basehead: query.page must be integer, got "first"',
    ]);
    expect(rest.check({ method: "GET", path: "/repos/o/r/contents/.github%2Ftalos.yml" })).toEqual(
      [],
    );
    expect(rest.check({ method: "GET", path: "/repos/o/r/contents/.github/talos.yml" })).toEqual(
      [],
    );
  });

  it("checks that a body is sent when, and only when, the operation takes one", () => {
    expect(rest.check({ method: "GET", path: "/repos/o/r/issues/1", body: {} })).toEqual([
      "issues/get: takes no body, but one was sent",
    ]);
    expect(rest.check({ method: "POST", path: "/repos/o/r/issues/1/comments" })).toEqual([
      "issues/create-comment: body is required, but none was sent",
    ]);
    // The description's OpenAPI `nullable` without a type (issues/create's milestone) is accepted.
    expect(
      rest.check({
        method: "POST",
        path: "/repos/o/r/issues",
        body: { title: "t", milestone: null },
      }),
    ).toEqual([]);
  });
});

describe("the requests of end-to-end flows against the GitHub stand-in", () => {
  let github: GitHubStandIn;
  afterEach(() => github?.close());

  it("match the description: commands, tools and comments", async () => {
    github = await startGitHubStandIn({ publicKey: createPublicKey(TEST_PRIVATE_KEY) });
    const repo = "Codertocat/Hello-World";
    github.setFile(repo, ".github/talos.yml", "commands:\n  disabled: []\n");
    github.labels.set(repo, ["bug", "question"]);
    github.issues.set(`${repo}#1`, {
      number: 1,
      title: "Spelling error in the README file",
      body: "It says Helo.",
      state: "open",
      user: { login: "Codertocat" },
      labels: [],
    });
    github.addComment(repo, 1, { body: "Seen it too.", login: "hubot" });
    const model = scriptedModel()
      .respondWithTools([
        { name: "get_issue", args: { number: 1 } },
        { name: "list_comments", args: { number: 1, limit: 5 } },
        { name: "search_issues", args: { query: "spelling", limit: 3 } },
        { name: "get_file", args: { path: "README.md" } },
        { name: "list_labels", args: {} },
      ])
      .respond(new AIMessage("It is a typo in the README."));
    const app = await createTestApp({ baseUrl: github.url, model });
    const payload = loadFixture<{ comment: { id: number; body: string } }>(
      "issue_comment.created.help.json",
    );
    await app.probot.receive({ id: "rest-1", name: "issue_comment", payload } as never);
    payload.comment.id += 1;
    payload.comment.body = "/talos ask what is wrong?";
    await app.probot.receive({ id: "rest-2", name: "issue_comment", payload } as never);

    expect(github.comments.get(`${repo}#1`)?.at(-1)?.body).toContain("It is a typo in the README.");
    expect(github.requests.length).toBeGreaterThan(5);
    expect(rest.checkAll(github.requests)).toEqual([]);
  });

  it("match the description: pull-request reads and a review through Octokit", async () => {
    github = await startGitHubStandIn();
    const repo = "Codertocat/Hello-World";
    const head = { sha: review.commit_id, ref: "sync" };
    const file = {
      filename: "src/a.ts",
      status: "modified",
      additions: 1,
      deletions: 0,
      changes: 1,
      patch: "@@ -10,2 +10,3 @@\n a\n b\n+close(file);",
    };
    github.setPull(repo, {
      number: 1,
      title: "Sync",
      body: "",
      state: "open",
      draft: false,
      user: { login: "octocat" },
      head,
      base: { sha: "9049f1265b7d61be4a8904a9a27120d2064dab3b", ref: "main" },
      files: [file],
    });
    github.setComparison(repo, "9049f1265b7d61be4a8904a9a27120d2064dab3b", head.sha, {
      status: "ahead",
      files: [file],
    });
    const token = await fetch(`${github.url}/app/installations/2/access_tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${appJwt()}` },
    });
    const octokit = new ProbotOctokit({
      auth: { token: ((await token.json()) as { token: string }).token },
      baseUrl: github.url,
      throttle: { enabled: false },
      retry: { enabled: false },
    });
    const at = { owner: "Codertocat", repo: "Hello-World" };
    await octokit.rest.pulls.get({ ...at, pull_number: 1 });
    await octokit.paginate(octokit.rest.pulls.listFiles, { ...at, pull_number: 1, per_page: 100 });
    await octokit.rest.repos.compareCommitsWithBasehead({
      ...at,
      basehead: `9049f1265b7d61be4a8904a9a27120d2064dab3b...${head.sha}`,
      per_page: 1,
      page: 1,
    });
    await octokit.rest.pulls.createReview({
      ...at,
      pull_number: 1,
      commit_id: head.sha,
      body: "One note.",
      event: "COMMENT",
      comments: [{ path: "src/a.ts", line: 12, side: "RIGHT", body: "Close it?" }],
    });
    await octokit.paginate(octokit.rest.pulls.listReviews, { ...at, pull_number: 1 });
    expect(github.requests.map((r) => r.status)).toEqual([201, 200, 200, 200, 200, 200]);
    expect(rest.checkAll(github.requests)).toEqual([]);
  });
});

/** An app JWT the stand-in takes when it was given no public key: only the claims are read. */
function appJwt(): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${encode({ alg: "RS256" })}.${encode({ iss: 1, iat: now, exp: now + 600 })}.x`;
}

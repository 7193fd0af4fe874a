import { ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { createRepoClient, NotInRepoError } from "../../src/github/create-repo-client.js";
import { getIssueTool } from "../../src/tools/get-issue.js";
import { listCommentsTool } from "../../src/tools/list-comments.js";
import { githubScope, INSTALLATION_TOKEN } from "../helpers/github-mocks.js";
import { captureLogs } from "../helpers/test-app.js";

// The event's repository; `acme/secret` is another (private) repository of the same installation.
const REPO = { owner: "acme", repo: "widgets" };
const SECRET_TITLE = "Embargoed: RCE in the upload handler";
const SECRET_BODY = "Send a crafted multipart body to /upload to run code (advisory draft).";

function client() {
  const octokit = new ProbotOctokit({
    auth: { token: INSTALLATION_TOKEN },
    retry: { enabled: false },
    throttle: { enabled: false },
  });
  return createRepoClient(octokit, REPO);
}

function secretIssue() {
  return {
    number: 7,
    title: SECRET_TITLE,
    body: SECRET_BODY,
    state: "open",
    user: { login: "maintainer" },
    labels: [],
    html_url: "https://github.com/acme/secret/issues/7",
    repository_url: "https://api.github.com/repos/acme/secret",
    created_at: "2025-01-01T00:00:00Z",
  };
}

function secretComment(id: number) {
  return {
    id,
    user: { login: "maintainer" },
    body: SECRET_BODY,
    created_at: "2025-01-02T00:00:00Z",
    issue_url: "https://api.github.com/repos/acme/secret/issues/7",
  };
}

describe("an issue transferred to another repository", () => {
  // GitHub answers for a transferred issue with a 301 to its new home by repository id; fetch
  // follows it on the same host with the installation token, so the new home's issue comes back.
  it("get_issue reports not found instead of the other repository's issue", async () => {
    const github = client();
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/issues/5")
      .reply(301, "", { location: "https://api.github.com/repositories/999/issues/7" })
      .get("/repositories/999/issues/7")
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .reply(200, secretIssue());
    const { log } = await captureLogs("warn");

    const outcome = await getIssueTool.execute({ number: 5 }, { github, log }).then(
      (text) => ({ text, error: undefined }),
      (error: unknown) => ({ text: undefined, error: error as Error & { status?: number } }),
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(outcome.text).toBeUndefined();
    expect(outcome.error?.status).toBe(404);
    expect(outcome.error?.message).toBe("Not Found: #5 is not in acme/widgets");
    expect(outcome.error?.message).not.toContain("Embargoed");
    expect([...github.retrieved]).toEqual([]);
  });

  /** #5's comments, read from its new home (`/repositories/999/issues/7`), which holds `comments`. */
  function commentsElsewhere(comments: unknown[]) {
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/issues/5/comments")
      .query({ per_page: "100" })
      .reply(301, "", {
        location: "https://api.github.com/repositories/999/issues/7/comments?per_page=100",
      })
      .get("/repositories/999/issues/7/comments")
      .query({ per_page: "100" })
      .reply(200, comments);
    return scope;
  }

  /** list_comments of #5 fails as not found, having told the model nothing of where it went. */
  async function expectListCommentsNotFound(scope: ReturnType<typeof githubScope>) {
    const github = client();
    const { log } = await captureLogs("warn");
    await expect(
      listCommentsTool.execute(listCommentsTool.schema.parse({ number: 5 }), { github, log }),
    ).rejects.toMatchObject({ status: 404, message: "Not Found: #5 is not in acme/widgets" });
    expect(scope.pendingMocks()).toEqual([]);
    expect([...github.retrieved]).toEqual([]);
  }

  it("list_comments reports not found instead of the other repository's comments", async () => {
    await expectListCommentsNotFound(commentsElsewhere([secretComment(1), secretComment(2)]));
  });

  it("a later page of recent comments from elsewhere is refused too", async () => {
    const github = client();
    const scope = githubScope();
    const own = {
      ...secretComment(1),
      body: "first page, ours",
      issue_url: "https://api.github.com/repos/acme/widgets/issues/5",
    };
    scope
      .get("/repos/acme/widgets/issues/5/comments")
      .query({ per_page: "100" })
      .reply(200, [own], {
        link: '<https://api.github.com/repositories/1/issues/5/comments?per_page=100&page=2>; rel="last"',
      })
      .get("/repos/acme/widgets/issues/5/comments")
      .query({ per_page: "100", page: "2" })
      .reply(301, "", {
        location: "https://api.github.com/repositories/999/issues/7/comments?per_page=100&page=2",
      })
      .get("/repositories/999/issues/7/comments")
      .query({ per_page: "100", page: "2" })
      .reply(200, [secretComment(2)]);

    await expect(github.listRecentComments(5, { maxChars: 10_000 })).rejects.toMatchObject({
      status: 404,
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("listComments (every page) refuses comments from elsewhere", async () => {
    const github = client();
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/issues/5/comments")
      .query({ per_page: "100" })
      .reply(301, "", {
        location: "https://api.github.com/repositories/999/issues/7/comments?per_page=100",
      })
      .get("/repositories/999/issues/7/comments")
      .query({ per_page: "100" })
      .reply(200, [secretComment(1)]);

    await expect(github.listComments(5)).rejects.toMatchObject({ status: 404 });
    expect(scope.pendingMocks()).toEqual([]);
    expect([...github.retrieved]).toEqual([]);
  });

  // The check looked only at each comment's `issue_url`: an issue moved to where it has no
  // comments redirected to an empty page, and the tool said "#5 has no comments" of the other
  // repository's issue (found by a review).
  it("list_comments reports not found where the issue has no comments in its new home", async () => {
    await expectListCommentsNotFound(commentsElsewhere([]));
  });

  it("listComments (every page) refuses an empty page from elsewhere, saying where", async () => {
    const github = client();
    const scope = commentsElsewhere([]);

    const error: unknown = await github.listComments(5).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(NotInRepoError);
    expect(error).toMatchObject({ status: 404, movedTo: 999 });
    expect(scope.pendingMocks()).toEqual([]);
    expect([...github.retrieved]).toEqual([]);
  });

  it("still reads this repository's issue and comments, whatever the case of its name", async () => {
    const github = client();
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/issues/5")
      .reply(200, {
        ...secretIssue(),
        number: 5,
        title: "Ours",
        body: "our body",
        repository_url: "https://api.github.com/repos/Acme/Widgets",
      })
      .get("/repos/acme/widgets/issues/5/comments")
      .query({ per_page: "100" })
      .reply(200, [
        {
          ...secretComment(1),
          body: "our comment",
          issue_url: "https://api.github.com/repos/Acme/Widgets/issues/5",
        },
      ]);

    const issue = await github.getIssue(5);
    const comments = await github.listComments(5);

    expect(scope.pendingMocks()).toEqual([]);
    expect(issue).toMatchObject({ number: 5, title: "Ours", body: "our body" });
    expect(comments.map((c) => c.body)).toEqual(["our comment"]);
    expect([...github.retrieved]).toEqual([5]);
  });
});

import { createPublicKey } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { createTestApp, loadFixture, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

const HELLO = "Codertocat/Hello-World";
const OTHER = "Octo-Org/Other-Repo";
const TOKEN_2 = "token ghs_standin2token000000000000";
const TOKEN_3 = "token ghs_standin3token000000000000";

interface CommentPayload {
  installation: { id: number };
  repository: Record<string, any>;
  issue: Record<string, any>;
  comment: { id: number; body: string; created_at: string; html_url: string } & Record<string, any>;
}

/**
 * The real Talos app, in process, against the GitHub stand-in with app JWTs checked against the
 * app's key and each installation seeing only the repositories it was granted.
 */
describe("Talos against a GitHub that enforces installation scope", () => {
  let github: GitHubStandIn;

  beforeEach(async () => {
    github = await startGitHubStandIn({
      publicKey: createPublicKey(TEST_PRIVATE_KEY),
      access: { 2: [HELLO], 3: [OTHER] },
    });
  });
  afterEach(() => github.close());

  /** Requests to a repository's or the search API: everything but the app's own routes. */
  const installationRequests = () => github.requests.filter((r) => !r.path.startsWith("/app"));

  it("edits a reply whose marker is on page 2 of a 150-comment thread, and posts none", async () => {
    const payload = loadFixture<CommentPayload>("issue_comment.created.help.json");
    const commandId = payload.comment.id;
    const marker = `<!-- talos:reply:${commandId} -->`;
    let reply = 0;
    for (let i = 1; i <= 150; i++) {
      if (i === 120) {
        reply = github.addComment(HELLO, 1, {
          body: `An earlier answer.\n\n${marker}`,
          login: "talos-bot[bot]",
          type: "Bot",
        }).id;
      } else if (i === 7) {
        // Someone quoting the reply on page 1: not Talos's comment, so never edited.
        github.addComment(HELLO, 1, {
          body: `> An earlier answer.\n\n${marker}`,
          login: "mallory",
        });
      } else {
        github.addComment(HELLO, 1, { body: `comment ${i}`, login: "Codertocat" });
      }
    }
    // The command came before the whole thread, so `since` keeps all 150 comments.
    const seeded = github.comments.get(`${HELLO}#1`) ?? [];
    expect(seeded).toHaveLength(150);
    expect(seeded.every((c) => c.created_at > payload.comment.created_at)).toBe(true);
    const app = await createTestApp({ baseUrl: github.url });

    await app.probot.receive({
      id: "scope-replayed-delivery",
      name: "issue_comment",
      payload,
    } as never);

    expect(github.writes().map((w) => [w.method, w.path, w.status])).toEqual([
      ["POST", `/repos/${HELLO}/issues/comments/${commandId}/reactions`, 201],
      ["PATCH", `/repos/${HELLO}/issues/comments/${reply}`, 200],
    ]);
    const thread = github.comments.get(`${HELLO}#1`) ?? [];
    expect(thread).toHaveLength(150);
    expect(thread[119]?.body).toMatch(
      /Talos commands in this repository[\s\S]*<!-- talos:reply:\d+ -->$/,
    );
    expect(thread[119]?.body.endsWith(marker)).toBe(true);
    expect(thread[6]?.body).toBe(`> An earlier answer.\n\n${marker}`);

    const listReads = github.requests
      .filter((r) => r.method === "GET" && r.path === `/repos/${HELLO}/issues/1/comments`)
      .map((r) => Object.fromEntries(new URLSearchParams(r.query)));
    expect(listReads).toEqual([
      { per_page: "100", since: payload.comment.created_at },
      { per_page: "100", since: payload.comment.created_at, page: "2" },
    ]);
    expect(installationRequests().every((r) => r.authorization === TOKEN_2)).toBe(true);
    expect(github.requests.every((r) => r.status < 400 || r.path.includes("/contents/"))).toBe(
      true,
    );
  });

  it("answers with a token scoped to the event's installation", async () => {
    const payload = loadFixture<CommentPayload>("issue_comment.created.help.json");
    payload.installation.id = 3;
    Object.assign(payload.repository, {
      name: "Other-Repo",
      full_name: OTHER,
      html_url: `https://github.com/${OTHER}`,
      url: `https://api.github.com/repos/${OTHER}`,
    });
    payload.repository.owner.login = "Octo-Org";
    Object.assign(payload.issue, {
      html_url: `https://github.com/${OTHER}/issues/1`,
      url: `https://api.github.com/repos/${OTHER}/issues/1`,
      repository_url: `https://api.github.com/repos/${OTHER}`,
    });
    Object.assign(payload.comment, {
      html_url: `https://github.com/${OTHER}/issues/1#issuecomment-${payload.comment.id}`,
      url: `https://api.github.com/repos/${OTHER}/issues/comments/${payload.comment.id}`,
      issue_url: `https://api.github.com/repos/${OTHER}/issues/1`,
    });
    github.setFile(OTHER, ".github/talos.yml", "commands:\n  disabled: []\n");
    const app = await createTestApp({ baseUrl: github.url });

    await app.probot.receive({
      id: "scope-installation-3",
      name: "issue_comment",
      payload,
    } as never);

    const thread = github.comments.get(`${OTHER}#1`) ?? [];
    expect(thread).toHaveLength(1);
    expect(thread[0]?.body).toMatch(
      new RegExp(
        `Talos commands in this repository[\\s\\S]*<!-- talos:reply:${payload.comment.id} -->$`,
      ),
    );
    expect(github.reactions).toEqual([
      { repo: OTHER, commentId: payload.comment.id, content: "eyes" },
    ]);
    // Only installation 3's token was asked for, and every request Talos made carried it.
    expect(
      github.requests.filter((r) => r.path.endsWith("/access_tokens")).map((r) => r.path),
    ).toEqual(["/app/installations/3/access_tokens"]);
    const used = installationRequests();
    expect(used.length).toBeGreaterThan(2);
    expect(used.filter((r) => r.authorization !== TOKEN_3)).toEqual([]);
    expect(github.requests.filter((r) => r.status >= 400)).toEqual([]);
    expect(github.writes().map((w) => [w.method, w.path, w.status])).toEqual([
      ["POST", `/repos/${OTHER}/issues/comments/${payload.comment.id}/reactions`, 201],
      ["POST", `/repos/${OTHER}/issues/1/comments`, 201],
    ]);

    // Had Talos used installation 2's token for this repository, the stand-in would have said 404.
    const installation2 = await app.probot.auth(2);
    const hello = await installation2.rest.issues.listComments({
      owner: "Codertocat",
      repo: "Hello-World",
      issue_number: 1,
    });
    expect(hello.status).toBe(200);
    await expect(
      installation2.rest.issues.listComments({
        owner: "Octo-Org",
        repo: "Other-Repo",
        issue_number: 1,
      }),
    ).rejects.toMatchObject({ status: 404 });
    await expect(
      installation2.rest.issues.createComment({
        owner: "Octo-Org",
        repo: "Other-Repo",
        issue_number: 1,
        body: "from the wrong installation",
      }),
    ).rejects.toMatchObject({ status: 404 });
    const refused = github.requests.filter((r) => r.status === 404);
    expect(refused.map((r) => [r.method, r.path, r.authorization])).toEqual([
      ["GET", `/repos/${OTHER}/issues/1/comments`, TOKEN_2],
      ["POST", `/repos/${OTHER}/issues/1/comments`, TOKEN_2],
    ]);
    expect(github.comments.get(`${OTHER}#1`)).toHaveLength(1);
    expect(github.writes().map((w) => [w.method, w.path, w.status])).toEqual([
      ["POST", `/repos/${OTHER}/issues/comments/${payload.comment.id}/reactions`, 201],
      ["POST", `/repos/${OTHER}/issues/1/comments`, 201],
      ["POST", `/repos/${OTHER}/issues/1/comments`, 404],
    ]);
  });
});

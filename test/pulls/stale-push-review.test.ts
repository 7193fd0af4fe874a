import { AIMessage } from "@langchain/core/messages";
import type nock from "nock";
import { describe, expect, it } from "vitest";
import { reviewMarker } from "../../src/github/comment-markers.js";
import {
  githubScope,
  mockAppIdentity,
  mockEarlierReview,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
const HEAD_1 = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const HEAD_2 = "2b5c1a7e0f3d4c6b8a9e1f2d3c4b5a6978877665";
// A bot's fix-up commit (pre-commit.ci, an autoformat workflow) pushed on top of HEAD_2.
const HEAD_3 = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
const FIXUP_BOT = { login: "pre-commit-ci[bot]", id: 66853113, type: "Bot" };

interface FileFixture {
  filename: string;
  patch?: string;
}
const PUSH = loadFixture<{ status: string; files: FileFixture[] }>("pulls/compare.push.json");
const PUSHED = loadFixture<FileFixture[]>("pulls/files.push.json");

function pull(head: string) {
  return {
    number: 2,
    title: "Add a dark theme to the editor",
    body: "Closes #1. Adds a theme switch.",
    state: "open",
    draft: false,
    user: { login: "Codertocat", type: "User" },
    head: { sha: head, ref: "changes" },
    base: { sha: BASE, ref: "master" },
    changed_files: PUSHED.length,
    html_url: "https://github.com/Codertocat/Hello-World/pull/2",
  };
}

/** What a push review reads besides the head: the comparison since HEAD_1 and the PR's files. */
function mockPushReads(scope: nock.Scope, head: string) {
  scope
    .get(`${REPO}/compare/${HEAD_1}...${head}`)
    .query({ per_page: "1", page: "1" })
    .reply(200, PUSH);
  scope.get(`${REPO}/pulls/2/files`).query({ per_page: "100" }).reply(200, PUSHED);
}

function synchronize(app: TestApp, head: string, sender?: object) {
  const payload = loadFixture<any>("pull_request.synchronize.json");
  payload.pull_request.head.sha = head;
  payload.after = head;
  if (sender) payload.sender = sender;
  return app.probot.receive({
    id: `sync-${head}-${Math.random()}`,
    name: "pull_request",
    payload,
  } as never);
}

describe("a push review whose head moves while the model works", () => {
  it("is not lost when the push that moved the head is a bot's (whose job runs nothing)", async () => {
    const review = (verdict: string) => new AIMessage(JSON.stringify({ verdict, comments: [] }));
    const model = scriptedModel()
      .respond(review("Review of HEAD_2."))
      .respond(review("Review of HEAD_3."));
    const app = await createTestApp({ model });

    // A person pushes HEAD_2; while the model reviews it, a bot pushes HEAD_3 on top.
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "pull_requests:\n  enabled: false\n" });
    scope.get(`${REPO}/pulls/2`).reply(200, pull(HEAD_2));
    mockEarlierReview(scope, HEAD_1);
    mockPushReads(scope, HEAD_2);
    scope.get(REPO).reply(200, {
      full_name: "Codertocat/Hello-World",
      default_branch: "master",
      visibility: "public",
      archived: false,
      description: "",
    });
    scope
      .get(`${REPO}/contents/.gitattributes`)
      .query({ ref: "master" })
      .reply(404, { message: "Not Found" });
    // Read again after the model answered: the bot's push has moved the head.
    scope.get(`${REPO}/pulls/2`).times(3).reply(200, pull(HEAD_3));
    // The new head's review: no Talos review of it yet, so the changes since HEAD_1 again.
    mockEarlierReview(scope, HEAD_1);
    mockPushReads(scope, HEAD_3);
    const reviews: any[] = [];
    scope
      .post(`${REPO}/pulls/2/reviews`, (body) => Boolean(reviews.push(body)))
      .reply(200, {
        id: 90,
        html_url: "https://github.com/Codertocat/Hello-World/pull/2#pullrequestreview-90",
      });

    await synchronize(app, HEAD_2);
    // The bot's push: followed, but it starts no work (no request is mocked for it).
    await synchronize(app, HEAD_3, FIXUP_BOT);

    expect(scope.pendingMocks()).toEqual([]);
    expect(reviews).toHaveLength(1);
    expect(reviews[0].commit_id).toBe(HEAD_3);
    expect(reviews[0].body).toContain("Review of HEAD_3.");
    expect(reviews[0].body).toContain(`covering the changes since \`${HEAD_1.slice(0, 7)}\``);
    expect(reviews[0].body.endsWith(reviewMarker(HEAD_3, undefined, "master"))).toBe(true);
    expect(model.callCount).toBe(2);
  });
});

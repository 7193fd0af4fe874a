import { describe, expect, it } from "vitest";
import {
  githubScope,
  INSTALLATION_TOKEN,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const COMMENT_ID = 492700400;

interface Payload {
  comment: { body: string; author_association: string; user: Record<string, unknown> };
  sender: Record<string, unknown>;
}

function receive(app: TestApp, payload: unknown, id: string) {
  return app.probot.receive({ id, name: "issue_comment", payload } as never);
}

/** Everything `/talos help` from a maintainer needs, so a run that should not happen shows. */
function mockHelpAnswered(scope: ReturnType<typeof githubScope>) {
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope);
  scope
    .post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`)
    .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
    .reply(201, { id: 1, content: "eyes" });
  scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
  const posted: { body?: string } = {};
  scope
    .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean((posted.body = b.body)))
    .reply(201, { id: 9001 });
  return posted;
}

describe("who the comment handler takes a command from", () => {
  it("journals a delivery whose sender.login is not a string, and its job parks it with the error", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    const posted = mockHelpAnswered(scope);
    const payload = loadFixture<Payload>("issue_comment.created.help.json");
    payload.sender.login = 12345;

    await receive(app, payload, "sender-login-number");

    const job = app.talos.services.journal!.list().find((j) => j.id === "sender-login-number");
    expect({ parked: job?.parked !== undefined, replied: posted.body !== undefined }).toEqual({
      parked: true,
      replied: false,
    });
  });

  it("a comment whose author is a bot (user.type Bot) runs no command even when the sender is not flagged", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    const posted = mockHelpAnswered(scope);
    const payload = loadFixture<Payload>("issue_comment.created.help.json");
    payload.comment.user = { ...payload.comment.user, login: "some-agent[bot]", type: "Bot" };
    payload.comment.author_association = "COLLABORATOR";

    await receive(app, payload, "author-is-bot");

    expect(posted.body).toBeUndefined();
  });
});

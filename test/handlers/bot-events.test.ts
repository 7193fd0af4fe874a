import { describe, expect, it } from "vitest";
import { githubScope, mockInstallationToken, mockRepoConfig } from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const BOT = { login: "github-actions[bot]", id: 41898282, type: "Bot" };
const HELLO_WORLD = 186853002;

function receive(app: TestApp, name: string, payload: unknown) {
  return app.probot.receive({ id: `bot-${Math.random()}`, name, payload } as never);
}

function memoryOf(app: TestApp) {
  return app.talos.memory.open({
    installation: 2,
    repository: HELLO_WORLD,
    name: "Codertocat/Hello-World",
  });
}

describe("events from bots", () => {
  it("a bot's new issue is remembered, and neither triaged nor answered", async () => {
    // A model that would be called by triage; it must not be.
    const model = scriptedModel();
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, {
      yaml: "triage:\n  enabled: true\n  apply_labels: true\nsimilar:\n  enabled: true\n",
    });
    const payload = webhookExample("issues", "opened", 2);
    Object.assign(payload.issue, { number: 31, title: "Dependency dashboard", body: "Renovate" });
    Object.assign(payload, { sender: BOT });

    await receive(app, "issues", payload);

    expect(scope.pendingMocks()).toEqual([]);
    expect(model.calls).toHaveLength(0);
    expect((await (await memoryOf(app)).get("issue-31"))?.text).toContain("Dependency dashboard");
  });

  it("an issue a bot closed is updated in memory", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    // The examples hold no issues.closed: an opened issue, closed.
    const payload = webhookExample("issues", "opened", 2);
    Object.assign(payload, { action: "closed" });
    Object.assign(payload.issue, { number: 32, title: "Stale issue", state: "closed" });
    Object.assign(payload, { sender: { login: "stale[bot]", id: 26384082, type: "Bot" } });

    await receive(app, "issues", payload);

    expect(scope.pendingMocks()).toEqual([]);
    expect(await (await memoryOf(app)).get("issue-32")).toMatchObject({ state: "closed" });
  });

  it("a bot's comment, Talos's own included, runs no command and makes no request", async () => {
    const app = await createTestApp();
    const scope = githubScope(); // no mocks: any request fails the test
    const payload = loadFixture<{ comment: { body: string }; sender: unknown }>(
      "issue_comment.created.help.json",
    );
    payload.sender = BOT;
    await receive(app, "issue_comment", payload);
    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(app.logs.lines().some((l) => l.msg === "ignored: the sender is a bot")).toBe(true);
  });

  it.each(["renovate-bot", "Renovate", "dependabot-preview"])(
    "a dependency bot's user account (%s, type User) with write access runs no command",
    async (login) => {
      const app = await createTestApp();
      const scope = githubScope(); // no mocks: any request fails the test
      const payload = loadFixture<{
        comment: { author_association: string; user: object };
        sender: object;
      }>("issue_comment.created.help.json");
      const user = { login, id: 2_000_001, type: "User" };
      payload.comment.user = { ...payload.comment.user, ...user };
      payload.comment.author_association = "COLLABORATOR";
      payload.sender = { ...payload.sender, ...user };
      await receive(app, "issue_comment", payload);
      expect(scope.pendingMocks()).toEqual([]);
      expect(app.talos.services.journal!.list()).toEqual([]);
      expect(app.logs.lines().some((l) => l.msg === "ignored: the sender is a bot")).toBe(true);
    },
  );
});

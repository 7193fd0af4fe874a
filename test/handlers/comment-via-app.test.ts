import { describe, expect, it, onTestFinished, vi } from "vitest";
import {
  githubScope,
  INSTALLATION_TOKEN,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
  recordUnmatchedRequests,
} from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";

interface ViaAppPayload {
  comment: { id: number; body: string; performed_via_github_app?: { slug: string } | null };
  sender: { login: string; type: string };
}

const REPO = "/repos/Codertocat/Hello-World";
const COMMENT_ID = 492700400;

function viaAppComment(changes: (p: ViaAppPayload) => void = () => undefined): ViaAppPayload {
  const payload = loadFixture<ViaAppPayload>("issue_comment.created.via-app.json");
  changes(payload);
  return payload;
}

function receive(app: TestApp, payload: unknown, id = "delivery-via-app") {
  return app.probot.receive({ id, name: "issue_comment", payload } as Parameters<
    TestApp["probot"]["receive"]
  >[0]);
}

/** Watches the Markdown parse that finds a command (the worker pool is shared by the file). */
function spyOnCommandParse(app: TestApp) {
  const spy = vi.spyOn(app.talos.services.markdown, "parseCommand");
  onTestFinished(() => spy.mockRestore());
  return spy;
}

describe("a comment posted through another GitHub App", () => {
  it("runs no command, makes no request, and logs why", async () => {
    const app = await createTestApp();
    const parseCommand = spyOnCommandParse(app);
    const scope = githubScope();
    const unmatched = recordUnmatchedRequests();

    // A human (Codertocat, OWNER, type User) is the sender: only the app field tells them apart.
    const payload = viaAppComment();
    expect(payload.sender).toMatchObject({ login: "Codertocat", type: "User" });
    await receive(app, payload);

    expect(unmatched).toEqual([]);
    expect(scope.pendingMocks()).toEqual([]);
    expect(parseCommand).not.toHaveBeenCalled();
    const lines = app.logs.lines();
    const line = lines.find((l) => String(l.msg).includes("posted through a GitHub App"));
    expect(line).toMatchObject({ app: "acme-coding-agent", level: 20 });
    expect(line).not.toHaveProperty("command");
    // The job finished cleanly: nothing failed, so nothing is retried or parked.
    expect(lines.filter((l) => Number(l.level) >= 40)).toEqual([]);
  });

  it.each([
    ["without a slug", { id: 7 }, undefined],
    ["with a slug of null", { id: 7, slug: null }, undefined],
    ["with an app object of a shape not foreseen", { id: "7", name: "Agent" }, undefined],
  ])(
    "ignores one whose app is given %s, rather than parking its job",
    async (_case, viaApp, slug) => {
      const app = await createTestApp();
      const scope = githubScope();
      const unmatched = recordUnmatchedRequests();
      const payload = viaAppComment();
      (payload.comment as { performed_via_github_app: unknown }).performed_via_github_app = viaApp;
      await receive(app, payload);

      expect(unmatched).toEqual([]);
      expect(scope.pendingMocks()).toEqual([]);
      const lines = app.logs.lines();
      const line = lines.find((l) => String(l.msg).includes("posted through a GitHub App"));
      expect(line).toBeDefined();
      expect(line?.app).toBe(slug);
      expect(lines.filter((l) => Number(l.level) >= 40)).toEqual([]);
    },
  );

  it.each([
    ["without the field", (p: ViaAppPayload) => delete p.comment.performed_via_github_app],
    [
      "with the field null, as GitHub sends it",
      (p: ViaAppPayload) => {
        p.comment.performed_via_github_app = null;
      },
    ],
  ])("runs the command for the same comment %s", async (_case, change) => {
    const app = await createTestApp();
    const parseCommand = spyOnCommandParse(app);
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope, {});
    scope
      .post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" })
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .reply(201, { id: 1, content: "eyes" });
    scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
    let reply = "";
    scope
      .post(`${REPO}/issues/1/comments`, (body: { body: string }) => {
        reply = body.body;
        return true;
      })
      .reply(201, { id: 9001 });

    await receive(app, viaAppComment(change));

    expect(scope.pendingMocks()).toEqual([]);
    expect(parseCommand).toHaveBeenCalledOnce();
    expect(reply).toContain("| `/talos help` |");
    expect(reply.endsWith(`<!-- talos:reply:${COMMENT_ID} -->`)).toBe(true);
  });
});

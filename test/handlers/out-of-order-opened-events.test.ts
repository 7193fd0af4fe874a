import { describe, expect, it } from "vitest";
import { githubScope, mockInstallationToken, mockRepoConfig } from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

/** Codertocat/Hello-World's id in the example payloads. */
const HELLO_WORLD = 186853002;
/** No summary and no push review: the pull request's events only touch memory. */
const MEMORY_ONLY = "pull_requests:\n  enabled: false\nreview:\n  on_push: false\n";

const EDITED_AT = "2026-11-02T10:00:00Z";
const OPENED_AT = "2026-11-01T10:00:00Z";

function issueEvent(action: "opened" | "edited", title: string, updatedAt: string) {
  const payload = webhookExample("issues", action);
  payload.issue.title = title;
  payload.issue.updated_at = updatedAt;
  return payload;
}

function pullRequestEvent(action: "opened" | "edited", title: string, updatedAt: string) {
  const payload = loadFixture<Record<string, any>>("pull_request.opened.json");
  payload.action = action;
  if (action === "edited") payload.changes = { title: { from: "Add a dark theme" } };
  payload.pull_request.title = title;
  payload.pull_request.updated_at = updatedAt;
  return payload;
}

function receive(app: TestApp, name: string, payload: unknown, id: string) {
  return app.probot.receive({ id, name, payload } as never);
}

function openMemory(app: TestApp) {
  return app.talos.memory.open({
    installation: 2,
    repository: HELLO_WORLD,
    name: "Codertocat/Hello-World",
  });
}

describe("an opened event delivered after the edit", () => {
  it("leaves the edited issue's text: issues.opened carries the issue's updated_at", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    // Read once: the second event is served from the cache.
    mockRepoConfig(scope);

    await receive(app, "issues", issueEvent("edited", "The edited title", EDITED_AT), "edit");
    // The opened job, retried from the journal (or redelivered) after the edit was handled.
    await receive(app, "issues", issueEvent("opened", "The first title", OPENED_AT), "open");

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(2);
    const record = await (await openMemory(app)).get("issue-1");
    expect(record?.text).toMatch(/^The edited title/);
    expect(record?.metadata).toEqual({ updatedAt: "2026-11-02T10:00:00.000Z" });
  });

  it("remembers the issue with its version, so that an older edit delivered later leaves it", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);

    await receive(app, "issues", issueEvent("opened", "The first title", EDITED_AT), "open");
    await receive(app, "issues", issueEvent("edited", "An older edit", OPENED_AT), "edit");

    expect(scope.pendingMocks()).toEqual([]);
    const record = await (await openMemory(app)).get("issue-1");
    expect(record?.text).toMatch(/^The first title/);
    expect(record?.metadata).toEqual({ updatedAt: "2026-11-02T10:00:00.000Z" });
  });

  it("leaves the edited pull request's text: pull_request.opened carries its updated_at", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: MEMORY_ONLY });

    await receive(
      app,
      "pull_request",
      pullRequestEvent("edited", "Add a dark theme, edited", EDITED_AT),
      "edit",
    );
    await receive(
      app,
      "pull_request",
      pullRequestEvent("opened", "Add a dark theme", OPENED_AT),
      "open",
    );

    // Nothing else was asked of GitHub: no summary, no review.
    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(2);
    const record = await (await openMemory(app)).get("pull_request-2");
    expect(record?.text).toMatch(/^Add a dark theme, edited/);
    expect(record?.metadata).toEqual({ updatedAt: "2026-11-02T10:00:00.000Z" });
  });
});

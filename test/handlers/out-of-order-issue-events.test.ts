import { describe, expect, it } from "vitest";
import { githubScope, mockInstallationToken, mockRepoConfig } from "../helpers/github-mocks.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

/** Codertocat/Hello-World's id in the example payloads. */
const HELLO_WORLD = 186853002;

function edited(title: string, updatedAt: string) {
  const payload = webhookExample("issues", "edited");
  payload.issue.title = title;
  payload.issue.updated_at = updatedAt;
  return payload;
}

function receive(app: TestApp, payload: unknown, id: string) {
  return app.probot.receive({ id, name: "issues", payload } as never);
}

describe("issue events delivered out of order", () => {
  it("keeps the newer text when an older edit arrives after a newer one", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    // Read once: the second and third events are served from the cache.
    mockRepoConfig(scope);

    await receive(app, edited("The newer title", "2026-11-02T10:00:00Z"), "delivery-newer");
    // A redelivery of an edit that failed to arrive in time, say.
    await receive(app, edited("The older title", "2026-11-01T10:00:00Z"), "delivery-older");

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await app.talos.memory.open({
      installation: 2,
      repository: HELLO_WORLD,
      name: "Codertocat/Hello-World",
    });
    expect((await memory.get("issue-1"))?.text).toMatch(/^The newer title/);
    // A later edit still replaces it.
    await receive(app, edited("The latest title", "2026-11-03T10:00:00Z"), "delivery-later");
    expect((await memory.get("issue-1"))?.text).toMatch(/^The latest title/);
  });
});

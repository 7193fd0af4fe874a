import { describe, expect, it } from "vitest";
import { githubScope } from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

function receive(app: TestApp, name: string, payload: unknown, id = "delivery-installation") {
  return app.probot.receive({ id, name, payload } as never);
}

describe("installation events with a malformed payload", () => {
  it("parks an uninstall without an installation id at once, with an error naming the field", async () => {
    const app = await createTestApp();
    const scope = githubScope(); // no mocks: any request fails the test
    const payload = { ...webhookExample("installation", "deleted"), installation: null };

    await receive(app, "installation", payload);

    expect(scope.pendingMocks()).toEqual([]);
    // Not finished as if there were nothing to delete: kept, for `talos jobs`, with the reason.
    const [parked] = app.talos.services.journal!.list();
    expect(parked).toMatchObject({ id: "delivery-installation", attempts: 1 });
    expect(parked?.parked?.error).toMatch(/malformed webhook payload: installation/);
  });

  it("parks a removal whose repository has no id at once, instead of retrying it", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    const payload = {
      ...loadFixture<Record<string, unknown>>("installation_repositories.added.json"),
      action: "removed",
      repositories_added: [],
      repositories_removed: [{ full_name: "Codertocat/Space", name: "Space" }],
    };

    await receive(app, "installation_repositories", payload);

    expect(scope.pendingMocks()).toEqual([]);
    const [parked] = app.talos.services.journal!.list();
    expect(parked?.parked?.error).toMatch(/malformed webhook payload: repositories_removed\.0\.id/);
  });

  it("journals and parks a list that is not a list, rather than failing the delivery unread", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    const payload = {
      ...loadFixture<Record<string, unknown>>("installation_repositories.added.json"),
      action: "removed",
      repositories_added: [],
      repositories_removed: { id: 186853007, full_name: "Codertocat/Space" },
    };

    // Acknowledged: a redelivery would fail the same way, so it is kept for `talos jobs` instead.
    await receive(app, "installation_repositories", payload);

    expect(scope.pendingMocks()).toEqual([]);
    const [parked] = app.talos.services.journal!.list();
    expect(parked?.parked?.error).toMatch(/malformed webhook payload: repositories_removed/);
    // What it changed cannot be told: nothing cached for the installation is served any more.
    const evicted = app.logs.lines().find((l) => l.msg === "cache entries evicted");
    expect(evicted?.evictions).toEqual([{ installation: "2" }]);
  });
});

import { describe, expect, it } from "vitest";
import {
  githubScope,
  mockInstallationToken,
  mockRepoConfig,
  mockRepositoryRead,
} from "../helpers/github-mocks.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "/repos/Codertocat/Hello-World";
/** Codertocat/Hello-World's id in the example payloads. */
const HELLO_WORLD = 186853002;
const HELLO_WORLD_REF = {
  installation: 2,
  repository: HELLO_WORLD,
  name: "Codertocat/Hello-World",
};

function receive(app: TestApp, name: string, payload: unknown, id = `d-${Math.random()}`) {
  return app.probot.receive({ id, name, payload } as never);
}

/** An item of the issues listing, which holds pull requests too (with a `pull_request` field). */
function listed(number: number, pull = false) {
  return {
    number,
    title: `${pull ? "Pull request" : "Issue"} ${number} from before`,
    body: "Found by the backfill.",
    state: "closed",
    user: { login: "octocat" },
    labels: [],
    html_url: `https://github.com/Codertocat/Hello-World/${pull ? "pull" : "issues"}/${number}`,
    created_at: `2019-05-0${number}T10:00:00Z`,
    updated_at: "2019-05-10T10:00:00Z",
    ...(pull ? { pull_request: { url: "x" } } : {}),
  };
}

describe("an issue opened in a repository whose backfill found issues switched off", () => {
  it("runs the backfill at once, reading the issues listing from its first page", async () => {
    const app = await createTestApp({ backfills: true });
    // Found with issues off an hour ago, its pull requests read: the daily check is far off.
    const memory = await app.talos.memory.open(HELLO_WORLD_REF);
    const issuesDisabledAt = new Date(Date.now() - 3_600_000).toISOString();
    await memory.saveBackfillState({
      status: "done",
      repo: "Codertocat/Hello-World",
      listing: "pulls",
      page: 2,
      indexed: 1,
      last: { number: 4, createdAt: "2019-05-04T10:00:00Z" },
      issuesDisabledAt,
    });
    const scope = githubScope();
    mockInstallationToken(scope);
    // The event's configuration; the backfill's read of it is served from the cache.
    mockRepoConfig(scope);
    // The backfill asks for the repository as GitHub has it now, then lists its issues.
    mockRepositoryRead(scope, "Codertocat/Hello-World", HELLO_WORLD);
    scope
      .get(`${REPO}/issues`)
      .query({ state: "all", sort: "created", direction: "desc", per_page: "100", page: "1" })
      .reply(200, [listed(5), listed(4, true), listed(3)]);

    await receive(app, "issues", webhookExample("issues", "opened"));
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(await app.talos.memory.readBackfillState(HELLO_WORLD_REF)).toEqual({
      status: "done",
      repo: "Codertocat/Hello-World",
      page: 2,
      indexed: 3,
      last: { number: 3, createdAt: "2019-05-03T10:00:00Z" },
    });
    const ids = (await (await app.talos.memory.open(HELLO_WORLD_REF)).list()).map((r) => r.id);
    // The opened issue (its handler), and what the issues listing held.
    expect(ids.sort()).toEqual(["issue-1", "issue-3", "issue-5", "pull_request-4"]);
  });
});

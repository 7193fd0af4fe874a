import { Probot, ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { listInstalledRepositories } from "../../src/github/list-installed-repositories.js";
import type { Octokit } from "../../src/github/octokit.js";
import { githubScope, mockInstallationToken } from "../helpers/github-mocks.js";
import { captureLogs, TEST_APP_ID, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

const APP_JWT = /^bearer eyJ/i;

/** The server's Probot: the app's client (a JWT) and each installation's. */
async function clients() {
  const logs = await captureLogs("warn");
  const probot = new Probot({
    appId: TEST_APP_ID,
    privateKey: TEST_PRIVATE_KEY,
    log: logs.log,
    Octokit: ProbotOctokit.defaults((o: Record<string, any>) => ({
      ...o,
      retry: { enabled: false },
      throttle: { ...o.throttle, enabled: false },
    })),
  });
  return {
    app: (await probot.auth()) as unknown as Octokit,
    auth: async (id: number) => (await probot.auth(id)) as unknown as Octokit,
    logs,
  };
}

const repository = (id: number, name: string) => ({ id, full_name: `acme/${name}` });

describe("listInstalledRepositories", () => {
  it("lists every installation and its repositories, page after page, reading none of a suspended one's", async () => {
    const scope = githubScope();
    scope
      .get("/app/installations")
      .query({ per_page: "100" })
      .matchHeader("authorization", APP_JWT)
      .reply(200, [
        { id: 2, suspended_at: null },
        { id: 3, suspended_at: "2026-11-01T00:00:00Z" },
        { id: 4, suspended_at: null },
      ]);
    mockInstallationToken(scope, 2);
    scope
      .get("/installation/repositories")
      .query({ per_page: "100" })
      .reply(
        200,
        { total_count: 101, repositories: [repository(1, "one")] },
        {
          link: '<https://api.github.com/installation/repositories?per_page=100&page=2>; rel="next"',
        },
      )
      .get("/installation/repositories")
      .query({ per_page: "100", page: "2" })
      .reply(200, { total_count: 101, repositories: [repository(2, "two")] });
    // Suspended since the listing: its token is refused.
    scope
      .post("/app/installations/4/access_tokens")
      .reply(403, { message: "This installation has been suspended" });
    const { app, auth, logs } = await clients();

    const held = await listInstalledRepositories(app, auth, logs.log);

    expect(scope.pendingMocks()).toEqual([]);
    expect(held).toEqual({
      installations: [2, 3, 4],
      // Suspended, when listed or since: their repositories are not known.
      read: [2],
      repositories: [
        { installation: 2, repository: 1, name: "acme/one" },
        { installation: 2, repository: 2, name: "acme/two" },
      ],
      // Since when, for its unsuspension's catch-up.
      suspended: [{ installation: 3, at: "2026-11-01T00:00:00Z" }],
    });
    expect(logs.text()).toContain('"installation":4');
  });

  it("fails when a listing fails otherwise: a partial list would pass for the whole", async () => {
    const scope = githubScope();
    scope
      .get("/app/installations")
      .query({ per_page: "100" })
      .reply(200, [{ id: 2, suspended_at: null }]);
    mockInstallationToken(scope, 2);
    scope.get("/installation/repositories").query({ per_page: "100" }).reply(502, "Bad Gateway");
    const { app, auth, logs } = await clients();

    await expect(listInstalledRepositories(app, auth, logs.log)).rejects.toMatchObject({
      status: 502,
    });
    expect(scope.pendingMocks()).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { createRepoClient } from "../../src/github/create-repo-client.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { githubScope, INSTALLATION_TOKEN, mockInstallationToken } from "../helpers/github-mocks.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";

const REPO = { owner: "Codertocat", repo: "Hello-World" };
const repoBody = (name: string) => ({
  full_name: `Codertocat/${name}`,
  default_branch: "main",
  private: false,
  visibility: "public",
  archived: false,
  description: name,
});

async function client(app: TestApp, installation = 2) {
  return createRepoClient(await app.probot.auth(installation), REPO);
}

async function cacheCounts(app: TestApp) {
  const metric = await app.talos.metrics.cacheRequests.get();
  return Object.fromEntries(
    metric.values.map((v) => [`${v.labels.kind}:${v.labels.result}`, v.value]),
  );
}

describe("the GitHub request cache", () => {
  it("serves a repeated read from the cache", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get("/repos/Codertocat/Hello-World").once().reply(200, repoBody("Hello-World"));
    const github = await client(app);

    const first = await github.getRepository();
    const second = await github.getRepository();

    expect(scope.pendingMocks()).toEqual([]);
    expect(second).toEqual(first);
    expect(await cacheCounts(app)).toEqual({ "repo:miss": 1, "repo:hit": 1 });
  });

  it("keeps two installations apart, even for the same repository name", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope, 2);
    scope.post("/app/installations/3/access_tokens").reply(201, {
      token: "ghs_otherInstallation000000000000",
      expires_at: "2999-01-01T00:00:00Z",
    });
    scope
      .get("/repos/Codertocat/Hello-World")
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .once()
      .reply(200, repoBody("first"));
    scope
      .get("/repos/Codertocat/Hello-World")
      .matchHeader("authorization", "token ghs_otherInstallation000000000000")
      .once()
      .reply(200, repoBody("second"));
    const two = await client(app, 2);
    const three = await client(app, 3);

    expect((await two.getRepository()).description).toBe("first");
    expect((await three.getRepository()).description).toBe("second");
    expect((await two.getRepository()).description).toBe("first");
    expect((await three.getRepository()).description).toBe("second");
    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.cache.size).toBe(2);
  });

  it("turns 50 concurrent misses into one request", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope
      .get("/repos/Codertocat/Hello-World/labels")
      .query(true)
      .once()
      .delay(20)
      .reply(200, [{ name: "bug", description: null }]);
    const github = await client(app);

    const results = await Promise.all(Array.from({ length: 50 }, () => github.listLabels()));

    expect(results.every((labels) => labels[0]?.name === "bug")).toBe(true);
    expect(scope.pendingMocks()).toEqual([]);
    expect((await cacheCounts(app))["labels:miss"]).toBe(1);
    expect((await cacheCounts(app))["labels:hit"]).toBe(49);
  });

  it("revalidates an expired entry with its ETag and refreshes it on 304", async () => {
    const clock = createFakeClock();
    const app = await createTestApp({ clock, env: { TALOS_CACHE_TTL_MS: "60000" } });
    const scope = githubScope();
    mockInstallationToken(scope);
    scope
      .get("/repos/Codertocat/Hello-World")
      .once()
      .reply(200, repoBody("Hello-World"), { etag: 'W/"v1"' });
    scope
      .get("/repos/Codertocat/Hello-World")
      .matchHeader("if-none-match", 'W/"v1"')
      .once()
      .reply(304, "", { etag: 'W/"v1"' });
    const github = await client(app);

    const fresh = await github.getRepository();
    clock.advance(61_000);
    const revalidated = await github.getRepository();
    clock.advance(30_000);
    const refreshed = await github.getRepository(); // within the renewed TTL: no request

    expect(scope.pendingMocks()).toEqual([]);
    expect(revalidated).toEqual(fresh);
    expect(refreshed).toEqual(fresh);
    expect(await cacheCounts(app)).toEqual({
      "repo:miss": 1,
      "repo:revalidated": 1,
      "repo:hit": 1,
    });
  });

  it("replaces an expired entry when GitHub has a newer one", async () => {
    const clock = createFakeClock();
    const app = await createTestApp({ clock, env: { TALOS_CACHE_TTL_MS: "1000" } });
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get("/repos/Codertocat/Hello-World").once().reply(200, repoBody("old"), { etag: '"v1"' });
    scope
      .get("/repos/Codertocat/Hello-World")
      .matchHeader("if-none-match", '"v1"')
      .once()
      .reply(200, repoBody("new"), { etag: '"v2"' });
    const github = await client(app);

    expect((await github.getRepository()).description).toBe("old");
    clock.advance(2000);
    expect((await github.getRepository()).description).toBe("new");
    expect((await github.getRepository()).description).toBe("new");
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("caches the config file's 404s, the owner's .github fallback included", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope
      .get("/repos/Codertocat/Hello-World/contents/.github%2Ftalos.yml")
      .once()
      .reply(404, { message: "Not Found" });
    scope
      .get("/repos/Codertocat/.github/contents/.github%2Ftalos.yml")
      .once()
      .reply(404, { message: "Not Found" });
    const octokit = await app.probot.auth(2);

    for (let i = 0; i < 3; i++) {
      const { files } = await octokit.config.get({ ...REPO, path: ".github/talos.yml" });
      expect(files.map((f) => f.config)).toEqual([null, null]);
    }
    expect(scope.pendingMocks()).toEqual([]);
    expect(await cacheCounts(app)).toEqual({ "config:miss": 2, "config:hit": 4 });
  });

  it("hands each caller its own copy", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope
      .get("/repos/Codertocat/Hello-World/labels")
      .query(true)
      .once()
      .reply(200, [{ name: "bug", description: null }]);
    const octokit = await app.probot.auth(2);

    const first = await octokit.rest.issues.listLabelsForRepo(REPO);
    first.data[0]!.name = "changed by a caller";
    const second = await octokit.rest.issues.listLabelsForRepo(REPO);

    expect(second.data[0]?.name).toBe("bug");
  });

  it("does not cache reads that change with every comment", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get("/repos/Codertocat/Hello-World/issues/1/comments").twice().reply(200, []);
    const octokit = await app.probot.auth(2);

    await octokit.rest.issues.listComments({ ...REPO, issue_number: 1 });
    await octokit.rest.issues.listComments({ ...REPO, issue_number: 1 });

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.cache.size).toBe(0);
  });
});

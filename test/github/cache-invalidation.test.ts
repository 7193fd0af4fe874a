import nock from "nock";
import { describe, expect, it } from "vitest";
import { ANY_INSTALLATION, GitHubCache, type CacheEntry } from "../../src/github/github-cache.js";
import { getCacheEvictions } from "../../src/github/get-cache-evictions.js";
import { loadRepoConfigOf } from "../../src/github/load-repo-config.js";
import type { Octokit } from "../../src/github/octokit.js";
import { API, mockInstallationToken, mockRepoConfig } from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = { owner: "Codertocat", repo: "Hello-World" };
const PATH = "/repos/Codertocat/Hello-World";

/** The cached reads of one repository, each with the path it requests. */
const READS: Record<string, [string, (o: Octokit) => Promise<unknown>]> = {
  repo: [PATH, (o) => o.rest.repos.get(REPO)],
  labels: [`${PATH}/labels`, (o) => o.rest.issues.listLabelsForRepo(REPO)],
  config: [
    `${PATH}/contents/.github%2Ftalos.yml`,
    (o) => o.rest.repos.getContent({ ...REPO, path: ".github/talos.yml" }),
  ],
  file: [
    `${PATH}/contents/README.md`,
    (o) => o.rest.repos.getContent({ ...REPO, path: "README.md" }),
  ],
  permission: [
    `${PATH}/collaborators/hacktocat/permission`,
    (o) => o.rest.repos.getCollaboratorPermissionLevel({ ...REPO, username: "hacktocat" }),
  ],
  issue1: [`${PATH}/issues/1`, (o) => o.rest.issues.get({ ...REPO, issue_number: 1 })],
  issue2: [`${PATH}/issues/2`, (o) => o.rest.issues.get({ ...REPO, issue_number: 2 })],
  pull2: [`${PATH}/pulls/2`, (o) => o.rest.pulls.get({ ...REPO, pull_number: 2 })],
};
const ALL = Object.keys(READS);

async function primeCache(app: TestApp): Promise<Octokit> {
  const tokens = nock(API);
  mockInstallationToken(tokens);
  const octokit = await app.probot.auth(2);
  for (const [path, read] of Object.values(READS)) {
    const scope = nock(API).get(path).query(true).reply(200, {});
    await read(octokit);
    expect(scope.isDone()).toBe(true);
  }
  return octokit;
}

/** Reads everything again; a read that reaches GitHub was evicted, one that does not was kept. */
async function evictedReads(octokit: Octokit): Promise<string[]> {
  const evicted: string[] = [];
  for (const [name, [path, read]] of Object.entries(READS)) {
    const scope = nock(API).get(path).query(true).reply(200, {});
    await read(octokit);
    if (scope.isDone()) evicted.push(name);
  }
  nock.cleanAll();
  return evicted;
}

async function deliver(app: TestApp, name: string, payload: Record<string, unknown>) {
  if (name === "issues" || name === "pull_request") {
    // These events also update memory, which reads the repository's config (here: none).
    nock(API)
      .get(`${PATH}/contents/.github%2Ftalos.yml`)
      .reply(404, {})
      .get("/repos/Codertocat/.github/contents/.github%2Ftalos.yml")
      .reply(404, {});
  }
  await app.probot.receive({ id: `invalidate-${Math.random()}`, name, payload } as never);
}

const helloWorld = {
  full_name: "Codertocat/Hello-World",
  name: "Hello-World",
  owner: { login: "Codertocat" },
  default_branch: "master",
};

describe("cache invalidation by webhook", () => {
  const cases: Array<
    [string, string, string | undefined, (p: Record<string, any>) => void, string[]]
  > = [
    ["label.created evicts the labels", "label", "created", () => undefined, ["labels"]],
    // A renamed or deleted label changes every issue and pull request that carries it, and
    // GitHub sends no issues.unlabeled (nor anything else) for them.
    [
      "label.edited evicts the labels, and the issues and pull requests that show it",
      "label",
      "edited",
      () => undefined,
      ["labels", "issue1", "issue2", "pull2"],
    ],
    [
      "label.deleted evicts the labels, and the issues and pull requests that showed it",
      "label",
      "deleted",
      () => undefined,
      ["labels", "issue1", "issue2", "pull2"],
    ],
    [
      "repository.privatized evicts the repository, and its config and files",
      "repository",
      "privatized",
      () => undefined,
      ["repo", "config", "file"],
    ],
    [
      "repository.publicized evicts the repository, and its config and files",
      "repository",
      "publicized",
      () => undefined,
      ["repo", "config", "file"],
    ],
    [
      "repository.edited evicts the repository",
      "repository",
      "edited",
      (p) => {
        p.repository = { ...p.repository, ...helloWorld };
        p.changes = { description: { from: "old" } };
      },
      ["repo"],
    ],
    [
      "repository.edited with a new default branch evicts everything read from the old one",
      "repository",
      "edited",
      (p) => {
        p.repository = { ...p.repository, ...helloWorld };
        p.changes = { default_branch: { from: "main" } };
      },
      ALL,
    ],
    [
      "repository.renamed evicts everything under the old name",
      "repository",
      "renamed",
      (p) => {
        p.repository = {
          ...p.repository,
          full_name: "Codertocat/Hello-Universe",
          name: "Hello-Universe",
          owner: { login: "Codertocat" },
        };
        p.changes = { repository: { name: { from: "Hello-World" } } };
      },
      ALL,
    ],
    [
      // What was read under its name before it existed were 404s (the owner's .github fallback).
      "repository.created evicts everything read under its name",
      "repository",
      "created",
      (p) => (p.repository = { ...p.repository, ...helloWorld }),
      ALL,
    ],
    [
      "repository.transferred evicts everything under the old owner",
      "repository",
      "transferred",
      (p) => {
        p.repository = {
          ...p.repository,
          full_name: "Octocoders/Hello-World",
          name: "Hello-World",
          owner: { login: "Octocoders" },
        };
        p.changes = { owner: { from: { user: { login: "Codertocat" } } } };
      },
      ALL,
    ],
    [
      "a push to the default branch that changes .github/talos.yml evicts the config and files",
      "push",
      undefined,
      (p) => {
        p.ref = "refs/heads/master";
        p.commits = [{ added: [], removed: [], modified: [".github/talos.yml"] }];
      },
      ["config", "file"],
    ],
    [
      "a force-push to the default branch evicts the config: the commits it dropped are not listed",
      "push",
      undefined,
      (p) => {
        p.ref = "refs/heads/master";
        p.forced = true;
        p.commits = [{ added: [], removed: [], modified: ["README.md"] }];
      },
      ["config", "file"],
    ],
    [
      "a push to the default branch that leaves the config alone evicts only files",
      "push",
      undefined,
      (p) => {
        p.ref = "refs/heads/master";
        p.commits = [{ added: ["src/index.js"], removed: [], modified: ["README.md"] }];
      },
      ["file"],
    ],
    [
      "a push to another branch evicts only files",
      "push",
      undefined,
      (p) => {
        p.ref = "refs/heads/feature";
        p.commits = [{ added: [], removed: [], modified: [".github/talos.yml"] }];
      },
      ["file"],
    ],
    [
      "installation.deleted evicts every entry of the installation",
      "installation",
      "deleted",
      () => undefined,
      ALL,
    ],
    [
      "installation.suspend evicts every entry of the installation",
      "installation",
      "suspend",
      () => undefined,
      ALL,
    ],
    [
      "installation_repositories.removed evicts the removed repository",
      "installation_repositories",
      "removed",
      (p) => (p.repositories_removed = [{ full_name: "Codertocat/Hello-World" }]),
      ALL,
    ],
    [
      "member.added evicts that collaborator's permission",
      "member",
      "added",
      () => undefined,
      ["permission"],
    ],
    ["issues.edited evicts that issue", "issues", "edited", () => undefined, ["issue1"]],
    [
      "issues.closed evicts that issue",
      "issues",
      "labeled",
      (p) => (p.action = "closed"),
      ["issue1"],
    ],
    [
      "pull_request.closed evicts that pull request and its issue",
      "pull_request",
      "closed",
      () => undefined,
      ["issue2", "pull2"],
    ],
    [
      "a bot's change still evicts",
      "label",
      "created",
      (p) => (p.sender = { login: "renovate[bot]", type: "Bot" }),
      ["labels"],
    ],
  ];

  it.each(cases)("%s", async (_title, name, action, change, expected) => {
    const app = await createTestApp();
    const octokit = await primeCache(app);
    const payload = webhookExample(name, action);
    change(payload);

    await deliver(app, name, payload);

    expect((await evictedReads(octokit)).sort()).toEqual([...expected].sort());
  });

  it("never evicts another installation's entries", async () => {
    const app = await createTestApp();
    const octokit = await primeCache(app);
    await deliver(app, "installation", webhookExample("installation", "deleted", 3));
    await deliver(app, "label", webhookExample("label", "created", 3));
    expect(await evictedReads(octokit)).toEqual([]);
  });
});

/** Resolves once `scope` has received a request (its reply may still be delayed). */
function requested(scope: nock.Scope): Promise<void> {
  return new Promise((resolve) => scope.once("request", () => resolve()));
}

const labelNames = (response: { data: Array<{ name: string }> }) =>
  response.data.map((l) => l.name);

describe("cache invalidation of reads in flight", () => {
  it("does not keep a read that was in flight when label.created evicted the labels", async () => {
    const app = await createTestApp();
    const tokens = nock(API);
    mockInstallationToken(tokens);
    const octokit = await app.probot.auth(2);
    const slow = nock(API)
      .get(`${PATH}/labels`)
      .query(true)
      .delay(200)
      .reply(200, [{ name: "old", description: null }]);
    const inFlight = octokit.rest.issues.listLabelsForRepo(REPO);
    await requested(slow);

    await deliver(app, "label", webhookExample("label", "created"));
    // Its caller asked before the change and gets what GitHub said then.
    expect(labelNames(await inFlight)).toEqual(["old"]);

    const fresh = nock(API)
      .get(`${PATH}/labels`)
      .query(true)
      .reply(200, [{ name: "new", description: null }]);
    expect(labelNames(await octokit.rest.issues.listLabelsForRepo(REPO))).toEqual(["new"]);
    // And what that read brought is kept.
    expect(labelNames(await octokit.rest.issues.listLabelsForRepo(REPO))).toEqual(["new"]);
    expect(tokens.pendingMocks()).toEqual([]);
    expect(slow.pendingMocks()).toEqual([]);
    expect(fresh.pendingMocks()).toEqual([]);
  });

  it("sends a read made after the eviction to GitHub, not to the load in flight", async () => {
    const app = await createTestApp();
    const tokens = nock(API);
    mockInstallationToken(tokens);
    const octokit = await app.probot.auth(2);
    const scope = nock(API)
      .get(`${PATH}/labels`)
      .query(true)
      .delay(200)
      .reply(200, [{ name: "old", description: null }])
      .get(`${PATH}/labels`)
      .query(true)
      .reply(200, [{ name: "new", description: null }]);
    const inFlight = octokit.rest.issues.listLabelsForRepo(REPO);
    await requested(scope);
    // Asked before the change, so it shares the load (one request) and its answer.
    const joined = octokit.rest.issues.listLabelsForRepo(REPO);

    await deliver(app, "label", webhookExample("label", "created"));
    const after = await octokit.rest.issues.listLabelsForRepo(REPO);

    expect(labelNames(after)).toEqual(["new"]);
    expect(labelNames(await inFlight)).toEqual(["old"]);
    expect(labelNames(await joined)).toEqual(["old"]);
    // The old load ended last, and did not replace the newer entry.
    expect(labelNames(await octokit.rest.issues.listLabelsForRepo(REPO))).toEqual(["new"]);
    expect(tokens.pendingMocks()).toEqual([]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("does not keep a load in flight when another instance's eviction arrives", async () => {
    const cache = new GitHubCache({ ttlMs: 300_000, max: 100, clock: { now: () => 0 } });
    const scope = { installation: "2", repo: "codertocat/hello-world", kind: "labels" as const };
    const labels = (name: string): CacheEntry => ({
      type: "response",
      response: { status: 200, url: "", headers: {}, data: [name] },
    });
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const inFlight = cache.fetch(scope, "GET labels", async () => {
      await gate;
      return labels("old");
    });

    const evicted = cache.evictFromPeer({ installation: "2", repo: "codertocat/hello-world" });
    release();
    expect(await inFlight).toEqual(labels("old"));

    const next = await cache.fetch(scope, "GET labels", async () => labels("new"));
    expect(next).toEqual(labels("new"));
    // The debug log of evictions counts it.
    expect(evicted).toBe(1);
  });
});

describe("cache invalidation when the app gains a repository", () => {
  it("installation_repositories.added of the owner's .github repository forgets its cached 404", async () => {
    const app = await createTestApp();
    const scope = nock(API);
    mockInstallationToken(scope);
    const octokit = await app.probot.auth(2);
    const helloWorld = { owner: "Codertocat", repo: "Hello-World" };
    // Before the app could see Codertocat/.github: neither file exists, and both 404s are kept.
    mockRepoConfig(scope);
    expect((await loadRepoConfigOf(octokit, helloWorld, app.logs.log)).found).toBe(false);
    expect(scope.pendingMocks()).toEqual([]);

    const dotGithub = {
      id: 186853008,
      node_id: "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDg=",
      name: ".github",
      full_name: "Codertocat/.github",
      private: false,
    };
    const payload = loadFixture<Record<string, unknown>>("installation_repositories.added.json");
    payload.repositories_added = [dotGithub];
    // The backfill the event queues would read the same file, racing the read below: stopped.
    await app.talos.backfill.close();
    scope
      .get("/repos/Codertocat/.github/contents/.github%2Ftalos.yml")
      .reply(200, "memory:\n  enabled: false\n", {
        "content-type": "application/vnd.github.raw; charset=utf-8",
      });
    await deliver(app, "installation_repositories", payload);

    // Hello-World's own 404 still holds; the org-wide file is found.
    const loaded = await loadRepoConfigOf(octokit, helloWorld, app.logs.log);
    expect(loaded.found).toBe(true);
    expect(loaded.config.memory.enabled).toBe(false);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe("cache invalidation of a delivery listing many repositories", () => {
  const listing = (count: number) => ({
    action: "added",
    installation: { id: 2 },
    repositories_added: Array.from({ length: count }, (_, i) => ({ full_name: `Acme/R${i}` })),
    repositories_removed: [],
  });

  it("evicts a few repositories one by one", () => {
    expect(getCacheEvictions("installation_repositories", listing(3))).toEqual([
      { installation: "2", repo: "acme/r0" },
      { installation: "2", repo: "acme/r1" },
      { installation: "2", repo: "acme/r2" },
    ]);
  });

  it("evicts the installation whole, in one pass over the cache, for an organisation's thousands", () => {
    // One pass each: 2,000 of them over a full cache held the event loop for seconds.
    expect(getCacheEvictions("installation_repositories", listing(2_000))).toEqual([
      { installation: "2" },
    ]);
  });
});

describe("cache invalidation across installations", () => {
  // Installation 2's repository extends other-org/base, a public repository installation 3
  // holds: GitHub tells installation 3 alone of the base's changes.
  const raw = { "content-type": "application/vnd.github.raw; charset=utf-8" };
  const file = "/contents/.github%2Ftalos.yml";
  const wide = "commands:\n  allowed_associations: [OWNER, MEMBER, COLLABORATOR]\n";

  /** Installation 2's config, read once (its base's wide settings now cached). */
  async function readThroughBase(app: TestApp): Promise<Octokit> {
    mockInstallationToken(nock(API), 2);
    const octokit = await app.probot.auth(2);
    const scope = nock(API)
      .get(`${PATH}${file}`)
      .reply(200, "_extends: other-org/base\n", raw)
      .get(`/repos/other-org/base${file}`)
      .reply(200, wide, raw);
    const before = await loadRepoConfigOf(octokit as never, REPO, app.logs.log);
    expect(before.config.commands.allowed_associations).toContain("MEMBER");
    expect(scope.pendingMocks()).toEqual([]);
    return octokit;
  }

  /** `payload` (sent to installation 3) made other-org/base's. */
  function ofBase(payload: Record<string, any>): Record<string, any> {
    payload.installation = { id: 3 };
    payload.repository = {
      ...payload.repository,
      full_name: "other-org/base",
      name: "base",
      owner: { ...payload.repository.owner, login: "other-org" },
      default_branch: "main",
    };
    return payload;
  }

  it("a push evicts a config another installation read through `_extends`", async () => {
    // The push that narrowed the base went to installation 3 only, and installation 2 kept the
    // wider settings until the TTL ran out (found by a review).
    const app = await createTestApp();
    const octokit = await readThroughBase(app);
    const payload = ofBase(webhookExample("push", undefined, 3));
    payload.ref = "refs/heads/main";
    payload.commits = [{ added: [], removed: [], modified: [".github/talos.yml"] }];
    await app.probot.receive({ id: "push-to-base", name: "push", payload } as never);

    // The repository's own file is still cached; the base is read anew.
    const scope = nock(API)
      .get(`/repos/other-org/base${file}`)
      .reply(200, "commands:\n  allowed_associations: [OWNER]\n", raw);
    const after = await loadRepoConfigOf(octokit as never, REPO, app.logs.log);
    expect(after.config.commands.allowed_associations).toEqual(["OWNER"]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  // GitHub sends no push for these: installation 2 kept the base's wider settings for the TTL
  // after it was gone, private, or read from another branch (found by a review).
  const changes: Array<[string, () => Record<string, any>, number, string]> = [
    ["deleted", () => loadFixture("repository.deleted.json"), 404, "{}"],
    ["made private", () => webhookExample("repository", "privatized"), 404, "{}"],
    [
      "given a new default branch",
      () => ({
        ...webhookExample("repository", "edited"),
        changes: { default_branch: { from: "master" } },
      }),
      200,
      "commands:\n  allowed_associations: [OWNER]\n",
    ],
  ];

  it.each(changes)(
    "a base %s is read anew by the installation that extends it",
    async (_what, event, status, body) => {
      const app = await createTestApp();
      const octokit = await readThroughBase(app);
      const payload = ofBase(event());
      await app.probot.receive({
        id: `base-${payload.action}`,
        name: "repository",
        payload,
      } as never);

      // GitHub's answer after the change: the file gone (404), or the new branch's narrower one.
      const scope = nock(API)
        .get(`/repos/other-org/base${file}`)
        .reply(status, body, status === 200 ? raw : {});
      const after = await loadRepoConfigOf(octokit as never, REPO, app.logs.log);
      expect(after.config.commands.allowed_associations).toEqual(["OWNER"]);
      expect(scope.pendingMocks()).toEqual([]);
    },
  );

  it("a renamed repository's config and files go under both names, in every installation", () => {
    const renamed = {
      action: "renamed",
      installation: { id: 3 },
      repository: { full_name: "Acme/Base-2", name: "Base-2", owner: { login: "Acme" } },
      changes: { repository: { name: { from: "Base" } } },
    };
    const everywhere = getCacheEvictions("repository", renamed).filter(
      (s) => s.installation === ANY_INSTALLATION,
    );
    expect(everywhere).toEqual([
      { installation: ANY_INSTALLATION, repo: "acme/base-2", kind: "config" },
      { installation: ANY_INSTALLATION, repo: "acme/base-2", kind: "file" },
      { installation: ANY_INSTALLATION, repo: "acme/base", kind: "config" },
      { installation: ANY_INSTALLATION, repo: "acme/base", kind: "file" },
    ]);
  });

  it("evicts one repository's kind in every installation, and nothing else", async () => {
    const cache = new GitHubCache({ ttlMs: 60_000, max: 100, clock: { now: () => 0 } });
    const entry: CacheEntry = {
      type: "response",
      response: { status: 200, url: "u", headers: {}, data: {} },
    };
    const keys = [
      ["2", "acme/base", "config"],
      ["3", "acme/base", "config"],
      ["3", "acme/base", "file"],
      ["3", "acme/base-2", "config"],
      ["3", "other/acme/base", "config"],
    ] as const;
    for (const [installation, repo, kind] of keys)
      await cache.fetch({ installation, repo, kind, subject: "x" }, "GET x", async () => entry);

    expect(cache.evict({ installation: ANY_INSTALLATION, repo: "acme/base", kind: "config" })).toBe(
      2,
    );
    expect(cache.size).toBe(3);
  });
});

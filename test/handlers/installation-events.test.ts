import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type nock from "nock";
import { writeFileSync } from "node:fs";
import { describe, expect, it, onTestFinished } from "vitest";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import { createManualClock } from "../helpers/fake-clock.js";
import {
  githubScope,
  mockInstallationToken,
  mockRepoConfig,
  mockRepositoryRead,
} from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, makeDataDir, type TestApp } from "../helpers/test-app.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";
import { issueMemory } from "../helpers/test-memory.js";
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

/** Codertocat/Hello-World's id in the example payloads. */
const HELLO_WORLD = 186853002;

/** An edit of Hello-World's issue #1 whose first run fails (GitHub answers 500), to be retried. */
async function journalFailedEdit(app: TestApp, scope: nock.Scope) {
  mockInstallationToken(scope);
  scope
    .get("/repos/Codertocat/Hello-World/contents/.github%2Ftalos.yml")
    .reply(500, { message: "Server Error" });
  await receive(app, "issues", webhookExample("issues", "edited"), "delivery-edit");
  expect(app.talos.services.journal!.list()).toMatchObject([
    { id: "delivery-edit", attempts: 1, retryAt: expect.any(Number) },
  ]);
}

function helloWorldRemoved() {
  const removed = webhookExample("installation_repositories", "removed");
  removed.repositories_removed = [
    { id: HELLO_WORLD, name: "Hello-World", full_name: "Codertocat/Hello-World", private: false },
  ];
  return removed;
}

/** GitHub's answer to the app's own question: is it installed on Hello-World? No. */
function notInstalled(scope: nock.Scope) {
  scope
    .get("/repos/Codertocat/Hello-World/installation")
    .reply(404, { message: "Not Found", documentation_url: "https://docs.github.com" });
}

describe("a job journaled before its repository left, run after", () => {
  it("does not bring back the memory of a repository removed from the installation", async () => {
    const dataDir = makeDataDir();
    const clock = createManualClock();
    const app = await createTestApp({ dataDir, clock });
    const directory = join(dataDir, "memory", "2", String(HELLO_WORLD));
    const seeded = await app.talos.memory.open({
      installation: 2,
      repository: HELLO_WORLD,
      name: "Codertocat/Hello-World",
    });
    await seeded.add(issueMemory(1, "Spelling error", { repo: "Codertocat/Hello-World" }));
    const scope = githubScope();
    await journalFailedEdit(app, scope);

    await receive(app, "installation_repositories", helloWorldRemoved(), "delivery-removed");
    expect(existsSync(directory)).toBe(false);
    // The edit's retry comes: it reads the config again, then finds its memory gone, and GitHub
    // says the app is not installed on the repository any more.
    mockRepoConfig(scope);
    notInstalled(scope);
    await clock.advance(60_000);
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(existsSync(directory)).toBe(false);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(app.logs.text()).toContain("job dropped");
  });

  it("does not bring back a deleted repository's memory after a restart", async () => {
    const dataDir = makeDataDir();
    const first = await createTestApp({ dataDir, clock: createManualClock() });
    const scope = githubScope();
    await journalFailedEdit(first, scope);
    const deleted = loadFixture<Record<string, any>>("repository.deleted.json");
    deleted.repository = { ...deleted.repository, id: HELLO_WORLD };
    await receive(first, "repository", deleted, "delivery-deleted");
    await first.talos.close();

    // The next start resumes the edit, whose retry is due.
    const clock = createManualClock();
    const second = await createTestApp({ dataDir, clock });
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    notInstalled(scope);
    await clock.advance(60_000);
    await second.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(existsSync(join(dataDir, "memory", "2", String(HELLO_WORLD)))).toBe(false);
    expect(second.talos.services.journal!.list()).toEqual([]);
  });

  it("opens the memory of a removed repository again once it is added back, for a new backfill", async () => {
    const app = await createTestApp({ backfills: true });
    const ref = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };
    await (
      await app.talos.memory.open(ref)
    ).add(issueMemory(1, "Spelling error", { repo: "Codertocat/Hello-World" }));
    await receive(app, "installation_repositories", helloWorldRemoved(), "delivery-removed");
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);

    const added = helloWorldAdded();
    // GitHub confirms it (the event may be older than the removal, redelivered late); its
    // backfill starts (the repository's read is GitHub's answer, cached), and finds one issue.
    const scope = githubScope();
    scope.get("/repos/Codertocat/Hello-World/installation").reply(200, { id: 2, app_id: 1 });
    mockInstallationToken(scope);
    mockRepositoryRead(scope, "Codertocat/Hello-World", HELLO_WORLD);
    mockRepoConfig(scope);
    scope
      .get("/repos/Codertocat/Hello-World/issues")
      .query({ state: "all", sort: "created", direction: "desc", per_page: "100", page: "1" })
      .reply(200, [
        {
          number: 5,
          title: "An issue still open",
          body: "Found again.",
          state: "open",
          user: { login: "octocat" },
          labels: [],
          html_url: "https://github.com/Codertocat/Hello-World/issues/5",
          created_at: "2025-01-01T00:00:00Z",
        },
      ]);
    await receive(app, "installation_repositories", added, "delivery-added");
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await app.talos.memory.open(ref);
    expect((await memory.list()).map((r) => r.id)).toEqual(["issue-5"]);
  });
});

/** Hello-World's installation_repositories.added, as `helloWorldRemoved` is its removal. */
function helloWorldAdded() {
  const added = helloWorldRemoved();
  Object.assign(added, {
    action: "added",
    repositories_added: added.repositories_removed,
    repositories_removed: [],
  });
  return added;
}

/**
 * GitHub redelivers failed deliveries oldest first (at the next start, or `talos redeliver`):
 * Hello-World's installation_repositories.added, whose delivery failed while Talos was down,
 * comes after its removal, delivered later and handled meanwhile.
 */
describe("an installation_repositories.added redelivered after the repository's removal", () => {
  /** Hello-World's memory, removed with the repository from installation 2. */
  async function removedMemory(options: Parameters<typeof createTestApp>[0] = {}) {
    const app = await createTestApp({ backfills: true, ...options });
    const ref = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };
    await (
      await app.talos.memory.open(ref)
    ).add(issueMemory(7, "Secret from before", { repo: "Codertocat/Hello-World" }));
    await receive(app, "installation_repositories", helloWorldRemoved(), "delivery-removed");
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    return { app, ref };
  }

  it("keeps the memory deleted when GitHub says the installation no longer holds the repository, and so does an edit redelivered after it", async () => {
    const dataDir = makeDataDir();
    const { app, ref } = await removedMemory({ dataDir });
    const scope = githubScope();
    // Asked by the added event, then by the edit's job, which finds its memory refused.
    notInstalled(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    notInstalled(scope);

    await receive(app, "installation_repositories", helloWorldAdded(), "delivery-added");
    await receive(app, "issues", webhookExample("issues", "edited"), "delivery-edit");
    await app.talos.services.jobs.idle();
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(await app.talos.memory.has(ref)).toBe(false);
    expect(existsSync(join(dataDir, "memory", "2", String(HELLO_WORLD)))).toBe(false);
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(
      app.logs.lines().find((l) => String(l.msg).startsWith("memory kept deleted")),
    ).toMatchObject({ installation: 2, repository: "Codertocat/Hello-World" });
    expect(app.logs.text()).toContain("job dropped");
  });

  it("fails the event, to be retried, readmitting nothing, when GitHub cannot answer", async () => {
    const clock = createManualClock();
    const { app, ref } = await removedMemory({ clock });
    const scope = githubScope();
    scope.get("/repos/Codertocat/Hello-World/installation").reply(502, { message: "Bad Gateway" });

    await receive(app, "installation_repositories", helloWorldAdded(), "delivery-added");
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    expect(app.talos.services.journal!.list()).toMatchObject([
      { id: "delivery-added", attempts: 1, retryAt: expect.any(Number) },
    ]);

    // The retry finds GitHub answering: the repository is gone from the installation.
    notInstalled(scope);
    await clock.advance(60_000);
    await app.talos.services.jobs.idle();
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    expect(app.talos.services.journal!.list()).toEqual([]);
  });
});

describe("a repository added back while Talos missed the event", () => {
  /** Hello-World's memory, removed with the repository; the event adding it back never came. */
  async function removedMemory() {
    const clock = createManualClock();
    const app = await createTestApp({ backfills: true, clock });
    const ref = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };
    await (
      await app.talos.memory.open(ref)
    ).add(issueMemory(7, "Old text", { repo: "Codertocat/Hello-World" }));
    await receive(app, "installation_repositories", helloWorldRemoved(), "delivery-removed");
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    return { app, ref };
  }

  it("readmits the memory when GitHub says the installation holds the repository, and backfills it", async () => {
    const { app, ref } = await removedMemory();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.get("/repos/Codertocat/Hello-World/installation").reply(200, { id: 2, app_id: 1 });
    // The backfill the missed event would have started.
    mockRepositoryRead(scope, "Codertocat/Hello-World", HELLO_WORLD);
    scope
      .get("/repos/Codertocat/Hello-World/issues")
      .query({ state: "all", sort: "created", direction: "desc", per_page: "100", page: "1" })
      .reply(200, [
        {
          number: 5,
          title: "An issue from before",
          body: "Found by the backfill.",
          state: "open",
          user: { login: "octocat" },
          labels: [],
          html_url: "https://github.com/Codertocat/Hello-World/issues/5",
          created_at: "2025-01-01T00:00:00Z",
        },
      ]);
    const edited = webhookExample("issues", "edited");

    await receive(app, "issues", edited, "delivery-edit");
    await app.talos.services.jobs.idle();
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.services.journal!.list()).toEqual([]);
    const memory = await app.talos.memory.open(ref);
    // The removed memory stays gone (issue 7); the edit and the backfill fill the new one.
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(
      [`issue-${edited.issue.number}`, "issue-5"].sort(),
    );
    expect(
      app.logs.lines().find((l) => String(l.msg).startsWith("memory readmitted")),
    ).toMatchObject({ installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" });
  });

  it("keeps refusing it when GitHub names another installation (the repository moved)", async () => {
    const { app, ref } = await removedMemory();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.get("/repos/Codertocat/Hello-World/installation").reply(200, { id: 99, app_id: 1 });

    await receive(app, "issues", webhookExample("issues", "edited"), "delivery-edit");
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(app.logs.text()).toContain("job dropped");
  });

  it("keeps refusing it when the installation holds another repository of that name (deleted and created again)", async () => {
    const { app, ref } = await removedMemory();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.get("/repos/Codertocat/Hello-World/installation").reply(200, { id: 2, app_id: 1 });
    // The name is a new repository's now.
    mockRepositoryRead(scope, "Codertocat/Hello-World", HELLO_WORLD + 1);

    await receive(app, "issues", webhookExample("issues", "edited"), "delivery-edit");
    await app.talos.services.jobs.idle();
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    expect(await app.talos.memory.list()).toEqual([]);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(app.logs.text()).toContain("job dropped");
    expect(app.logs.text()).not.toContain("memory readmitted");
  });

  it("retries the job, refusing nothing for good, when GitHub cannot answer", async () => {
    const { app, ref } = await removedMemory();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.get("/repos/Codertocat/Hello-World/installation").reply(502, { message: "Bad Gateway" });

    await receive(app, "issues", webhookExample("issues", "edited"), "delivery-edit");
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    expect(app.talos.services.journal!.list()).toMatchObject([
      { id: "delivery-edit", attempts: 1, retryAt: expect.any(Number) },
    ]);
  });
});

describe("a job of a suspended installation", () => {
  it("is dropped with a reason, not parked, when GitHub refuses the installation's token", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    // GitHub's answer while the installation is suspended; the token is all the job asks for.
    scope.post("/app/installations/2/access_tokens").reply(403, {
      message: "This installation has been suspended",
      documentation_url:
        "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
    });

    await receive(app, "issues", webhookExample("issues", "edited"), "delivery-edit");

    expect(scope.pendingMocks()).toEqual([]);
    // Nothing left for `talos jobs` to list as needing an operator: unsuspended, GitHub sends
    // what happens next; it never sends what happened meanwhile.
    expect(app.talos.services.journal!.list()).toEqual([]);
    const dropped = app.logs.lines().find((l) => l.delivery === "delivery-edit" && l.level === 30);
    expect(dropped?.msg).toBe("job dropped: its installation is suspended");
  });
});

const SUSPENDED_AT = "2026-11-20T08:00:00.000Z";

/** GitHub's example of the event, suspended at SUSPENDED_AT. */
function installationEvent(action: "suspend" | "unsuspend") {
  const payload = webhookExample("installation", action);
  payload.installation.suspended_at = action === "suspend" ? SUSPENDED_AT : null;
  return payload;
}

/** The installation's repositories, as GitHub lists them to its token. */
const holds = (scope: nock.Scope, repositories: Array<[number, string]>) =>
  scope
    .get("/installation/repositories")
    .query({ per_page: "100" })
    .reply(200, {
      total_count: repositories.length,
      repositories: repositories.map(([id, full_name]) => ({ id, full_name })),
    });
/** Hello-World caught up from `since`: GitHub lists `issues` updated since. */
const caughtUpSince = (scope: nock.Scope, since: string, issues: unknown[]) => {
  mockRepositoryRead(scope, "Codertocat/Hello-World", HELLO_WORLD);
  mockRepoConfig(scope);
  scope
    .get("/repos/Codertocat/Hello-World/issues")
    .query({
      state: "all",
      sort: "updated",
      direction: "desc",
      since,
      per_page: "100",
      page: "1",
    })
    .reply(200, issues);
};

describe("an installation suspended, then unsuspended", () => {
  const ref = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };

  it("catches its memories up with what changed while GitHub sent nothing, after a restart too", async () => {
    const dataDir = makeDataDir();
    const first = await createTestApp({ backfills: true, dataDir });
    const before = await first.talos.memory.open(ref);
    await before.add(
      issueMemory(7, "Crash on save", {
        repo: "Codertocat/Hello-World",
        metadata: { updatedAt: "2026-11-19T00:00:00Z" },
      }),
    );
    await receive(first, "installation", installationEvent("suspend"), "delivery-suspend");
    await first.talos.close();

    // What changed meanwhile: issue 7 closed, issue 8 opened.
    const changed = (number: number, title: string, state: string) => ({
      number,
      title,
      body: `${title}, as the reporter wrote it.`,
      state,
      user: { login: "octocat" },
      labels: [],
      html_url: `https://github.com/Codertocat/Hello-World/issues/${number}`,
      created_at: "2026-11-01T00:00:00Z",
      updated_at: "2026-11-25T00:00:00Z",
    });
    const scope = githubScope();
    mockInstallationToken(scope);
    // The installation still holds the repository (one it left or gained meanwhile is deleted
    // or backfilled, as at a start's catch-up).
    holds(scope, [[HELLO_WORLD, "Codertocat/Hello-World"]]);
    caughtUpSince(scope, SUSPENDED_AT, [
      changed(8, "Saving fails on Windows", "open"),
      changed(7, "Crash on save", "closed"),
    ]);
    const second = await createTestApp({ backfills: true, dataDir });
    await receive(second, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await second.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await second.talos.memory.open(ref);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-7", "issue-8"]);
    expect(await memory.get("issue-7")).toMatchObject({ state: "closed" });
    expect(
      second.logs.lines().find((l) => l.msg === "catching up a suspended installation"),
    ).toMatchObject({ installation: 2, since: SUSPENDED_AT, queued: 1 });
    // The mark is gone: a second unsuspension (redelivered) catches nothing up again.
    await receive(second, "installation", installationEvent("unsuspend"), "delivery-again");
    await second.talos.backfill.idle();
    expect(
      second.logs.lines().filter((l) => l.msg === "catching up a suspended installation"),
    ).toHaveLength(1);
  });

  it("says so, and reads nothing, when it was not seen suspended", async () => {
    const app = await createTestApp({ backfills: true });
    await (
      await app.talos.memory.open(ref)
    ).add(issueMemory(7, "Crash on save", { repo: "Codertocat/Hello-World" }));

    await receive(app, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await app.talos.backfill.idle();

    expect(
      app.logs.lines().find((l) => String(l.msg).startsWith("installation unsuspended, but")),
    ).toMatchObject({ level: 40, installation: 2 });
    expect(app.talos.services.journal!.list()).toEqual([]);
  });
});

const withPostgres = await requirePostgres("the suspension marks instances share");

describe.runIf(withPostgres)("with DATABASE_URL, an installation suspended and unsuspended", () => {
  const ref = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };

  /** An instance of its own data directory on `schema`, as behind a load balancer. */
  const instance = (schema: string, dataDir = makeDataDir()) =>
    createTestApp({
      backfills: true,
      dataDir,
      env: { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema },
    });

  /** GitHub's answers to the unsuspension's catch-up: Hello-World held, issue 8 new since. */
  const mockCatchUp = () => {
    const scope = githubScope();
    mockInstallationToken(scope);
    holds(scope, [[HELLO_WORLD, "Codertocat/Hello-World"]]);
    caughtUpSince(scope, SUSPENDED_AT, [
      {
        number: 8,
        title: "Saving fails on Windows",
        body: "Saving fails on Windows, as the reporter wrote it.",
        state: "open",
        user: { login: "octocat" },
        labels: [],
        html_url: "https://github.com/Codertocat/Hello-World/issues/8",
        created_at: "2026-11-01T00:00:00Z",
        updated_at: "2026-11-25T00:00:00Z",
      },
    ]);
    return scope;
  };

  it("catches up at the unsuspension one instance receives, from the suspension another one saw", async () => {
    const schema = freshSchema("talos_suspend");
    onTestFinished(() => dropSchema(schema));
    const a = await instance(schema);
    await (
      await a.talos.memory.open(ref)
    ).add(issueMemory(7, "Crash on save", { repo: "Codertocat/Hello-World" }));
    await receive(a, "installation", installationEvent("suspend"), "delivery-suspend");

    // b's own data directory knew nothing of it: it only warned, and read nothing.
    const scope = mockCatchUp();
    const b = await instance(schema);
    await receive(b, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await b.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(
      b.logs.lines().find((l) => l.msg === "catching up a suspended installation"),
    ).toMatchObject({ installation: 2, since: SUSPENDED_AT, queued: 1 });
    const memory = await b.talos.memory.open(ref);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-7", "issue-8"]);
    // Cleared for every instance.
    expect(await a.talos.services.suspensions.since(2)).toBeUndefined();
  });

  it("moves a mark from suspensions.json into the database at start, where another instance finds it", async () => {
    const schema = freshSchema("talos_suspend");
    onTestFinished(() => dropSchema(schema));
    // Recorded before DATABASE_URL was set, in this instance's data directory.
    const dataDir = makeDataDir();
    const file = join(dataDir, "suspensions.json");
    writeFileSync(file, JSON.stringify({ 2: SUSPENDED_AT }));
    const a = await instance(schema, dataDir);
    await (
      await a.talos.memory.open(ref)
    ).add(issueMemory(7, "Crash on save", { repo: "Codertocat/Hello-World" }));
    expect(existsSync(file)).toBe(false);

    const scope = mockCatchUp();
    const b = await instance(schema);
    expect(await b.talos.services.suspensions.all()).toEqual(new Map([[2, SUSPENDED_AT]]));
    await receive(b, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await b.talos.backfill.idle();
    expect(scope.pendingMocks()).toEqual([]);
    expect((await (await b.talos.memory.open(ref)).list()).map((r) => r.id).sort()).toEqual([
      "issue-7",
      "issue-8",
    ]);
  });
});

describe.runIf(withPostgres)(
  "with DATABASE_URL, an installation_repositories.added redelivered after the removal",
  () => {
    it("keeps the memory deleted when GitHub says the installation no longer holds the repository", async () => {
      const schema = freshSchema("talos_readmit");
      onTestFinished(() => dropSchema(schema));
      const app = await createTestApp({
        backfills: true,
        env: { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema },
      });
      const ref = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };
      await (
        await app.talos.memory.open(ref)
      ).add(issueMemory(7, "Secret from before", { repo: "Codertocat/Hello-World" }));
      await receive(app, "installation_repositories", helloWorldRemoved(), "delivery-removed");
      const scope = githubScope();
      notInstalled(scope);

      await receive(app, "installation_repositories", helloWorldAdded(), "delivery-added");
      await app.talos.services.jobs.idle();
      await app.talos.backfill.idle();

      expect(scope.pendingMocks()).toEqual([]);
      expect(await app.talos.memory.isRefused(ref)).toBe(true);
      await expect(app.talos.memory.open(ref)).rejects.toThrow(MemoryDeletedError);
    });
  },
);

describe("an installation suspended: what GitHub did not send meanwhile", () => {
  const hello = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };
  const SPACE = 186853007;
  const ROCKET = 186853099;
  const listed = (number: number, text: string, updatedAt: string) => ({
    number,
    title: `Issue ${number}`,
    body: text,
    state: "open",
    user: { login: "octocat" },
    labels: [],
    html_url: `https://github.com/Codertocat/Hello-World/issues/${number}`,
    created_at: "2026-11-01T00:00:00Z",
    updated_at: updatedAt,
  });
  it("deletes the memory of a repository it left, and backfills one it gained", async () => {
    const app = await createTestApp({ backfills: true });
    const space = { installation: 2, repository: SPACE, name: "Codertocat/Space" };
    for (const ref of [hello, space])
      await (await app.talos.memory.open(ref)).add(issueMemory(7, "Crash", { repo: ref.name }));
    await receive(app, "installation", installationEvent("suspend"), "delivery-suspend");

    const scope = githubScope();
    mockInstallationToken(scope);
    holds(scope, [
      [HELLO_WORLD, "Codertocat/Hello-World"],
      [ROCKET, "Codertocat/Rocket"],
    ]);
    caughtUpSince(scope, SUSPENDED_AT, []);
    mockRepositoryRead(scope, "Codertocat/Rocket", ROCKET);
    scope
      .get("/repos/Codertocat/Rocket/contents/.github%2Ftalos.yml")
      .reply(404, { message: "Not Found" });
    scope
      .get("/repos/Codertocat/Rocket/issues")
      .query({ state: "all", sort: "created", direction: "desc", per_page: "100", page: "1" })
      .reply(200, [
        { ...listed(3, "Rocket fails to launch.", "2026-11-21T00:00:00Z"), html_url: "x" },
      ]);
    await receive(app, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect((await app.talos.memory.list()).map((n) => n.repository).sort()).toEqual(
      [HELLO_WORLD, ROCKET].sort(),
    );
    const rocket = { installation: 2, repository: ROCKET, name: "Codertocat/Rocket" };
    expect((await (await app.talos.memory.open(rocket)).list()).map((r) => r.id)).toEqual([
      "issue-3",
    ]);
  });

  it("catches up an edit whose job was dropped for the suspension, from when it was accepted", async () => {
    const clock = createManualClock(Date.parse("2026-11-20T07:59:30.000Z"));
    const app = await createTestApp({ backfills: true, clock });
    await (await app.talos.memory.open(hello)).add(issueMemory(1, "Typo", { repo: hello.name }));
    // Accepted at 07:59:30, run after the suspension at 08:00: GitHub refuses its token.
    const refused = githubScope();
    refused
      .post("/app/installations/2/access_tokens")
      .reply(403, { message: "This installation has been suspended" });
    await receive(app, "issues", webhookExample("issues", "edited"), "delivery-edit");
    expect(app.logs.lines().map((l) => l.msg)).toContain(
      "job dropped: its installation is suspended",
    );
    await receive(app, "installation", installationEvent("suspend"), "delivery-suspend");

    // The catch-up reads from that acceptance, a clock difference (10 minutes) earlier.
    const scope = githubScope();
    mockInstallationToken(scope);
    holds(scope, [[HELLO_WORLD, "Codertocat/Hello-World"]]);
    caughtUpSince(scope, "2026-11-20T07:49:30.000Z", [
      listed(1, "The README says 'teh' twice.", "2026-11-20T07:59:00Z"),
    ]);
    await receive(app, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await app.talos.memory.open(hello);
    expect((await memory.get("issue-1"))?.text).toContain("'teh' twice");
  });

  it("leaves the mark, and the job journaled, when backfill-queue.json cannot be written", async () => {
    const dataDir = makeDataDir();
    // A directory where the file goes: every write of it fails, as on a full disk.
    mkdirSync(join(dataDir, "backfill-queue.json"));
    const app = await createTestApp({ backfills: true, dataDir });
    await (await app.talos.memory.open(hello)).add(issueMemory(1, "Typo", { repo: hello.name }));
    await receive(app, "installation", installationEvent("suspend"), "delivery-suspend");
    const scope = githubScope();
    mockInstallationToken(scope);
    holds(scope, [[HELLO_WORLD, "Codertocat/Hello-World"]]);
    // The catch-up runs all the same, from RAM.
    caughtUpSince(scope, SUSPENDED_AT, []);

    await receive(app, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.services.journal!.list()).toMatchObject([
      { id: "delivery-unsuspend", attempts: 1, retryAt: expect.any(Number) },
    ]);
    expect(JSON.parse(readFileSync(join(dataDir, "suspensions.json"), "utf8"))).toEqual({
      2: SUSPENDED_AT,
    });
  });

  it("leaves the mark, and the job journaled, when the installation cannot be listed", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ backfills: true, dataDir });
    await (await app.talos.memory.open(hello)).add(issueMemory(1, "Typo", { repo: hello.name }));
    await receive(app, "installation", installationEvent("suspend"), "delivery-suspend");
    const scope = githubScope();
    mockInstallationToken(scope);
    scope
      .get("/installation/repositories")
      .query({ per_page: "100" })
      .reply(500, { message: "Server Error" });

    await receive(app, "installation", installationEvent("unsuspend"), "delivery-unsuspend");

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.services.journal!.list()).toMatchObject([
      { id: "delivery-unsuspend", attempts: 1, retryAt: expect.any(Number) },
    ]);
    expect(JSON.parse(readFileSync(join(dataDir, "suspensions.json"), "utf8"))).toEqual({
      2: SUSPENDED_AT,
    });
  });
});

describe("an installation suspended, its time in no known form", () => {
  it("is marked as suspended when the event is handled (a clock difference earlier), not parked", async () => {
    const dataDir = makeDataDir();
    const clock = createManualClock(Date.parse("2026-11-20T09:30:00.000Z"));
    const app = await createTestApp({ dataDir, clock });
    const suspend = webhookExample("installation", "suspend");
    suspend.installation.suspended_at = "last Tuesday";

    await receive(app, "installation", suspend, "delivery-suspend");

    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(JSON.parse(readFileSync(join(dataDir, "suspensions.json"), "utf8"))).toEqual({
      2: "2026-11-20T09:20:00.000Z",
    });
  });
});

describe("an installation suspended, then uninstalled", () => {
  it("drops its suspension mark with its memories", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ dataDir });
    const suspend = webhookExample("installation", "suspend");
    suspend.installation.suspended_at = "2026-11-20T08:00:00Z";
    await receive(app, "installation", suspend, "delivery-suspend");
    const marks = () => JSON.parse(readFileSync(join(dataDir, "suspensions.json"), "utf8"));
    expect(marks()).toEqual({ 2: "2026-11-20T08:00:00.000Z" });

    await receive(app, "installation", webhookExample("installation", "deleted"), "delivery-gone");

    expect(marks()).toEqual({});
    expect(app.talos.services.journal!.list()).toEqual([]);
  });
});

describe("an uninstalled installation's series on /metrics", () => {
  it("removes its rate-limit series, while another installation's stay", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    for (const installation of [2, 3]) {
      mockInstallationToken(scope, installation);
      scope.get("/repos/Codertocat/Hello-World").reply(
        200,
        {},
        {
          "x-ratelimit-limit": "5000",
          "x-ratelimit-remaining": "100",
          "x-ratelimit-reset": "1900000000",
          "x-ratelimit-resource": "core",
        },
      );
      const octokit = await app.probot.auth(installation);
      await octokit.rest.repos.get({ owner: "Codertocat", repo: "Hello-World" });
    }
    const series = async () =>
      [
        ...(await app.talos.metrics.githubRateLimitRemaining.get()).values,
        ...(await app.talos.metrics.githubRateLimitLimit.get()).values,
      ].map((v) => v.labels.installation);
    expect((await series()).sort()).toEqual(["2", "2", "3", "3"]);

    await receive(app, "installation", webhookExample("installation", "deleted", 2), "gone");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await series()).toEqual(["3", "3"]);
  });

  it("removes its talos_llm_tokens_total series, while another installation's stay", async () => {
    const app = await createTestApp({ logLevel: "warn" });
    githubScope(); // no mocks: the uninstall reads nothing
    // What run-agent counts for every model call of an installation's jobs (its triage, say).
    for (const installation of ["2", "3"])
      for (const direction of ["input", "output"])
        app.talos.metrics.llmTokens.inc({ installation, kind: "triage", direction }, 100);

    await receive(app, "installation", webhookExample("installation", "deleted", 2), "gone");

    // Kept, each installation ever seen had its series until a restart: with anyone able to
    // install a public app, /metrics grew with every install and uninstall.
    const installations = (await app.talos.metrics.llmTokens.get()).values.map(
      (v) => v.labels.installation,
    );
    expect(installations).toEqual(["3", "3"]);
  });
});

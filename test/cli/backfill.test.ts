import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type nock from "nock";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { lockDirectory } from "../../src/memory/directory-lock.js";
import type { RepositoryRef } from "../../src/memory/memory-registry.js";
import {
  API,
  githubScope,
  INSTALLATION_TOKEN,
  mockInstallationToken,
  mockRepoConfig,
  mockRepositoryRead,
} from "../helpers/github-mocks.js";
import { runTalos } from "../helpers/run-talos.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";
import { createTestRegistry, issueMemory, openPostgresMemory } from "../helpers/test-memory.js";
import { createTestApp, makeDataDir, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

const TOKEN = "ghp_backfillTestToken0123456789abcdefgh";
const QUERY = { state: "all", sort: "created", direction: "desc", per_page: "100" };

function talos(
  argv: string[],
  env: Record<string, string>,
  options: { tty?: boolean; signal?: AbortSignal } = {},
) {
  return runTalos(argv, { env, ...options });
}

function issue(number: number, pull = false) {
  return {
    number,
    title: `Widget problem ${number}`,
    body: `Details of ${number}`,
    state: number % 2 ? "open" : "closed",
    user: { login: "octocat" },
    labels: [],
    html_url: `https://github.com/acme/widgets/${pull ? "pull" : "issues"}/${number}`,
    created_at: "2026-10-01T10:00:00Z",
    ...(pull ? { pull_request: { url: "x" } } : {}),
  };
}

/** acme/widgets's id: memory is kept by it. */
const WIDGETS_ID = 101;

/** `GET /repos/acme/widgets`: the repository's id, name and creation time. */
function mockRepository(scope: nock.Scope) {
  mockRepositoryRead(scope, "acme/widgets", WIDGETS_ID, { createdAt: "2020-01-01T00:00:00Z" });
}

/**
 * Two pages, newest first: 100 items (every tenth a pull request), then 30; page 1 is asked
 * again after page 2, in case an issue deleted meanwhile pulled one back onto it.
 */
function mockIssuePages(scope: nock.Scope, authorization: string) {
  scope
    .get("/repos/acme/widgets/issues")
    .query({ ...QUERY, page: "1" })
    .times(2)
    .matchHeader("authorization", authorization)
    .reply(
      200,
      Array.from({ length: 100 }, (_, i) => issue(130 - i, i % 10 === 0)),
    );
  scope
    .get("/repos/acme/widgets/issues")
    .query({ ...QUERY, page: "2" })
    .matchHeader("authorization", authorization)
    .reply(
      200,
      Array.from({ length: 30 }, (_, i) => issue(30 - i)),
    );
}

async function readMemory(dataDir: string, installation: number) {
  const memories = createTestRegistry(join(dataDir, "memory"));
  const namespaces = await memories.list();
  const ref: RepositoryRef = { installation, repository: WIDGETS_ID, name: "acme/widgets" };
  const records = await (await memories.open(ref)).list();
  await memories.closeAll();
  return { namespaces, records };
}

describe("talos backfill", () => {
  it("stops after the page in hand on Ctrl-C, and the next run resumes there", async () => {
    const dataDir = makeDataDir();
    const interrupt = new AbortController();
    const first = githubScope();
    mockRepoConfig(first, { owner: "acme", repo: "widgets" });
    mockRepository(first);
    first
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "1" })
      .reply(200, () => {
        // Ctrl-C while the first page is on its way.
        interrupt.abort();
        return Array.from({ length: 100 }, (_, i) => issue(130 - i));
      });
    const stopped = await talos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
      { signal: interrupt.signal },
    );
    expect(stopped.code).toBe(0);
    expect(first.pendingMocks()).toEqual([]);
    expect(stopped.out).toContain("Stopped before the end: run it again to resume.");

    const second = githubScope();
    mockRepoConfig(second, { owner: "acme", repo: "widgets" });
    mockRepository(second);
    // Page 2, then the page before it again, in case issues were deleted meanwhile.
    second
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "1" })
      .reply(
        200,
        Array.from({ length: 100 }, (_, i) => issue(130 - i)),
      )
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "2" })
      .reply(
        200,
        Array.from({ length: 30 }, (_, i) => issue(30 - i)),
      );
    const resumed = await talos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
    );
    expect(resumed.code).toBe(0);
    expect(second.pendingMocks()).toEqual([]);
    expect(resumed.out).toContain("resumed at page 2; memory 7/acme/widgets holds 130 records.");
  });

  it("resumes after issues were deleted meanwhile, indexing every remaining issue once and leaving none out", async () => {
    const dataDir = makeDataDir();
    const argv = ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir];
    // The repository's issues as GitHub lists them: newest first, 100 a page.
    let numbers = Array.from({ length: 250 }, (_, i) => 250 - i);
    const mockPage = (scope: nock.Scope, page: number, then?: () => void) =>
      scope
        .get("/repos/acme/widgets/issues")
        .query({ ...QUERY, page: String(page) })
        .reply(200, () => {
          then?.();
          return numbers.slice((page - 1) * 100, page * 100).map((n) => issue(n));
        });
    const interrupt = new AbortController();
    const first = githubScope();
    mockRepoConfig(first, { owner: "acme", repo: "widgets" });
    mockRepository(first);
    mockPage(first, 1, () => interrupt.abort());
    const stopped = await talos(argv, { GITHUB_TOKEN: TOKEN }, { signal: interrupt.signal });
    expect(stopped.code).toBe(0);
    expect(first.pendingMocks()).toEqual([]);

    // Before the resume, 20 issues it read (200 to 181) and 5 it had not (100 to 96) are
    // deleted: page 2 now starts 20 issues later, after 150 to 131.
    const deleted = new Set([
      ...Array.from({ length: 20 }, (_, i) => 200 - i),
      ...Array.from({ length: 5 }, (_, i) => 100 - i),
    ]);
    numbers = numbers.filter((n) => !deleted.has(n));
    const second = githubScope();
    mockRepoConfig(second, { owner: "acme", repo: "widgets" });
    mockRepository(second);
    // Page 2, then page 1 again, where 150 to 131 are now; page 3, then page 2 again.
    for (const page of [2, 1, 3, 2]) mockPage(second, page);
    const resumed = await talos(argv, { GITHUB_TOKEN: TOKEN });

    expect(resumed.code).toBe(0);
    expect(second.pendingMocks()).toEqual([]);
    // Each of the 145 remaining issues it had not read is indexed once: none twice, none left out.
    expect(resumed.out).toBe(
      "Indexed 145 issues and pull requests of acme/widgets, resumed at page 2; memory 7/acme/widgets holds 245 records.\n",
    );
    const ids = new Set((await readMemory(dataDir, 7)).records.map((r) => r.number));
    for (const n of numbers) expect(ids).toContain(n);
  });

  it("says a repository has issues switched off, records that as done rather than failed, and checks again when run again", async () => {
    const dataDir = makeDataDir();
    const argv = ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir];
    const off = githubScope();
    mockRepoConfig(off, { owner: "acme", repo: "widgets" });
    mockRepository(off);
    off
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "1" })
      .reply(410, {
        message: "Issues are disabled for this repo",
        documentation_url: "https://docs.github.com/v3/issues/",
      });
    // The pull requests have a listing of their own; its items have no `pull_request` field.
    const pull: Partial<ReturnType<typeof issue>> = issue(3, true);
    delete pull.pull_request;
    off
      .get("/repos/acme/widgets/pulls")
      .query({ ...QUERY, page: "1" })
      .reply(200, [pull]);

    const first = await talos(argv, { GITHUB_TOKEN: TOKEN });

    expect(first.code).toBe(0);
    expect(off.pendingMocks()).toEqual([]);
    // The progress of the pull request page, as lines: stderr is not a terminal here.
    expect(first.err).toMatch(/^\S+ backfill 7\/acme\/widgets: 1\/1000 indexed\n$/);
    expect(first.out).toBe(
      "acme/widgets has issues switched off (GitHub answers 410 Gone to listing them): pull requests indexed from their own listing: 1; memory 7/acme/widgets holds 1 records. Run this again once issues are on (the server checks again a day later, or when an issue is opened).\n",
    );
    expect((await readMemory(dataDir, 7)).records.map((r) => r.id)).toEqual(["pull_request-3"]);
    const memories = createTestRegistry(join(dataDir, "memory"));
    const namespace = { installation: 7, repository: WIDGETS_ID };
    expect(await memories.readBackfillState(namespace)).toMatchObject({
      status: "done",
      listing: "pulls",
      page: 2,
      indexed: 1,
      issuesDisabledAt: expect.any(String),
    });
    await memories.closeAll();

    // Switched on since: the next run lists them.
    const on = githubScope();
    mockRepoConfig(on, { owner: "acme", repo: "widgets" });
    mockRepository(on);
    mockIssuePages(on, `token ${TOKEN}`);
    const second = await talos(argv, { GITHUB_TOKEN: TOKEN });
    expect(second.code).toBe(0);
    expect(on.pendingMocks()).toEqual([]);
    // Read from the issues listing's start; the pull request read before stays.
    expect(second.out).toBe(
      "Indexed 130 issues and pull requests of acme/widgets; memory 7/acme/widgets holds 131 records.\n",
    );
  });

  it("indexes the issues and pull requests with GITHUB_TOKEN into the given installation's memory", async () => {
    const dataDir = makeDataDir();
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepository(scope);
    mockIssuePages(scope, `token ${TOKEN}`);

    const { code, out, err } = await talos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
    );

    expect(code).toBe(0);
    expect(scope.pendingMocks()).toEqual([]);
    // Not a terminal: a line per page.
    expect(err.trim().split("\n")).toEqual([
      expect.stringMatching(
        /^\d{4}-\d\d-\d\dT[\d:.]+Z backfill 7\/acme\/widgets: 100\/1000 indexed$/,
      ),
      expect.stringMatching(/ backfill 7\/acme\/widgets: 130\/1000 indexed$/),
    ]);
    expect(out).toBe(
      "Indexed 130 issues and pull requests of acme/widgets; memory 7/acme/widgets holds 130 records.\n",
    );
    const { namespaces, records } = await readMemory(dataDir, 7);
    expect(namespaces).toEqual([{ installation: 7, repository: WIDGETS_ID, name: "acme/widgets" }]);
    expect(records).toHaveLength(130);
    expect(records.filter((r) => r.kind === "pull_request")).toHaveLength(10);
    expect(records.find((r) => r.id === "pull_request-130")).toMatchObject({
      url: "https://github.com/acme/widgets/pull/130",
      text: "Widget problem 130\n\nDetails of 130",
    });
    expect(records.find((r) => r.id === "issue-1")).toMatchObject({ state: "open", number: 1 });
  });

  it("draws a progress bar on a terminal, stops at --max, and does not run a finished backfill again", async () => {
    const dataDir = makeDataDir();
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepository(scope);
    mockIssuePages(scope, `token ${TOKEN}`);
    const argv = ["backfill", "acme/widgets", "--installation", "7", "--max", "120"];
    const env = { GITHUB_TOKEN: TOKEN, TALOS_DATA_DIR: dataDir };

    const { code, out, err } = await talos(argv, env, { tty: true });

    expect(code).toBe(0);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).toBe(
      `\r[${".".repeat(30)}] 0/120 7/acme/widgets` +
        `\r[${"#".repeat(25)}${".".repeat(5)}] 100/120 7/acme/widgets` +
        `\r[${"#".repeat(30)}] 120/120 7/acme/widgets\n`,
    );
    expect(out).toContain("Indexed 120 issues and pull requests of acme/widgets;");
    expect((await readMemory(dataDir, 7)).records).toHaveLength(120);

    // The second run reads only the config and the repository, and says why it did nothing.
    const again = githubScope();
    mockRepoConfig(again, { owner: "acme", repo: "widgets" });
    mockRepository(again);
    const second = await talos(argv, env);
    expect(second.code).toBe(0);
    expect(again.pendingMocks()).toEqual([]);
    expect(second.out).toMatch(
      /^acme\/widgets is already backfilled into memory 7\/acme\/widgets \(120 indexed\); remove .*backfill\.json to index it again\.\n$/,
    );
  });

  it("fails in one line when GitHub fails, and resumes at that page on the next run", async () => {
    const dataDir = makeDataDir();
    // No retries: the 502 must come back at once.
    const env = { GITHUB_TOKEN: TOKEN, TALOS_DATA_DIR: dataDir, TALOS_GITHUB_MAX_RETRIES: "0" };
    const failing = githubScope();
    mockRepoConfig(failing, { owner: "acme", repo: "widgets" });
    mockRepository(failing);
    failing
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "1" })
      .reply(
        200,
        Array.from({ length: 100 }, (_, i) => issue(130 - i)),
      )
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "2" })
      .reply(502, "Bad Gateway");
    const first = await talos(["backfill", "acme/widgets", "--installation", "7"], env);
    expect(first.code).toBe(1);
    expect(failing.pendingMocks()).toEqual([]);
    expect(first.err).toMatch(
      / backfill 7\/acme\/widgets: 100\/1000 indexed\ntalos backfill: Bad Gateway\n$/,
    );

    const resumed = githubScope();
    mockRepoConfig(resumed, { owner: "acme", repo: "widgets" });
    mockRepository(resumed);
    resumed
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "1" })
      .reply(
        200,
        Array.from({ length: 100 }, (_, i) => issue(130 - i)),
      )
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "2" })
      .reply(
        200,
        Array.from({ length: 30 }, (_, i) => issue(30 - i)),
      );
    const second = await talos(["backfill", "acme/widgets", "--installation", "7"], env);
    expect(second.code).toBe(0);
    expect(resumed.pendingMocks()).toEqual([]);
    expect(second.out).toBe(
      "Indexed 30 issues and pull requests of acme/widgets, resumed at page 2; memory 7/acme/widgets holds 130 records.\n",
    );
  });

  it("indexes a renamed repository given by its old name, under the name GitHub has now", async () => {
    const dataDir = makeDataDir();
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "old-widgets" });
    // GitHub redirects an old name to the repository, by its id.
    scope
      .get("/repos/acme/old-widgets")
      .reply(
        301,
        { message: "Moved Permanently" },
        { location: `${API}/repositories/${WIDGETS_ID}` },
      )
      .get(`/repositories/${WIDGETS_ID}`)
      .reply(200, {
        id: WIDGETS_ID,
        name: "widgets",
        full_name: "acme/widgets",
        owner: { login: "acme" },
        created_at: "2020-01-01T00:00:00Z",
      });
    mockIssuePages(scope, `token ${TOKEN}`);

    const { code, out } = await talos(
      ["backfill", "acme/old-widgets", "--installation", "7", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
    );

    expect(code).toBe(0);
    expect(scope.pendingMocks()).toEqual([]);
    expect(out).toBe(
      "Indexed 130 issues and pull requests of acme/old-widgets; memory 7/acme/widgets holds 130 records.\n",
    );
    const { records } = await readMemory(dataDir, 7);
    expect(records).toHaveLength(130);
    expect(records.find((r) => r.id === "issue-1")).toMatchObject({ repo: "acme/widgets" });
  });

  it("authenticates as the app with APP_ID and PRIVATE_KEY, and finds the installation itself", async () => {
    const dataDir = makeDataDir();
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/installation")
      .matchHeader("authorization", /^bearer eyJ/i)
      .reply(200, { id: 42, account: { login: "acme" } });
    mockInstallationToken(scope, 42);
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepository(scope);
    mockIssuePages(scope, `token ${INSTALLATION_TOKEN}`);

    const { code, out, err } = await talos(["backfill", "acme/widgets", "--data-dir", dataDir], {
      APP_ID: "1",
      PRIVATE_KEY: TEST_PRIVATE_KEY,
    });

    expect(code).toBe(0);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).not.toContain("PRIVATE KEY");
    expect(out).toContain("memory 42/acme/widgets holds 130 records");
    const { namespaces, records } = await readMemory(dataDir, 42);
    expect(namespaces).toEqual([
      { installation: 42, repository: WIDGETS_ID, name: "acme/widgets" },
    ]);
    expect(records).toHaveLength(130);
  });

  /** acme/widgets's memory in installation 42, removed with the repository. */
  async function removedWidgets(dataDir: string) {
    const memories = createTestRegistry(join(dataDir, "memory"));
    const namespace = { installation: 42, repository: WIDGETS_ID, name: "acme/widgets" };
    await memories.open(namespace);
    await memories.delete(namespace);
    await memories.closeAll();
  }

  it("readmits a memory removed with its repository when GitHub says the installation holds it again", async () => {
    const dataDir = makeDataDir();
    await removedWidgets(dataDir);
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/installation")
      .matchHeader("authorization", /^bearer eyJ/i)
      .reply(200, { id: 42, account: { login: "acme" } });
    mockInstallationToken(scope, 42);
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepository(scope);
    mockIssuePages(scope, `token ${INSTALLATION_TOKEN}`);

    const { code, out } = await talos(["backfill", "acme/widgets", "--data-dir", dataDir], {
      APP_ID: "1",
      PRIVATE_KEY: TEST_PRIVATE_KEY,
    });

    expect(code).toBe(0);
    expect(scope.pendingMocks()).toEqual([]);
    expect(out).toContain(
      "acme/widgets's memory 42/acme/widgets was removed with the repository, and GitHub says installation 42 holds it again: readmitted, empty.",
    );
    expect((await readMemory(dataDir, 42)).records).toHaveLength(130);
  });

  it("says how to readmit a removed memory when only a token and --installation are given", async () => {
    const dataDir = makeDataDir();
    await removedWidgets(dataDir);
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepository(scope);

    const { code, err } = await talos(
      ["backfill", "acme/widgets", "--installation", "42", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
    );

    expect(code).toBe(1);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).toMatch(/was deleted with its repository; set APP_ID and PRIVATE_KEY/);
  });

  it("refuses an --installation that does not hold the repository", async () => {
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/installation")
      .matchHeader("authorization", /^bearer eyJ/i)
      .reply(200, { id: 42 });
    const { code, err } = await talos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", makeDataDir()],
      { APP_ID: "1", PRIVATE_KEY: TEST_PRIVATE_KEY },
    );
    expect(code).toBe(2);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).toBe("talos backfill: acme/widgets belongs to installation 42 of the app, not 7\n");
  });

  it("says so when the app is not installed on the repository", async () => {
    const scope = githubScope();
    scope.get("/repos/acme/widgets/installation").reply(404, { message: "Not Found" });
    const { code, err } = await talos(["backfill", "acme/widgets", "--data-dir", makeDataDir()], {
      APP_ID: "1",
      PRIVATE_KEY: TEST_PRIVATE_KEY,
    });
    expect(code).toBe(2);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).toBe("talos backfill: the app 1 is not installed on acme/widgets\n");
  });

  it("says so when the repository cannot be found, before anything is written", async () => {
    const dataDir = makeDataDir();
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    scope.get("/repos/acme/widgets").reply(404, { message: "Not Found" });
    const { code, err } = await talos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
    );
    expect(code).toBe(2);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).toBe("talos backfill: there is no repository acme/widgets, or it is not visible\n");
    expect(await createTestRegistry(join(dataDir, "memory")).list()).toEqual([]);
  });

  it("catches the memory up with --since: the issues and pull requests updated since, over older copies, leaving the backfill's progress as it is", async () => {
    const dataDir = makeDataDir();
    const memories = createTestRegistry(join(dataDir, "memory"));
    const ref = { installation: 7, repository: WIDGETS_ID, name: "acme/widgets" };
    const before = await memories.open(ref);
    await before.add({
      id: "issue-2",
      kind: "issue",
      text: "Widget problem 2\n\nDetails of 2",
      repo: "acme/widgets",
      number: 2,
      url: "https://github.com/acme/widgets/issues/2",
      createdAt: "2026-10-01T10:00:00Z",
      state: "open",
      metadata: { updatedAt: "2026-10-02T10:00:00Z" },
    });
    await before.saveBackfillState({ status: "done", page: 2, indexed: 1 });
    await memories.closeAll();
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepository(scope);
    scope
      .get("/repos/acme/widgets/issues")
      .query({
        state: "all",
        sort: "updated",
        direction: "desc",
        since: "2026-11-20T00:00:00.000Z",
        per_page: "100",
        page: "1",
      })
      .matchHeader("authorization", `token ${TOKEN}`)
      .reply(200, [
        { ...issue(3, true), updated_at: "2026-11-23T10:00:00Z" },
        { ...issue(2), body: "Fixed in 2.1", updated_at: "2026-11-22T10:00:00Z" },
      ]);

    const { code, out, err } = await talos(
      ["backfill", "acme/widgets", "--installation", "7", "--since", "2026-11-20"],
      { GITHUB_TOKEN: TOKEN, TALOS_DATA_DIR: dataDir },
    );

    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(scope.pendingMocks()).toEqual([]);
    expect(out).toBe(
      "Caught up 2 issues and pull requests of acme/widgets updated since 2026-11-20T00:00:00.000Z; memory 7/acme/widgets holds 2 records.\n",
    );
    const { records } = await readMemory(dataDir, 7);
    expect(records.find((r) => r.id === "issue-2")).toMatchObject({
      text: "Widget problem 2\n\nFixed in 2.1",
      state: "closed",
    });
    expect(records.find((r) => r.id === "pull_request-3")).toMatchObject({ kind: "pull_request" });
    const after = createTestRegistry(join(dataDir, "memory"));
    expect(await (await after.open(ref)).readBackfillState()).toEqual({
      status: "done",
      page: 2,
      indexed: 1,
    });
    await after.closeAll();
  });

  it("indexes nothing when the repository switches memory off", async () => {
    const dataDir = makeDataDir();
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/contents/.github%2Ftalos.yml")
      .reply(200, "memory:\n  enabled: false\n", {
        "content-type": "application/vnd.github.raw; charset=utf-8",
      });
    const { code, err } = await talos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
    );
    expect(code).toBe(1);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).toBe(
      "talos backfill: acme/widgets switches memory off in .github/talos.yml (memory.enabled: false); nothing was indexed\n",
    );
  });

  it.each([
    [[], {}, /^talos backfill: backfill takes one repository/],
    [["acme"], {}, /^talos backfill: backfill takes owner\/repo, not "acme"/],
    [
      ["acme/widgets", "--installation", "x"],
      {},
      /^talos backfill: --installation takes a numeric/,
    ],
    [
      ["acme/widgets", "--installation", "7", "--max", "lots"],
      {},
      /^talos backfill: --max takes a whole number of at least 1, not "lots"/,
    ],
    [
      ["acme/widgets", "--installation", "7", "--since", "last week"],
      {},
      /^talos backfill: --since takes an ISO 8601 date or time not in the future \(2026-11-01 or 2026-11-01T08:00:00Z\), not "last week"\n$/,
    ],
    [
      ["acme/widgets", "--installation", "7", "--since", "2999-01-01"],
      {},
      /^talos backfill: --since takes an ISO 8601 date or time not in the future/,
    ],
    [
      ["acme/widgets"],
      { GITHUB_TOKEN: TOKEN },
      /^talos backfill: pass --installation ID, or set APP_ID and PRIVATE_KEY: memory is kept per installation/,
    ],
    [
      ["acme/widgets"],
      { PRIVATE_KEY: TEST_PRIVATE_KEY },
      /^talos backfill: pass --installation ID, or set APP_ID and PRIVATE_KEY/,
    ],
  ])("exits 2 with one line for bad input: %j", async (args, env, message) => {
    // No scope: any request would fail, since nock.disableNetConnect() is in force.
    const { code, err } = await talos(
      ["backfill", ...args, "--data-dir", makeDataDir()],
      env as Record<string, string>,
    );
    expect(err).toMatch(message);
    expect(code).toBe(2);
    expect(err.trim().split("\n")).toHaveLength(1);
  });
});

describe("talos backfill beside a running server on disk", () => {
  it("asks the server, which backfills the repository itself, at most --max, and says so once done", async () => {
    const dataDir = makeDataDir();
    // As main.ts does: the server holds the data directory for its life. Its own backfills are
    // off (TALOS_BACKFILL_MAX=0): what it reads here, the command asked for.
    onTestFinished(await lockDirectory(dataDir));
    const server = await createTestApp({ dataDir });
    const command = githubScope();
    mockRepoConfig(command, { owner: "acme", repo: "widgets" });
    mockRepository(command);
    const backfill = githubScope();
    mockInstallationToken(backfill, 7);
    mockRepository(backfill);
    mockRepoConfig(backfill, { owner: "acme", repo: "widgets" });
    // Read by the server, with its installation's token.
    mockIssuePages(backfill, `token ${INSTALLATION_TOKEN}`);

    const argv = ["backfill", "acme/widgets", "--installation", "7", "--data-dir", dataDir];
    const asked = await talos([...argv, "--max", "500"], { GITHUB_TOKEN: TOKEN });
    expect(asked.err).toBe("");
    expect(asked.code).toBe(0);
    expect(asked.out).toBe(
      "The running server backfills acme/widgets into memory 7/acme/widgets (at most 500), after what it has queued; `talos memory stats --repo acme/widgets` shows its progress.\n",
    );
    expect(command.pendingMocks()).toEqual([]);
    await server.talos.backfill.idle();
    expect(backfill.pendingMocks()).toEqual([]);
    const ref = { installation: 7, repository: WIDGETS_ID, name: "acme/widgets" };
    expect((await (await server.talos.memory.open(ref)).stats()).records).toBe(130);
    expect(await server.talos.memory.readBackfillState(ref)).toMatchObject({
      status: "done",
      indexed: 130,
    });

    // Done: nothing is queued, and the command says how to index it again.
    const again = githubScope();
    mockRepoConfig(again, { owner: "acme", repo: "widgets" });
    mockRepository(again);
    const done = await talos(argv, { GITHUB_TOKEN: TOKEN });
    expect(done.code).toBe(0);
    expect(done.out).toBe(
      `acme/widgets is already backfilled into memory 7/acme/widgets (130 indexed); remove ${join(dataDir, "memory", "7", String(WIDGETS_ID), "backfill.json")} to index it again.\n`,
    );
    expect(again.pendingMocks()).toEqual([]);
    await server.talos.backfill.idle();
    expect(readdirSync(join(dataDir, "requests"))).toEqual(["server.json"]);
  });

  it("says how to readmit a memory the server deleted, with only a token and --installation", async () => {
    const dataDir = makeDataDir();
    onTestFinished(await lockDirectory(dataDir));
    const server = await createTestApp({ dataDir });
    const ref = { installation: 42, repository: WIDGETS_ID, name: "acme/widgets" };
    await (await server.talos.memory.open(ref)).add(issueMemory(1, "Widget problem 1"));
    await server.talos.memory.delete(ref);
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepository(scope);

    const { code, err } = await talos(
      ["backfill", "acme/widgets", "--installation", "42", "--data-dir", dataDir],
      { GITHUB_TOKEN: TOKEN },
    );
    expect(err).toBe(
      "talos backfill: memory 42/acme/widgets was deleted with its repository; set APP_ID and PRIVATE_KEY (instead of --installation) so that Talos can ask GitHub whether installation 42 holds acme/widgets again, and then index it\n",
    );
    expect(code).toBe(1);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe.runIf(await requirePostgres("talos backfill with DATABASE_URL"))(
  "talos backfill with DATABASE_URL",
  () => {
    const schema = freshSchema("talos_backfill");
    const env = {
      GITHUB_TOKEN: TOKEN,
      DATABASE_URL: TEST_DATABASE_URL,
      TALOS_DATABASE_SCHEMA: schema,
    };
    const namespace = { installation: 7, repository: WIDGETS_ID };
    afterAll(() => dropSchema(schema));

    it("leaves a backfill an instance is running, runs it into PostgreSQL once that instance lets go, and gives the claim back", async () => {
      const instance = await openPostgresMemory(schema);
      await instance.memory.open({ ...namespace, name: "acme/widgets" });
      expect(await instance.memory.claimBackfill(namespace, "instance-a", 60_000)).toBe(true);

      const refused = githubScope();
      mockRepoConfig(refused, { owner: "acme", repo: "widgets" });
      mockRepository(refused);
      const left = await talos(["backfill", "acme/widgets", "--installation", "7"], env);
      expect(left.code).toBe(1);
      expect(left.err.trim().split("\n")).toHaveLength(1);
      expect(left.err).toContain(
        "acme/widgets: a Talos instance is backfilling memory 7/acme/widgets now",
      );
      // No page was read: every mock here was used, and none for the issues was set.
      expect(refused.pendingMocks()).toEqual([]);

      await instance.memory.claimBackfill(namespace, "instance-a", 0);
      const scope = githubScope();
      mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
      mockRepository(scope);
      mockIssuePages(scope, `token ${TOKEN}`);
      const ran = await talos(["backfill", "acme/widgets", "--installation", "7"], env);
      expect(ran.code).toBe(0);
      expect(ran.err).toContain("backfill 7/acme/widgets: 130/1000 indexed");
      expect(scope.pendingMocks()).toEqual([]);
      expect(ran.out).toContain("memory 7/acme/widgets holds 130 records.");
      // Given back at the end: the instance may take it at once.
      expect(await instance.memory.claimBackfill(namespace, "instance-a", 60_000)).toBe(true);
      expect(await instance.memory.readBackfillState(namespace)).toMatchObject({
        status: "done",
        indexed: 130,
      });
      await instance.close();
    });
  },
);

describe("a backfill's failure, kept in backfill.json", () => {
  it("is kept and printed by talos memory stats --json without the token a proxy quoted in it", async () => {
    const dataDir = makeDataDir();
    const env = { GITHUB_TOKEN: TOKEN, TALOS_DATA_DIR: dataDir, TALOS_GITHUB_MAX_RETRIES: "0" };
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    mockRepositoryRead(scope, "acme/widgets", 101, { createdAt: "2020-01-01T00:00:00Z" });
    // A proxy in front of GitHub refuses the request and quotes the credentials it was sent.
    scope
      .get("/repos/acme/widgets/issues")
      .query({ ...QUERY, page: "1" })
      .reply(502, { message: `upstream refused Authorization: token ${TOKEN}` });
    const backfill = await runTalos(["backfill", "acme/widgets", "--installation", "7"], { env });
    expect(backfill.code).toBe(1);
    expect(backfill.err).not.toContain(TOKEN);
    expect(scope.pendingMocks()).toEqual([]);

    const stats = await runTalos(["memory", "stats", "--json"], { env });
    expect(stats.code).toBe(0);
    const { backfill: kept } = JSON.parse(stats.out).namespaces[0];
    expect(kept).toMatchObject({ status: "failed" });
    expect(kept.error).toContain("upstream refused Authorization: token [REDACTED]");
    expect(stats.out).not.toContain(TOKEN);

    // One an older version kept as it came, holding a configured secret of no known shape.
    const file = join(dataDir, "memory", "7", "101", "backfill.json");
    const secret = "local-model-key-0123456789";
    writeFileSync(file, readFileSync(file, "utf8").replace("[REDACTED]", secret));
    const older = await runTalos(["memory", "stats", "--json"], {
      env: { ...env, OPENAI_API_KEY: secret },
    });
    expect(older.code).toBe(0);
    expect(older.out).toContain("upstream refused");
    expect(older.out).not.toContain(secret);

    // A key cut short in it (no END line) is scrubbed to the end of its own text, not the line's.
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace(secret, "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow"),
    );
    const cut = await runTalos(["memory", "stats", "--json"], { env });
    expect(JSON.parse(cut.out).namespaces[0].backfill.error).toMatch(
      /upstream refused .*\[REDACTED\]$/,
    );
    expect(cut.out).not.toContain("MIIEow");
  });
});

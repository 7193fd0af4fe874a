import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { InstalledRepositories } from "../../src/github/list-installed-repositories.js";
import type { Octokit } from "../../src/github/octokit.js";
import { BackfillQueueFile } from "../../src/memory/backfill-queue-file.js";
import type { BackfillState } from "../../src/memory/backfill-repository.js";
import { BackfillRunner, type BackfillTarget } from "../../src/memory/backfill-runner.js";
import type { MemoryNamespace } from "../../src/memory/memory-registry.js";
import type { MemoryService } from "../../src/memory/memory-service.js";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import { FileSuspensionMarks } from "../../src/memory/suspension-marks.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry, issueMemory } from "../helpers/test-memory.js";
import { listedIssue } from "../helpers/listed-issue.js";

/**
 * Whether `promise` settles within `turns` turns of the microtask queue. What is awaited here
 * does no I/O, so a promise that has not settled by then never will: a busy loop of awaits
 * would starve timers, and the test could not even time out.
 */
async function settlesWithin<T>(promise: Promise<T>, turns: number): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < turns && !settled; i++) await Promise.resolve();
  return settled;
}

/** acme/widgets (id 2) as GitHub has it; when its pull requests were opened. */
const WIDGETS = { installation: 7, repository: 2, name: "acme/widgets" };
const OPENED_AT = "2026-10-01T00:00:00Z";
/** `GET /repos/acme/widgets`: its id, name and creation time. */
const WIDGETS_REPOSITORY = {
  id: 2,
  name: "widgets",
  full_name: "acme/widgets",
  owner: { login: "acme" },
  created_at: "2020-01-01T00:00:00Z",
};

/** A client for acme/widgets (no `.github/talos.yml`) whose issues listing `list` answers. */
const widgetsClient = (list: (params: { since: string }) => Promise<unknown>) =>
  ({
    config: { get: async () => ({ files: [] }) },
    rest: {
      repos: { get: async () => ({ data: WIDGETS_REPOSITORY }) },
      issues: { listForRepo: list },
    },
  }) as unknown as Octokit;

/** A runner whose every installation's client is `octokit`, its queue kept in `file`. */
function queuedRunner(memory: MemoryService, octokit: Octokit, file: string): BackfillRunner {
  const log = pino({ level: "silent" });
  return new BackfillRunner({
    memory,
    auth: async () => octokit,
    max: 1_000,
    clock: createFakeClock(),
    log,
    queue: new BackfillQueueFile(file, log),
  });
}

/**
 * A client for acme/widgets with issues switched off (GitHub answers 410 to listing them) and 250
 * pull requests, newest first; no `.github/talos.yml`. Records the pages asked of each listing.
 */
function issuesOffOctokit() {
  const asked = { issues: [] as number[], pulls: [] as number[] };
  const numbers = Array.from({ length: 250 }, (_, i) => 250 - i);
  const octokit = {
    config: { get: async () => ({ files: [] }) },
    rest: {
      repos: {
        get: async () => ({ data: WIDGETS_REPOSITORY }),
      },
      issues: {
        listForRepo: async ({ page }: { page: number }) => {
          asked.issues.push(page);
          throw Object.assign(new Error("Issues are disabled for this repo"), { status: 410 });
        },
      },
      pulls: {
        list: async ({ page }: { page: number }) => {
          asked.pulls.push(page);
          const data = numbers.slice((page - 1) * 100, page * 100).map((number) => ({
            number,
            title: `Pull ${number}`,
            body: "",
            state: "closed",
            user: { login: "octocat" },
            labels: [],
            html_url: `https://github.com/acme/widgets/pull/${number}`,
            created_at: OPENED_AT,
          }));
          return { data, headers: {} };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, asked };
}

/**
 * A runner catching up `namespaces` (their memories made first) through one client that answers
 * acme/widgets for every repository and lists nothing updated since; an installation in
 * `refused` has its token refused with that status. Records each listing's repository and since.
 */
async function catchUpRunner(
  namespaces: BackfillTarget[],
  refused: Record<number, number>,
  installed?: () => Promise<InstalledRepositories>,
  suspensions?: FileSuspensionMarks,
) {
  const memory = createTestRegistry(makeDataDir());
  for (const namespace of namespaces) await memory.open(namespace);
  const listed: Array<{ repo: string; since: string }> = [];
  const octokit = widgetsClient(async (params) => {
    const { owner, repo, since } = params as { owner: string; repo: string; since: string };
    listed.push({ repo: `${owner}/${repo}`, since });
    return { data: [], headers: {} };
  });
  const lines: Array<Record<string, unknown>> = [];
  const runner = new BackfillRunner({
    memory,
    auth: async (installation) => {
      const status = refused[installation];
      if (status) throw Object.assign(new Error("Refused"), { status });
      return octokit;
    },
    max: 1_000,
    clock: createFakeClock(),
    log: pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    ),
    installed,
    suspensions,
  });
  return { memory, runner, listed, lines };
}

describe("BackfillRunner", () => {
  it("closes while a backfill runs and another waits its turn: the waiting one never starts", async () => {
    const first = { installation: 7, repository: 1, name: "acme/widgets" };
    const second = { installation: 7, repository: 2, name: "acme/gadgets" };
    let finishFirst!: (state: BackfillState) => void;
    const asked: MemoryNamespace[] = [];
    // Only the first backfill's progress is read, and only once it is let go does it end (as
    // one already done): nothing else of the memory, or of GitHub, is reached.
    const memory = {
      readBackfillState: (namespace: MemoryNamespace) => {
        asked.push(namespace);
        return new Promise<BackfillState>((resolve) => (finishFirst = resolve));
      },
    } as unknown as MemoryService;
    const runner = new BackfillRunner({
      memory,
      auth: () => Promise.reject(new Error("no GitHub here")) as Promise<Octokit>,
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
    });
    runner.enqueue(first);
    runner.enqueue(second);
    while (asked.length === 0) await Promise.resolve();

    const closing = runner.close();
    finishFirst({ status: "done", page: 2, indexed: 10 });
    const closed = await settlesWithin(closing, 1_000);
    // Unstuck either way, so that a failure here does not hang the test run.
    await runner.cancel(second);

    expect(closed).toBe(true);
    expect(asked).toEqual([first]);
  });

  it("resumes the other unfinished backfills at start when one's progress file is damaged, and names that file", async () => {
    const memory = createTestRegistry(makeDataDir());
    const broken = { installation: 7, repository: 1, name: "acme/broken" };
    const widgets = { installation: 7, repository: 2, name: "acme/widgets" };
    await memory.open(broken);
    await (
      await memory.open(widgets)
    ).saveBackfillState({ status: "running", page: 3, indexed: 200 });
    const damaged = join(memory.directoryOf(broken), "backfill.json");
    await writeFile(damaged, "{ not json");
    // GitHub's answer to which repository has the name: none now, so the run stops there.
    const asked: string[] = [];
    const octokit = {
      rest: {
        repos: {
          get: async ({ owner, repo }: { owner: string; repo: string }) => {
            asked.push(`${owner}/${repo}`);
            throw Object.assign(new Error("Not Found"), { status: 404 });
          },
        },
      },
    } as unknown as Octokit;
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const runner = new BackfillRunner({
      memory,
      auth: async (installation) => {
        expect(installation).toBe(7);
        return octokit;
      },
      max: 1_000,
      clock: createFakeClock(),
      log,
    });

    await runner.resume();
    await runner.idle();
    await memory.closeAll();

    expect(asked).toEqual(["acme/widgets"]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        installation: 7,
        repositoryId: 1,
        err: expect.objectContaining({ message: expect.stringContaining(`${damaged} is damaged`) }),
      }),
    );
  });
  it("counts a catch-up done for a repository whose installation is gone (its token refused), and catches the others up", async () => {
    const gone = { installation: 6, repository: 1, name: "acme/gone" };
    const { memory, runner, listed, lines } = await catchUpRunner([gone, WIDGETS], { 6: 404 });

    const finished: string[] = [];
    const done = await runner.catchUp("2026-11-20T00:00:00.000Z", {
      done: new Set(),
      finished: (key) => finished.push(key),
    });
    // A start after a stop: what was caught up before is left.
    const again = await runner.catchUp("2026-11-20T00:00:00.000Z", {
      done: new Set(finished),
      finished: (key) => finished.push(key),
    });
    await memory.closeAll();

    expect([done, again]).toEqual([true, true]);
    expect(finished.sort()).toEqual(["6/1", "7/2"]);
    expect(listed).toEqual([{ repo: "acme/widgets", since: "2026-11-20T00:00:00.000Z" }]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        installation: 6,
        status: 404,
        msg: "catch-up skipped: the installation is gone or suspended",
      }),
    );
  });

  it("resumes at the next start the backfills queued and not finished when it stopped, and forgets those that ended", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    const first = { installation: 7, repository: 1, name: "acme/widgets" };
    const second = { installation: 8, repository: 2, name: "acme/gadgets" };
    const gone = () => Object.assign(new Error("Not Found"), { status: 404 });
    let refuseFirst!: () => void;
    const log = pino({ level: "silent" });
    const stopped = new BackfillRunner({
      memory,
      // The first backfill waits for GitHub until the stop; the second never starts.
      auth: () => new Promise<Octokit>((_, reject) => (refuseFirst = () => reject(gone()))),
      max: 1_000,
      clock: createFakeClock(),
      log,
      queue: new BackfillQueueFile(file, log),
    });
    stopped.enqueue(first);
    stopped.enqueue(second);
    while (!refuseFirst) await new Promise((resolve) => setImmediate(resolve));
    const closing = stopped.close();
    refuseFirst();
    await closing;
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([first, second]);

    const asked: number[] = [];
    const next = new BackfillRunner({
      memory,
      auth: async (installation) => {
        asked.push(installation);
        throw gone();
      },
      max: 1_000,
      clock: createFakeClock(),
      log,
      queue: new BackfillQueueFile(file, log),
    });
    await next.resume();
    await next.idle();
    await next.close();
    await memory.closeAll();

    expect(asked).toEqual([7, 8]);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
  });

  it("keeps the bound a command asked for through a restart, with the server's own backfills off", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    const target = { installation: 7, repository: 1, name: "acme/widgets" };
    const gone = () => Object.assign(new Error("Not Found"), { status: 404 });
    let refuse!: () => void;
    const log = pino({ level: "silent" });
    // TALOS_BACKFILL_MAX=0: only what a command asks for is read.
    const options = { memory, max: 0, clock: createFakeClock(), log };
    const stopped = new BackfillRunner({
      ...options,
      auth: () => new Promise<Octokit>((_, reject) => (refuse = () => reject(gone()))),
      queue: new BackfillQueueFile(file, log),
    });
    expect(await stopped.request(target, { max: 50 })).toBe(true);
    // One is queued (and running): a second request is told so.
    expect(await stopped.request(target, { max: 50 })).toBe(false);
    while (!refuse) await new Promise((resolve) => setImmediate(resolve));
    const closing = stopped.close();
    refuse();
    await closing;
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([{ ...target, max: 50 }]);

    const asked: number[] = [];
    const next = new BackfillRunner({
      ...options,
      auth: async (installation) => {
        asked.push(installation);
        throw gone();
      },
      queue: new BackfillQueueFile(file, log),
    });
    await next.resume();
    await next.idle();
    await next.close();
    await memory.closeAll();
    // Run (its client asked for), not skipped as TALOS_BACKFILL_MAX=0 would have it.
    expect(asked).toEqual([7]);
  });

  it("keeps a catch-up a command asked for, with its time and bound, until it ends: one that failed or was stopped runs at the next start", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    const since = "2026-11-20T00:00:00.000Z";
    const log = pino({ level: "silent" });
    const queued = async () => JSON.parse(await readFile(file, "utf8")) as unknown;
    const asked = { ...WIDGETS, max: 2, since };
    const listed: string[] = [];
    const client = (list: () => Promise<unknown>) =>
      widgetsClient(async ({ since }) => {
        listed.push(since);
        return list();
      });
    const options = { memory, max: 0, clock: createFakeClock(), log };

    // GitHub refuses the listing (a status not tried again): the catch-up fails, and is kept.
    const failing = new BackfillRunner({
      ...options,
      auth: async () =>
        client(async () => {
          throw Object.assign(new Error("Unprocessable"), { status: 422 });
        }),
      queue: new BackfillQueueFile(file, log),
    });
    expect(await failing.request(WIDGETS, { since, max: 2 })).toBe(true);
    await failing.idle();
    expect(await queued()).toEqual([asked]);
    await failing.close();

    // A start resumes it; a stop while it waits for GitHub keeps it.
    let refuse!: () => void;
    const stopped = new BackfillRunner({
      ...options,
      auth: () =>
        new Promise<Octokit>(
          (_, reject) =>
            (refuse = () => reject(Object.assign(new Error("Not Found"), { status: 404 }))),
        ),
      queue: new BackfillQueueFile(file, log),
    });
    await stopped.resume();
    while (!refuse) await new Promise((resolve) => setImmediate(resolve));
    const closing = stopped.close();
    refuse();
    await closing;
    expect(await queued()).toEqual([asked]);

    // The next start catches up, as asked: since that time, at most 2 of the 3 updated.
    const updated = [3, 2, 1].map((number) =>
      listedIssue(number, { updated_at: "2026-11-24T00:00:00Z" }),
    );
    const next = new BackfillRunner({
      ...options,
      auth: async () => client(async () => ({ data: updated, headers: {} })),
      queue: new BackfillQueueFile(file, log),
    });
    await next.resume();
    await next.idle();
    await next.close();
    const store = await memory.open(WIDGETS);
    const remembered = (await store.stats()).records;
    await memory.closeAll();

    expect(listed).toEqual([since, since]);
    expect(remembered).toBe(2);
    expect(await queued()).toEqual([]);
  });

  it("runs a start's catch-up of a repository beside the one a command asked for, each with its own time", async () => {
    const memory = createTestRegistry(makeDataDir());
    await memory.open(WIDGETS);
    const file = join(makeDataDir(), "backfill-queue.json");
    const asked = "2026-11-25T00:00:00.000Z";
    await writeFile(file, JSON.stringify([{ ...WIDGETS, max: 5, since: asked }]));
    const listed: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const octokit = widgetsClient(async ({ since }) => {
      listed.push(since);
      // The command's catch-up is still reading when the start's is queued.
      await released;
      return { data: [], headers: {} };
    });
    const runner = queuedRunner(memory, octokit, file);
    // A restart: the command's catch-up is resumed from the file, then the start's own runs.
    await runner.resume();
    while (listed.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // The start's catch-up queues its repositories in the turn after it lists the memories:
    // the command's is let go only then.
    const list = memory.list.bind(memory);
    memory.list = async () => {
      const known = await list();
      setImmediate(release);
      return known;
    };
    const outage = "2026-11-20T00:00:00.000Z";
    const done = await runner.catchUp(outage, { done: new Set(), finished: () => undefined });
    await runner.idle();
    await runner.close();
    await memory.closeAll();

    expect(done).toBe(true);
    expect(listed).toEqual([asked, outage]);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
  });

  it("reads from the earlier time when a catch-up is asked for behind one from a later time, queued or running", async () => {
    const memory = createTestRegistry(makeDataDir());
    await memory.open(WIDGETS);
    const file = join(makeDataDir(), "backfill-queue.json");
    const queued = async () => JSON.parse(await readFile(file, "utf8")) as unknown;
    const listed: Array<string | undefined> = [];
    // Each listing waits until let go, so what is asked meanwhile finds the one before it held.
    let release = () => undefined as void;
    const octokit = widgetsClient(async (params) => {
      listed.push(params.since);
      await new Promise<void>((resolve) => (release = resolve));
      return { data: [], headers: {} };
    });
    const runner = queuedRunner(memory, octokit, file);
    const waitForListing = async (count: number) => {
      while (listed.length < count) await new Promise((resolve) => setImmediate(resolve));
    };
    const [later, earlier, earliest] = [
      "2026-11-28T00:00:00.000Z",
      "2026-11-20T00:00:00.000Z",
      "2026-11-10T00:00:00.000Z",
    ];

    // Running: it ends as it is, then runs again from the earlier time (it was a no-op).
    expect(await runner.request(WIDGETS, { since: later, max: 5 })).toBe(true);
    await waitForListing(1);
    expect(await runner.request(WIDGETS, { since: earlier, max: 5 })).toBe(true);
    expect(await runner.request(WIDGETS, { since: later, max: 5 })).toBe(false);
    expect(await queued()).toEqual([{ ...WIDGETS, max: 5, since: earlier }]);
    release();
    await waitForListing(2);
    expect(listed).toEqual([later, earlier]);

    // Queued behind that: it starts from the earlier time, once.
    expect(await runner.request({ ...WIDGETS, repository: 2 }, { max: 5 })).toBe(true);
    release();
    await waitForListing(3);
    expect(await runner.request(WIDGETS, { since: later, max: 5 })).toBe(true);
    expect(await runner.request(WIDGETS, { since: earliest, max: 5 })).toBe(true);
    release();
    await waitForListing(4);
    release();
    await runner.idle();
    await runner.close();
    await memory.closeAll();
    expect(listed).toEqual([later, earlier, undefined, earliest]);
    expect(await queued()).toEqual([]);
  });

  describe("a catch-up asked from a later time than the one the queue's file holds", () => {
    const [earlier, later] = ["2026-11-10T00:00:00.000Z", "2026-11-28T00:00:00.000Z"];
    const listing = (listed: Array<string | undefined>) =>
      widgetsClient(async ({ since }) => {
        listed.push(since);
        return { data: [], headers: {} };
      });

    it("reads from the file's earlier time, when asked while a restart is resuming it", async () => {
      const memory = createTestRegistry(makeDataDir());
      await memory.open(WIDGETS);
      const file = join(makeDataDir(), "backfill-queue.json");
      // Left by the process before (an unsuspension's catch-up, queued, then a crash).
      await writeFile(file, JSON.stringify([{ ...WIDGETS, max: 5, since: earlier }]));
      const listed: Array<string | undefined> = [];
      const runner = queuedRunner(memory, listing(listed), file);
      const resumed = runner.resume();
      // `talos backfill acme/widgets --since <later>`, answered as the server starts: it was
      // queued, and the file's entry, read after, dropped as stale.
      expect(await runner.request(WIDGETS, { since: later, max: 5 })).toBe(false);
      await resumed;
      await runner.idle();
      await runner.close();
      await memory.closeAll();
      expect(listed).toEqual([earlier]);
      expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
    });

    it("reads from the earlier time of one that failed, kept in the file for the next start", async () => {
      const memory = createTestRegistry(makeDataDir());
      await memory.open(WIDGETS);
      const file = join(makeDataDir(), "backfill-queue.json");
      const listed: Array<string | undefined> = [];
      let down = true;
      const log = pino({ level: "silent" });
      const runner = new BackfillRunner({
        memory,
        auth: async () => {
          if (down) throw new Error("getaddrinfo EAI_AGAIN api.github.com");
          return listing(listed);
        },
        max: 1_000,
        clock: createFakeClock(),
        log,
        queue: new BackfillQueueFile(file, log),
      });
      expect(await runner.request(WIDGETS, { since: earlier, max: 5 })).toBe(true);
      await runner.idle();
      expect(JSON.parse(await readFile(file, "utf8"))).toEqual([
        { ...WIDGETS, max: 5, since: earlier },
      ]);
      down = false;
      // It replaced the failed one in the file, with its later time.
      expect(await runner.request(WIDGETS, { since: later, max: 5 })).toBe(true);
      await runner.idle();
      await runner.close();
      await memory.closeAll();
      expect(listed).toEqual([earlier]);
      expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
    });
  });

  it("keeps what a command asked for in the queue's file once its request resolves, and forgets its catch-up when the repository's backfills are cancelled", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    const log = pino({ level: "silent" });
    let refuse!: () => void;
    const runner = new BackfillRunner({
      memory,
      max: 0,
      clock: createFakeClock(),
      log,
      auth: () =>
        new Promise<Octokit>(
          (_, reject) =>
            (refuse = () => reject(Object.assign(new Error("Not Found"), { status: 404 }))),
        ),
      queue: new BackfillQueueFile(file, log),
    });
    // The backfill runs (waiting for GitHub); the catch-up waits its turn.
    await runner.request(WIDGETS, { max: 5 });
    await runner.request(WIDGETS, { since: "2026-11-20T00:00:00.000Z", max: 5 });
    while (!refuse) await new Promise((resolve) => setImmediate(resolve));
    // Kept in the file once each request resolved.
    expect(JSON.parse(await readFile(file, "utf8"))).toHaveLength(2);
    // The repository was deleted: nothing of it is left to resume.
    const cancelled = runner.cancel(WIDGETS);
    refuse();
    await cancelled;
    await runner.close();
    await memory.closeAll();

    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
  });

  it("keeps what the queue's file held when a backfill is queued before the start resumes them", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    const since = "2026-11-25T00:00:00.000Z";
    const earlier = [
      { ...WIDGETS, max: 5, since },
      { installation: 8, repository: 3, name: "acme/gadgets" },
    ];
    await writeFile(file, JSON.stringify(earlier));
    const log = pino({ level: "silent" });
    const asked: number[] = [];
    const runner = new BackfillRunner({
      memory,
      auth: async (installation) => {
        asked.push(installation);
        throw Object.assign(new Error("Not Found"), { status: 404 });
      },
      max: 1_000,
      clock: createFakeClock(),
      log,
      queue: new BackfillQueueFile(file, log),
    });
    // A job journaled before the stop (a repository added) queues one before resume() runs.
    const added = { installation: 9, repository: 4, name: "acme/added", max: 5 };
    await runner.request(added, { max: 5 });
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([...earlier, added]);

    await runner.resume();
    await runner.idle();
    await runner.close();
    await memory.closeAll();
    expect(asked.sort()).toEqual([7, 8, 9]);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
  });

  it("keeps the entry of a backfill queued again while its cancelled run was stopping", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    const log = pino({ level: "silent" });
    const gone = () => Object.assign(new Error("Not Found"), { status: 404 });
    const waiting: Array<() => void> = [];
    const runner = new BackfillRunner({
      memory,
      // Each run waits for GitHub until let go.
      auth: () => new Promise<Octokit>((_, reject) => waiting.push(() => reject(gone()))),
      max: 1_000,
      clock: createFakeClock(),
      log,
      queue: new BackfillQueueFile(file, log),
    });
    await runner.request(WIDGETS, { max: 5 });
    while (waiting.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // Removed, then added back before the run in hand stopped.
    const cancelled = runner.cancel(WIDGETS);
    await runner.request(WIDGETS, { max: 5 });
    waiting.shift()!();
    await cancelled;
    await new Promise((resolve) => setImmediate(resolve));
    // Resolves once the file holds it, and what was written before.
    const other = { installation: 8, repository: 3, name: "acme/gadgets" };
    await runner.request(other, { max: 5 });

    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([
      { ...WIDGETS, max: 5 },
      { ...other, max: 5 },
    ]);
    const closing = runner.close();
    for (const letGo of waiting.splice(0)) letGo();
    await closing;
    await memory.closeAll();
  });

  it("resumes none of the queued backfills when their file is damaged, and says so", async () => {
    const file = join(makeDataDir(), "backfill-queue.json");
    await writeFile(file, '[{"installation": "seven"}]');
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: "warn" },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );

    expect(await new BackfillQueueFile(file, log).read()).toEqual([]);
    expect(lines).toEqual([
      expect.objectContaining({ file, msg: "queued backfills not resumed: the file is damaged" }),
    ]);
  });

  it("leaves at start a repository whose issues are disabled, and checks it again at the first start a day later", async () => {
    const memory = createTestRegistry(makeDataDir());
    const widgets = { installation: 7, repository: 2, name: "acme/widgets" };
    const clock = createFakeClock();
    await (
      await memory.open(widgets)
    ).saveBackfillState({
      status: "done",
      repo: "acme/widgets",
      page: 1,
      indexed: 0,
      issuesDisabledAt: new Date(clock.now()).toISOString(),
    });
    // GitHub's answer to which repository has the name: none now, so a run stops there.
    const asked: string[] = [];
    const octokit = {
      rest: {
        repos: {
          get: async ({ owner, repo }: { owner: string; repo: string }) => {
            asked.push(`${owner}/${repo}`);
            throw Object.assign(new Error("Not Found"), { status: 404 });
          },
        },
      },
    } as unknown as Octokit;
    const start = async () => {
      const runner = new BackfillRunner({
        memory,
        auth: async () => octokit,
        max: 1_000,
        clock,
        log: pino({ level: "silent" }),
      });
      await runner.resume();
      await runner.idle();
    };

    await start();
    clock.advance(23 * 3_600_000);
    await start();
    expect(asked).toEqual([]);

    clock.advance(3_600_000);
    await start();
    await memory.closeAll();
    expect(asked).toEqual(["acme/widgets"]);
  });
  it("checks again a day later a repository whose issues are off, without reading its pull requests again", async () => {
    const memory = createTestRegistry(makeDataDir());
    const clock = createFakeClock();
    const read: BackfillState = {
      status: "done",
      repo: "acme/widgets",
      listing: "pulls",
      page: 4,
      indexed: 250,
      last: { number: 1, createdAt: OPENED_AT },
      issuesDisabledAt: new Date(clock.now()).toISOString(),
    };
    await (await memory.open(WIDGETS)).saveBackfillState(read);
    const { octokit, asked } = issuesOffOctokit();
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
    });

    clock.advance(24 * 3_600_000);
    await runner.resume();
    await runner.idle();

    // One request: the issues' first page, still 410. The pull requests opened since came by
    // their webhooks.
    expect(asked).toEqual({ issues: [1], pulls: [] });
    expect(await memory.readBackfillState(WIDGETS)).toEqual({
      ...read,
      issuesDisabledAt: new Date(clock.now()).toISOString(),
    });
    await memory.closeAll();
  });

  it("resumes at start a pull request listing a restart interrupted, rather than a day later", async () => {
    const memory = createTestRegistry(makeDataDir());
    const clock = createFakeClock();
    const issuesDisabledAt = new Date(clock.now()).toISOString();
    await (
      await memory.open(WIDGETS)
    ).saveBackfillState({
      status: "running",
      repo: "acme/widgets",
      listing: "pulls",
      page: 2,
      indexed: 100,
      last: { number: 151, createdAt: OPENED_AT },
      issuesDisabledAt,
    });
    const { octokit, asked } = issuesOffOctokit();
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
    });

    await runner.resume();
    await runner.idle();

    // Page 2 where it stopped, each page followed by the page before it again.
    expect(asked).toEqual({ issues: [], pulls: [2, 1, 3, 2] });
    expect(await memory.readBackfillState(WIDGETS)).toEqual({
      status: "done",
      repo: "acme/widgets",
      listing: "pulls",
      page: 4,
      indexed: 250,
      last: { number: 1, createdAt: OPENED_AT },
      issuesDisabledAt,
    });
    const records = await (await memory.open(WIDGETS)).list();
    expect(records).toHaveLength(150);
    expect(records.every((r) => r.id === `pull_request-${r.number}`)).toBe(true);
    await memory.closeAll();
  });

  it("runs at once, when told an issue was opened, only the backfill of a repository it found with issues off", async () => {
    const memory = createTestRegistry(makeDataDir());
    const clock = createFakeClock();
    const gadgets = { installation: 7, repository: 3, name: "acme/gadgets" };
    await (
      await memory.open(gadgets)
    ).saveBackfillState({ status: "done", repo: "acme/gadgets", page: 2, indexed: 10 });
    await (
      await memory.open(WIDGETS)
    ).saveBackfillState({
      status: "done",
      repo: "acme/widgets",
      listing: "pulls",
      page: 4,
      indexed: 250,
      last: { number: 1, createdAt: OPENED_AT },
      issuesDisabledAt: new Date(clock.now()).toISOString(),
    });
    const { octokit, asked } = issuesOffOctokit();
    const authed: number[] = [];
    const runner = new BackfillRunner({
      memory,
      auth: async (installation) => {
        authed.push(installation);
        return octokit;
      },
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
    });

    // A repository whose backfill is done, or that has none: nothing asked of GitHub.
    await runner.issuesSeen(gadgets);
    await runner.issuesSeen({ installation: 7, repository: 4, name: "acme/tools" });
    await runner.idle();
    expect(authed).toEqual([]);

    // Issues off a moment ago, by its progress: checked now, not a day later.
    await runner.issuesSeen(WIDGETS);
    await runner.idle();
    expect(authed).toEqual([7]);
    expect(asked).toEqual({ issues: [1], pulls: [] });
    await memory.closeAll();
  });
});

describe("a backfill that gives up on an outage", () => {
  /**
   * A clock whose short sleeps (a page's own retries) pass at once, and whose long ones (the
   * runner's resumption) wait to be woken, or for their signal.
   */
  function outageClock() {
    let now = Date.UTC(2026, 10, 24, 12);
    const waits: Array<{ ms: number; wake: () => void }> = [];
    const clock = {
      now: () => now,
      sleep: (ms: number, signal?: AbortSignal) =>
        new Promise<void>((resolve) => {
          if (ms < 60_000) {
            now += ms;
            setImmediate(resolve);
            return;
          }
          waits.push({ ms, wake: () => ((now += ms), resolve()) });
          signal?.addEventListener("abort", () => resolve(), { once: true });
        }),
    };
    return { clock, waits };
  }

  /** acme/widgets, whose issues listing answers 502 `failing` times, then one issue. */
  async function outage(failing: number) {
    const memory = createTestRegistry(makeDataDir());
    const { clock, waits } = outageClock();
    const listed: number[] = [];
    let left = failing;
    const octokit = widgetsClient(async () => {
      listed.push(left);
      if (left-- > 0) throw Object.assign(new Error("Bad Gateway"), { status: 502 });
      return { data: [listedIssue(1, { title: "Crash on save" })], headers: {} };
    });
    const log = pino({ level: "silent" });
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock,
      log,
      // Two tries a page, as an outage longer than the default six outlasts those.
      retry: { attempts: 2, baseMs: 1, maxMs: 1 },
    });
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise((resolve) => setImmediate(resolve));
    };
    return { memory, runner, waits, listed, until };
  }

  it("runs again while the process runs, 5 minutes later and then doubling, until it is done", async () => {
    const { memory, runner, waits, listed, until } = await outage(4);
    runner.enqueue(WIDGETS);
    await until(() => waits.length === 1);
    // Its page failed twice: given up, and waiting to run again rather than for the next start.
    expect(listed).toHaveLength(2);
    expect(waits[0]!.ms).toBe(300_000);
    waits[0]!.wake();
    await until(() => waits.length === 2);
    expect(listed).toHaveLength(4);
    expect(waits[1]!.ms).toBe(600_000);
    waits[1]!.wake();
    await until(() => listed.length === 5);
    await runner.idle();
    const store = await memory.open(WIDGETS);
    expect((await store.get("issue-1"))?.text).toContain("Crash on save");
    expect((await memory.readBackfillState(WIDGETS))?.status).toBe("done");
    await runner.close();
    await memory.closeAll();
    expect(waits).toHaveLength(2);
  });

  it("does not run again once its repository left, nor after the runner closed", async () => {
    for (const end of ["cancel", "close"] as const) {
      const { memory, runner, waits, listed, until } = await outage(100);
      runner.enqueue(WIDGETS);
      await until(() => waits.length === 1);
      if (end === "cancel") await runner.cancelInstallation(WIDGETS.installation);
      else await runner.close();
      waits[0]!.wake();
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      await runner.idle();
      expect(listed, end).toHaveLength(2);
      await runner.close();
      await memory.closeAll();
    }
  });
});

describe("BackfillRunner with TALOS_BACKFILL_MAX=0", () => {
  it("reads nothing of GitHub: no backfill on install or first event, and a catch-up with nothing to do", async () => {
    const memory = createTestRegistry(makeDataDir());
    await memory.open(WIDGETS);
    let clients = 0;
    const lines: Array<Record<string, unknown>> = [];
    const runner = new BackfillRunner({
      memory,
      auth: async () => {
        clients++;
        throw new Error("no client should be asked for");
      },
      max: 0,
      backfillOnEvent: true,
      clock: createFakeClock(),
      log: pino(
        { level: "info" },
        { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
      ),
    });

    runner.enqueue(WIDGETS);
    await runner.opened({ ...WIDGETS, repository: 3, name: "acme/gears" });
    const caughtUp = await runner.catchUp("2026-11-20T00:00:00.000Z");
    await runner.idle();
    await memory.closeAll();

    expect(caughtUp).toBe(true);
    expect(clients).toBe(0);
    expect(lines.map((line) => line.msg)).toEqual(["backfill skipped: TALOS_BACKFILL_MAX is 0"]);
    expect(await memory.readBackfillState(WIDGETS)).toBeUndefined();
  });
});

describe("BackfillRunner.opened", () => {
  it("backfills a memory with no progress once; a progress it cannot read is asked again at the next event", async () => {
    const registry = createTestRegistry(makeDataDir());
    let failures = 1;
    // The registry, but its first read of a backfill's progress fails (a disk error, say).
    const memory = new Proxy(registry, {
      get(target, property) {
        if (property === "readBackfillState")
          return async (namespace: MemoryNamespace) => {
            if (failures-- > 0) throw new Error("EIO: i/o error");
            return target.readBackfillState(namespace);
          };
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? (value as () => unknown).bind(target) : value;
      },
    });
    const { octokit, asked } = issuesOffOctokit();
    const lines: Array<Record<string, unknown>> = [];
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      backfillOnEvent: true,
      clock: createFakeClock(),
      log: pino(
        { level: "info" },
        { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
      ),
    });
    await registry.open(WIDGETS);

    await runner.opened(WIDGETS);
    expect(lines.at(-1)).toMatchObject({ msg: "cannot tell whether the memory was backfilled" });
    await runner.opened(WIDGETS);
    await runner.opened(WIDGETS);
    await runner.idle();
    await runner.opened(WIDGETS);
    await runner.idle();
    await registry.closeAll();

    // Each page after the first followed by the page before it again.
    expect(asked).toEqual({ issues: [1], pulls: [1, 2, 1, 3, 2] });
    expect(await registry.readBackfillState(WIDGETS)).toMatchObject({ status: "done" });
    expect(lines.filter((line) => line.msg === "backfill started")).toHaveLength(1);
  });
});

describe("BackfillRunner.catchUp and what the installations hold now", () => {
  /** acme/gone (installation 6), acme/widgets and acme/left (7), acme/paused (8, suspended). */
  const NAMESPACES = {
    gone: { installation: 6, repository: 1, name: "acme/gone" },
    widgets: WIDGETS,
    left: { installation: 7, repository: 3, name: "acme/left" },
    paused: { installation: 8, repository: 4, name: "acme/paused" },
  };
  const setUp = (installed: () => Promise<InstalledRepositories>) =>
    catchUpRunner(Object.values(NAMESPACES), { 8: 403 }, installed);

  it("deletes the memory of a repository removed while Talos was down, and keeps those of an installation not listed and of a suspended one", async () => {
    const { memory, runner, listed, lines } = await setUp(async () => ({
      installations: [7, 8],
      read: [7],
      repositories: [{ installation: 7, repository: 2, name: "acme/widgets" }],
    }));

    const finished: string[] = [];
    const done = await runner.catchUp("2026-11-20T00:00:00.000Z", {
      done: new Set(),
      finished: (key) => finished.push(key),
    });

    expect(done).toBe(true);
    expect(finished.sort()).toEqual(["6/1", "7/2", "7/3", "8/4"]);
    // Installation 6 may be another app's sharing this storage: not this app's to delete.
    expect((await memory.list()).map((n) => n.name).sort()).toEqual([
      "acme/gone",
      "acme/paused",
      "acme/widgets",
    ]);
    // Only the one still held is read; the removed one is refused until it is added back.
    expect(listed.map((listing) => listing.repo)).toEqual(["acme/widgets"]);
    await expect(memory.open(NAMESPACES.left)).rejects.toThrow(MemoryDeletedError);
    expect(lines).toContainEqual(
      expect.objectContaining({
        installation: 7,
        repository: "acme/left",
        msg: "memory deleted: the repository left its installation while Talos was down",
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        installation: 6,
        level: 40,
        msg: "memory of an installation the app does not list (uninstalled while Talos was down, or another app's): kept; `talos memory delete --installation <id>` deletes it",
      }),
    );
    await memory.closeAll();
  });

  it("readmits and backfills a repository removed, then added back while Talos missed the event", async () => {
    const memory = createTestRegistry(makeDataDir());
    const left = NAMESPACES.left;
    await (await memory.open(left)).add(issueMemory(1, "From before it left", { repo: left.name }));
    // Its installation_repositories.removed came; the .added that followed did not.
    await memory.delete(left);
    const octokit = {
      config: { get: async () => ({ files: [] }) },
      rest: {
        repos: {
          get: async () => ({
            data: { ...WIDGETS_REPOSITORY, id: 3, name: "left", full_name: "acme/left" },
          }),
        },
        issues: {
          listForRepo: async ({ page }: { page: number }) => ({
            data:
              page === 1
                ? [listedIssue(5, { html_url: "https://github.com/acme/left/issues/5" })]
                : [],
            headers: {},
          }),
        },
      },
    } as unknown as Octokit;
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
      installed: async () => ({ installations: [7], read: [7], repositories: [left] }),
    });

    expect(await runner.catchUp("2026-11-20T00:00:00.000Z")).toBe(true);
    await runner.idle();
    await runner.close();
    // Open again, empty of what it held before it left, and backfilled.
    const records = await (await memory.open(left)).list();
    await memory.closeAll();
    expect(records.map((r) => r.id)).toEqual(["issue-5"]);
  });

  it("deletes nothing when the installations cannot be listed, catches every memory up, and says it is unfinished", async () => {
    const { memory, runner, listed } = await setUp(async () => {
      throw Object.assign(new Error("Bad Gateway"), { status: 502 });
    });

    const done = await runner.catchUp("2026-11-20T00:00:00.000Z");

    expect(done).toBe(false);
    expect((await memory.list()).length).toBe(4);
    // acme/gone and acme/left ask GitHub for their repository, which answers acme/widgets's;
    // acme/paused's token is refused.
    expect(listed.map((listing) => listing.repo)).toEqual(["acme/widgets"]);
    await memory.closeAll();
  });

  it("finds by id a repository renamed while Talos missed the event, when its old name is another repository's now: backfills it and catches it up under its new name", async () => {
    const memory = createTestRegistry(makeDataDir());
    const renamed = { installation: 7, repository: 3, name: "acme/old" };
    await memory.open(renamed);
    // acme/old is a new repository (id 9) now; id 3 is acme/new, on the installation's 2nd page.
    const taken = { ...WIDGETS_REPOSITORY, id: 9, name: "old", full_name: "acme/old" };
    const moved = { ...WIDGETS_REPOSITORY, id: 3, name: "new", full_name: "acme/new" };
    const other = (id: number) => ({
      ...WIDGETS_REPOSITORY,
      id,
      name: `r${id}`,
      full_name: `acme/r${id}`,
    });
    const pages = [[other(10), other(11)], [other(12), moved], [other(13)]];
    const asked = { names: [] as string[], pages: 0, listed: [] as string[] };
    const octokit = {
      config: { get: async () => ({ files: [] }) },
      paginate: async (
        _route: unknown,
        _params: unknown,
        map: (response: { data: unknown[] }, done: () => void) => unknown[],
      ) => {
        const found: unknown[] = [];
        let stop = false;
        for (const data of pages) {
          asked.pages++;
          found.push(...map({ data }, () => (stop = true)));
          if (stop) break;
        }
        return found;
      },
      rest: {
        apps: { listReposAccessibleToInstallation: {} },
        repos: {
          get: async ({ owner, repo }: { owner: string; repo: string }) => {
            asked.names.push(`${owner}/${repo}`);
            return { data: taken };
          },
        },
        issues: {
          listForRepo: async (params: { owner: string; repo: string; page?: number }) => {
            asked.listed.push(`${params.owner}/${params.repo}`);
            return {
              data:
                (params.page ?? 1) === 1
                  ? [listedIssue(5, { html_url: "https://github.com/acme/new/issues/5" })]
                  : [],
              headers: {},
            };
          },
        },
      },
    } as unknown as Octokit;
    const lines: Array<Record<string, unknown>> = [];
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock: createFakeClock(),
      log: pino(
        { level: "info" },
        { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
      ),
    });

    runner.enqueue(renamed);
    await runner.idle();
    expect(await runner.catchUp("2026-11-20T00:00:00.000Z")).toBe(true);
    await runner.idle();
    await runner.close();

    expect(lines.map((line) => line.msg)).not.toContain("backfill skipped: the repository is gone");
    // Asked by its old name, then found on the second page of its installation's: twice.
    expect(asked).toMatchObject({ names: ["acme/old", "acme/new"], pages: 4 });
    expect(asked.listed.every((name) => name === "acme/new")).toBe(true);
    expect(asked.listed.length).toBeGreaterThanOrEqual(2);
    expect((await memory.list()).map(({ repository, name }) => ({ repository, name }))).toEqual([
      { repository: 3, name: "acme/new" },
    ]);
    const records = await (await memory.open({ ...renamed, name: "acme/new" })).list();
    await memory.closeAll();
    expect(records.map((r) => r.id)).toEqual(["issue-5"]);
  });
});

describe("a start's catch-up and suspended installations", () => {
  it("catches up from its mark an installation unsuspended while Talos was down, and marks one listed as suspended", async () => {
    const file = join(makeDataDir(), "suspensions.json");
    const marks = new FileSuspensionMarks(file, pino({ level: "silent" }));
    // Installation 7 was suspended a week before Talos went down; its unsuspension came while
    // Talos was down, too long ago to be redelivered.
    await marks.record(7, "2026-11-13T00:00:00.000Z");
    const installed = async (): Promise<InstalledRepositories> => ({
      installations: [7, 8],
      read: [7],
      repositories: [{ installation: 7, repository: 2, name: "acme/widgets" }],
      suspended: [{ installation: 8, at: "2026-11-21T10:00:00Z" }],
    });
    const { memory, runner, listed } = await catchUpRunner([WIDGETS], {}, installed, marks);

    expect(await runner.catchUp("2026-11-20T00:00:00.000Z")).toBe(true);
    await memory.closeAll();

    expect(listed).toEqual([{ repo: "acme/widgets", since: "2026-11-13T00:00:00.000Z" }]);
    // 7's mark is spent; 8, suspended now, is marked for its unsuspension: from the outage's
    // start, not its suspension during it, since nothing in between was sent.
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ 8: "2026-11-20T00:00:00.000Z" });
  });

  /** acme/paused (id 4) of installation 8, remembered before Talos went down. */
  const PAUSED = { installation: 8, repository: 4, name: "acme/paused" };
  const PAUSED_REPOSITORY = {
    ...WIDGETS_REPOSITORY,
    id: 4,
    name: "paused",
    full_name: "acme/paused",
  };
  /** Talos was last seen running then: the outage's catch-up reads from here. */
  const OUTAGE_SINCE = "2026-11-20T00:00:00.000Z";

  /**
   * A start's catch-up from OUTAGE_SINCE, with installation 8 suspended (GitHub refuses its
   * token, 403) and listed as `installed` says; then 8's unsuspension, handled as
   * handle-installation-changed.ts does. Returns the `since` of each listing of acme/paused.
   */
  async function suspendedThroughOutage(installed: InstalledRepositories) {
    const memory = createTestRegistry(makeDataDir());
    await memory.open(PAUSED);
    const marks = new FileSuspensionMarks(
      join(makeDataDir(), "suspensions.json"),
      pino({ level: "silent" }),
    );
    const state = { suspended: true };
    const listed: string[] = [];
    const octokit = {
      config: { get: async () => ({ files: [] }) },
      paginate: async () => [PAUSED_REPOSITORY],
      rest: {
        apps: { listReposAccessibleToInstallation: {} },
        repos: { get: async () => ({ data: PAUSED_REPOSITORY }) },
        issues: {
          listForRepo: async ({ since }: { since: string }) => {
            listed.push(since);
            return { data: [], headers: {} };
          },
        },
      },
    } as unknown as Octokit;
    const runner = new BackfillRunner({
      memory,
      auth: async () => {
        if (state.suspended)
          throw Object.assign(new Error("This installation has been suspended"), { status: 403 });
        return octokit;
      },
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
      installed: async () => installed,
      suspensions: marks,
    });

    expect(await runner.catchUp(OUTAGE_SINCE)).toBe(true);
    await runner.idle();
    state.suspended = false;
    const since = await marks.since(8);
    expect(since).toBeDefined();
    await runner.catchUpInstallation(8, since!);
    await runner.idle();
    await runner.close();
    await memory.closeAll();
    return listed;
  }

  it("catches up an installation suspended while Talos was down, at its unsuspension, from the outage's start rather than its suspension", async () => {
    const listed = await suspendedThroughOutage({
      installations: [8],
      read: [],
      repositories: [],
      suspended: [{ installation: 8, at: "2026-11-21T10:00:00Z" }],
    });

    // What changed between the outage's start and the suspension was never sent either.
    expect(listed).toEqual([OUTAGE_SINCE]);
  });

  it("catches up from the outage's start, at its unsuspension, an installation suspended after the start's listing", async () => {
    // Listed as readable, then suspended before its catch-up's turn: its token is refused.
    const listed = await suspendedThroughOutage({
      installations: [8],
      read: [8],
      repositories: [PAUSED],
    });

    expect(listed).toEqual([OUTAGE_SINCE]);
  });
});

/**
 * acme/widgets with 250 issues, newest first, whose installation `suspended.now` has suspended:
 * GitHub then refuses its every request with a 403. With `suspendAfterFirstPage`, the owner
 * suspends it right after the backfill's first page. Records the `since` of each listing asked.
 */
function suspendableWidgets(suspended: { now: boolean }, suspendAfterFirstPage = false) {
  let suspendNext = suspendAfterFirstPage;
  const listed: (string | undefined)[] = [];
  const numbers = Array.from({ length: 250 }, (_, i) => 250 - i);
  const refuse = () => {
    if (suspended.now)
      throw Object.assign(new Error("This installation has been suspended"), { status: 403 });
  };
  const octokit = {
    config: { get: async () => ({ files: [] }) },
    paginate: async () => {
      refuse();
      return [WIDGETS_REPOSITORY];
    },
    rest: {
      apps: { listReposAccessibleToInstallation: async () => ({ data: [] }) },
      repos: {
        get: async () => {
          refuse();
          return { data: WIDGETS_REPOSITORY };
        },
      },
      issues: {
        listForRepo: async ({ page, since }: { page: number; since?: string }) => {
          refuse();
          listed.push(since);
          const data = since
            ? []
            : numbers
                .slice((page - 1) * 100, page * 100)
                .map((number) => listedIssue(number, { title: `Issue ${number}` }));
          if (page === 1 && suspendNext) {
            suspended.now = true;
            suspendNext = false;
          }
          return { data, headers: {} };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, listed };
}

/** A runner whose installation's token GitHub refuses (403) while `suspended.now`. */
function suspendableRunner(
  memory: MemoryService,
  octokit: Octokit,
  suspended: { now: boolean },
  file: string,
): BackfillRunner {
  const log = pino({ level: "silent" });
  return new BackfillRunner({
    memory,
    auth: async () => {
      if (suspended.now) throw Object.assign(new Error("suspended"), { status: 403 });
      return octokit;
    },
    max: 1_000,
    clock: createFakeClock(),
    log,
    queue: new BackfillQueueFile(file, log),
  });
}

describe("BackfillRunner.catchUpInstallation after a suspension during a backfill", () => {
  const MARK = "2026-11-24T00:00:00.000Z";

  it("finishes a backfill the suspension cut short, rather than leaving it to the next start", async () => {
    const memory = createTestRegistry(makeDataDir());
    const suspended = { now: false };
    const { octokit } = suspendableWidgets(suspended, true);
    const runner = suspendableRunner(memory, octokit, suspended, join(makeDataDir(), "q.json"));

    // Page 1 is read, then the installation is suspended and page 2 refused.
    runner.enqueue(WIDGETS);
    await runner.idle();
    const cut = await memory.readBackfillState(WIDGETS);
    expect([cut?.status, cut?.indexed]).toEqual(["failed", 100]);

    suspended.now = false;
    await runner.catchUpInstallation(WIDGETS.installation, MARK);
    await runner.idle();
    const state = await memory.readBackfillState(WIDGETS);
    await runner.close();
    await memory.closeAll();

    // The 150 older issues are read now: a catch-up from the mark reads only what changed since.
    expect([state?.status, state?.indexed]).toEqual(["done", 250]);
  });

  it("runs at the unsuspension a backfill whose turn came while the installation was suspended, kept queued through a restart", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    // An issue event opened the repository's memory before its backfill's turn came.
    await memory.open(WIDGETS);
    const suspended = { now: true };
    const { octokit } = suspendableWidgets(suspended);
    const stopped = suspendableRunner(memory, octokit, suspended, file);
    stopped.enqueue(WIDGETS);
    await stopped.idle();
    await stopped.close();
    // Skipped with nothing saved to resume from: the queue's file keeps it for the next start.
    expect(await memory.readBackfillState(WIDGETS)).toBeUndefined();
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([WIDGETS]);

    // The next start, still suspended, skips it again; the unsuspension runs it.
    const runner = suspendableRunner(memory, octokit, suspended, file);
    await runner.resume();
    await runner.idle();
    suspended.now = false;
    await runner.catchUpInstallation(WIDGETS.installation, MARK);
    await runner.idle();
    await runner.close();
    const state = await memory.readBackfillState(WIDGETS);
    await memory.closeAll();

    expect([state?.status, state?.indexed]).toEqual(["done", 250]);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
  });

  it("only catches up a repository whose backfill was done before the suspension", async () => {
    const memory = createTestRegistry(makeDataDir());
    const suspended = { now: false };
    const { octokit, listed } = suspendableWidgets(suspended);
    const runner = suspendableRunner(memory, octokit, suspended, join(makeDataDir(), "q.json"));
    runner.enqueue(WIDGETS);
    await runner.idle();
    expect((await memory.readBackfillState(WIDGETS))?.status).toBe("done");
    listed.length = 0;

    await runner.catchUpInstallation(WIDGETS.installation, MARK);
    await runner.idle();
    await runner.close();
    await memory.closeAll();

    expect(listed).toEqual([MARK]);
  });
});

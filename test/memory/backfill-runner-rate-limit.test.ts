import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { BackfillRunner } from "../../src/memory/backfill-runner.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";
import { listedIssue } from "../helpers/listed-issue.js";

const START = Date.UTC(2026, 10, 24, 12);
/** When installation 7's hourly limit resets, in GitHub's seconds. */
const RESET = START / 1000 + 3_600;
const WIDGETS = { installation: 7, repository: 2, name: "acme/widgets" };
const TOOLS = { installation: 7, repository: 4, name: "acme/tools" };
const GADGETS = { installation: 8, repository: 3, name: "other/gadgets" };

type Listing = (page: number) => { data: unknown[]; headers: Record<string, string> };

/**
 * An installation's client: its repositories, each with its issues listing; no
 * `.github/talos.yml`. Records the pages asked, as `owner/name#page`.
 */
function client(repositories: Array<{ id: number; name: string; list: Listing }>, asked: string[]) {
  const find = (repo: string) => repositories.find((r) => r.name.endsWith(`/${repo}`))!;
  return {
    config: { get: async () => ({ files: [] }) },
    rest: {
      repos: {
        get: async ({ repo }: { repo: string }) => {
          const { id, name } = find(repo);
          const [owner = ""] = name.split("/");
          return {
            data: {
              id,
              name: repo,
              full_name: name,
              owner: { login: owner },
              created_at: "2020-01-01T00:00:00Z",
            },
          };
        },
      },
      issues: {
        listForRepo: async ({ repo, page }: { repo: string; page: number }) => {
          const { name, list } = find(repo);
          asked.push(`${name}#${page}`);
          return list(page);
        },
      },
    },
  } as unknown as Octokit;
}

/** `count` issues of `name` from `from` down, as listed. */
const issues = (name: string, from: number, count: number) =>
  Array.from({ length: count }, (_, i) =>
    listedIssue(from - i, { html_url: `https://github.com/${name}/issues/${from - i}` }),
  );

const LOW = {
  "x-ratelimit-limit": "5000",
  "x-ratelimit-remaining": "10",
  "x-ratelimit-reset": String(RESET),
};
const PLENTY = { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4000" };

/**
 * Installation 7: acme/widgets, 150 issues, whose first answer leaves 10 of 5,000 requests for
 * the hour (later ones come after the reset), and acme/tools, one issue. Installation 8, another
 * account with its own limit: other/gadgets, one issue.
 */
function setUp() {
  const clock = createManualClock(START);
  const memory = createTestRegistry(makeDataDir());
  const asked: string[] = [];
  let widgetsAnswered = 0;
  const seven = client(
    [
      {
        id: WIDGETS.repository,
        name: WIDGETS.name,
        list: (page) => ({
          data: issues(WIDGETS.name, 150 - (page - 1) * 100, page === 1 ? 100 : 50),
          headers: widgetsAnswered++ === 0 ? LOW : PLENTY,
        }),
      },
      {
        id: TOOLS.repository,
        name: TOOLS.name,
        list: () => ({ data: issues(TOOLS.name, 1, 1), headers: PLENTY }),
      },
    ],
    asked,
  );
  const eight = client(
    [
      {
        id: GADGETS.repository,
        name: GADGETS.name,
        list: () => ({ data: issues(GADGETS.name, 1, 1), headers: PLENTY }),
      },
    ],
    asked,
  );
  const runner = new BackfillRunner({
    memory,
    auth: async (installation) => (installation === 7 ? seven : eight),
    max: 1_000,
    clock,
    log: pino({ level: "silent" }),
  });
  return { clock, memory, asked, runner };
}

/** Real time, not the test's clock: the memory's files take a few turns of I/O. */
const until = async (done: () => boolean, ms = 3_000) => {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return done();
};

describe("BackfillRunner when an installation's rate limit runs low", () => {
  it("does not hold another installation's backfill (its own rate limit untouched) for an hour", async () => {
    const { memory, asked, runner } = setUp();
    try {
      runner.enqueue(WIDGETS);
      runner.enqueue(GADGETS);
      expect(await until(() => asked.includes("acme/widgets#1"))).toBe(true);
      // Installation 7 now waits for its reset, an hour off; installation 8 has spent nothing.
      expect(await until(() => asked.includes("other/gadgets#1"))).toBe(true);
      await runner.idle();
      expect(await memory.readBackfillState(GADGETS)).toMatchObject({ status: "done" });
      expect(await memory.readBackfillState(WIDGETS)).toMatchObject({
        status: "running",
        page: 2,
        indexed: 100,
      });
    } finally {
      await runner.close();
      await memory.closeAll();
    }
  });

  it("leaves the installation's other backfills unread till the reset, then resumes each from its progress", async () => {
    const { clock, memory, asked, runner } = setUp();
    try {
      runner.enqueue(WIDGETS);
      runner.enqueue(TOOLS);
      await until(() => asked.includes("acme/widgets#1"));
      await runner.idle();
      // acme/tools, of the same installation, waits too, without a request.
      expect(asked).toEqual(["acme/widgets#1"]);

      await clock.advance(3_600_000);
      await new Promise((r) => setTimeout(r, 50));
      expect(asked).toEqual(["acme/widgets#1"]);

      // A second after the reset, both run: acme/widgets from page 2, then page 1 again.
      await clock.advance(1_000);
      expect(await until(() => asked.length === 4)).toBe(true);
      await runner.idle();
      expect([...asked].sort()).toEqual(
        ["acme/widgets#1", "acme/widgets#2", "acme/widgets#1", "acme/tools#1"].sort(),
      );
      expect(await memory.readBackfillState(WIDGETS)).toMatchObject({
        status: "done",
        indexed: 150,
      });
      expect(await memory.readBackfillState(TOOLS)).toMatchObject({ status: "done", indexed: 1 });
    } finally {
      await runner.close();
      await memory.closeAll();
    }
  });

  it("does not run again after the reset a backfill cancelled meanwhile, nor one of an installation deleted meanwhile", async () => {
    const { clock, memory, asked, runner } = setUp();
    try {
      runner.enqueue(WIDGETS);
      runner.enqueue(TOOLS);
      await until(() => asked.includes("acme/widgets#1"));
      await runner.idle();

      // acme/widgets removed; then the installation deleted (acme/tools with it).
      await runner.cancel(WIDGETS);
      await runner.cancelInstallation(7);
      await clock.advance(3_601_000);
      await new Promise((r) => setTimeout(r, 50));
      await runner.idle();

      expect(asked).toEqual(["acme/widgets#1"]);
      expect(await memory.readBackfillState(TOOLS)).toBeUndefined();
    } finally {
      await runner.close();
      await memory.closeAll();
    }
  });

  it("closes at once while a backfill waits for its reset, leaving it to the next start", async () => {
    const { clock, memory, asked, runner } = setUp();
    runner.enqueue(WIDGETS);
    await until(() => asked.includes("acme/widgets#1"));
    await runner.idle();

    // No time passes: nothing holds the close.
    await runner.close();
    await clock.advance(3_601_000);
    await new Promise((r) => setTimeout(r, 50));

    expect(asked).toEqual(["acme/widgets#1"]);
    expect(await memory.readBackfillState(WIDGETS)).toMatchObject({ status: "running", page: 2 });
    await memory.closeAll();
  });
});

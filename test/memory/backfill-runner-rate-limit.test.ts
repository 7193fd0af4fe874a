import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import {
  backfillProgressIn,
  backfillRepository,
  MAX_RATE_LIMITED_TRIES,
} from "../../src/memory/backfill-repository.js";
import { BackfillRunner } from "../../src/memory/backfill-runner.js";
import { catchUpRepository } from "../../src/memory/catch-up-repository.js";
import { createFakeClock, createManualClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";
import { listedIssue } from "../helpers/listed-issue.js";

const START = Date.UTC(2026, 10, 24, 12);
/** When installation 7's hourly limit resets, in GitHub's seconds. */
const RESET = START / 1000 + 3_600;
const WIDGETS = { installation: 7, repository: 2, name: "acme/widgets" };
const TOOLS = { installation: 7, repository: 4, name: "acme/tools" };
const GADGETS = { installation: 8, repository: 3, name: "other/gadgets" };

/** A page of a repository's issues listing (`since`: a catch-up's); throws what GitHub refuses. */
type Listing = (
  page: number,
  since: string | undefined,
) => { data: unknown[]; headers: Record<string, string> };

/** What the catch-ups below read: what was updated since then. */
const CATCH_UP_SINCE = "2026-11-20T00:00:00.000Z";

/**
 * An installation's client: its repositories, each with its issues listing; no
 * `.github/talos.yml`. Records the pages asked, as `owner/name#page`, and a catch-up's from
 * another time than CATCH_UP_SINCE as `owner/name#page@since`.
 */
function client(
  repositories: Array<{ id: number; name: string; list: Listing; get?: () => void }>,
  asked: string[],
) {
  const find = (repo: string) => repositories.find((r) => r.name.endsWith(`/${repo}`))!;
  return {
    config: { get: async () => ({ files: [] }) },
    rest: {
      repos: {
        get: async ({ repo }: { repo: string }) => {
          const { id, name, get } = find(repo);
          get?.();
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
        listForRepo: async ({
          repo,
          page,
          since,
        }: {
          repo: string;
          page: number;
          since?: string;
        }) => {
          const { name, list } = find(repo);
          asked.push(`${name}#${page}${since && since !== CATCH_UP_SINCE ? `@${since}` : ""}`);
          return list(page, since);
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

/**
 * GitHub's refusal of a request once the installation's hourly limit is spent, as Octokit throws
 * it when its throttling gives up: a 403 whose headers say when the limit resets.
 */
const refusal = () =>
  Object.assign(new Error("API rate limit exceeded for installation ID 7."), {
    status: 403,
    response: {
      headers: {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(RESET),
      },
    },
  });

const badGateway = () => Object.assign(new Error("Bad Gateway"), { status: 502 });

/**
 * `count` issues of `name` updated since CATCH_UP_SINCE, the most recently updated first (issue
 * n updated n minutes after it), as the listing of those updated since `since` pages them.
 */
const updatedPage = (name: string, count: number, page: number, since = CATCH_UP_SINCE) =>
  Array.from({ length: count }, (_, i) => count - i)
    .map((number) => ({
      number,
      updatedAt: Date.parse(CATCH_UP_SINCE) + number * 60_000,
    }))
    .filter((issue) => issue.updatedAt >= Date.parse(since))
    .slice((page - 1) * 100, page * 100)
    .map(({ number, updatedAt }) =>
      listedIssue(number, {
        html_url: `https://github.com/${name}/issues/${number}`,
        updated_at: new Date(updatedAt).toISOString(),
      }),
    );

/**
 * Installation 7's acme/widgets, listed by `widgets`, and installation 8's other/gadgets, one
 * issue: two installations, each with a limit of its own.
 */
function setUpTwo(
  widgets: Listing,
  retry?: { attempts: number; baseMs: number; maxMs: number },
  getWidgets?: () => void,
) {
  const clock = createManualClock(START);
  const memory = createTestRegistry(makeDataDir());
  const asked: string[] = [];
  const seven = client(
    [{ id: WIDGETS.repository, name: WIDGETS.name, list: widgets, get: getWidgets }],
    asked,
  );
  const eight = client(
    [
      {
        id: GADGETS.repository,
        name: GADGETS.name,
        list: (page, since) => ({
          data: since ? updatedPage(GADGETS.name, 1, page, since) : issues(GADGETS.name, 1, 1),
          headers: PLENTY,
        }),
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
    retry,
  });
  return { clock, memory, asked, runner };
}

/** What a catch-up of more than one page reads last: what was updated since it began. */
const FOLLOW_UP = "acme/widgets#1@2026-11-24T11:50:00.000Z";

describe("BackfillRunner when GitHub refuses a backfill's page for the installation's rate limit", () => {
  it("waits for the reset out of the queue, the refusal using up none of the page's tries, then resumes from the page", async () => {
    // Two tries a page: the 502 uses up one, and the refusal, counted, had failed the backfill.
    const answers: Array<() => unknown[]> = [
      () => issues(WIDGETS.name, 150, 100),
      () => {
        throw badGateway();
      },
      () => {
        throw refusal();
      },
      () => issues(WIDGETS.name, 50, 50),
      () => issues(WIDGETS.name, 150, 100),
    ];
    const { clock, memory, asked, runner } = setUpTwo(
      () => ({ data: answers.shift()!(), headers: PLENTY }),
      { attempts: 2, baseMs: 1_000, maxMs: 1_000 },
    );
    try {
      runner.enqueue(WIDGETS);
      runner.enqueue(GADGETS);
      expect(await until(() => asked.length === 2)).toBe(true);
      // The 502's wait, then page 2 again: refused.
      await clock.advance(1_000);
      expect(await until(() => asked.includes("other/gadgets#1"))).toBe(true);
      await runner.idle();
      expect(asked).toEqual([
        "acme/widgets#1",
        "acme/widgets#2",
        "acme/widgets#2",
        "other/gadgets#1",
      ]);
      expect(await memory.readBackfillState(WIDGETS)).toMatchObject({
        status: "running",
        page: 2,
        indexed: 100,
        retries: { failed: 1, rateLimited: 1 },
      });

      // A second after the reset: page 2, then page 1 again.
      await clock.advance(3_600_000);
      expect(await until(() => asked.length === 6)).toBe(true);
      await runner.idle();
      expect(asked.slice(4)).toEqual(["acme/widgets#2", "acme/widgets#1"]);
      const state = await memory.readBackfillState(WIDGETS);
      expect(state).toMatchObject({ status: "done", indexed: 150 });
      expect(state).not.toHaveProperty("retries");
    } finally {
      await runner.close();
      await memory.closeAll();
    }
  });

  it("keeps counting the page's failed tries after the wait", async () => {
    const answers: Array<() => unknown[]> = [
      () => issues(WIDGETS.name, 150, 100),
      () => {
        throw badGateway();
      },
      () => {
        throw refusal();
      },
      // After the reset: the page's second failure, its last try.
      () => {
        throw badGateway();
      },
    ];
    const { clock, memory, asked, runner } = setUpTwo(
      () => ({ data: answers.shift()!(), headers: PLENTY }),
      { attempts: 2, baseMs: 1_000, maxMs: 1_000 },
    );
    try {
      runner.enqueue(WIDGETS);
      expect(await until(() => asked.length === 2)).toBe(true);
      await clock.advance(1_000);
      expect(await until(() => asked.length === 3)).toBe(true);
      await runner.idle();
      await clock.advance(3_600_000);
      expect(await until(() => asked.length === 4)).toBe(true);
      // Not idle(): a page tried afresh would wait for a retry this clock never lets pass.
      let state = await memory.readBackfillState(WIDGETS);
      for (let i = 0; i < 100 && state?.status === "running"; i++) {
        await new Promise((r) => setTimeout(r, 10));
        state = await memory.readBackfillState(WIDGETS);
      }
      expect(state).toMatchObject({
        status: "failed",
        page: 2,
        indexed: 100,
        error: expect.stringMatching(/^page 2 failed 2 times; last: .*502/),
      });
    } finally {
      await runner.close();
      await memory.closeAll();
    }
  });
});

describe("BackfillRunner when GitHub refuses to say what a repository is for the installation's rate limit", () => {
  it("waits for the reset out of the queue, then backfills it", async () => {
    let refused = false;
    const { clock, memory, asked, runner } = setUpTwo(
      (page) => ({ data: issues(WIDGETS.name, 50, page === 1 ? 50 : 0), headers: PLENTY }),
      undefined,
      () => {
        asked.push("acme/widgets");
        if (refused) return;
        refused = true;
        throw refusal();
      },
    );
    try {
      runner.enqueue(WIDGETS);
      runner.enqueue(GADGETS);
      expect(await until(() => asked.includes("other/gadgets#1"))).toBe(true);
      await runner.idle();
      expect(asked).toEqual(["acme/widgets", "other/gadgets#1"]);

      await clock.advance(3_601_000);
      expect(await until(() => asked.length === 4)).toBe(true);
      await runner.idle();
      expect(asked.slice(2)).toEqual(["acme/widgets", "acme/widgets#1"]);
      expect(await memory.readBackfillState(WIDGETS)).toMatchObject({
        status: "done",
        indexed: 50,
      });
    } finally {
      await runner.close();
      await memory.closeAll();
    }
  });
});

describe("BackfillRunner's catch-up when its installation's rate limit runs low or refuses a page", () => {
  it.each([
    ["runs low after a page", "low"],
    ["refuses a page", "refused"],
  ] as const)(
    "does not hold another installation's catch-up when it %s; it goes on from its page after the reset, and is caught up only then",
    async (_label, how) => {
      let answered = 0;
      const { clock, memory, asked, runner } = setUpTwo((page, since) => {
        answered++;
        // The first answer leaves 10 of 5,000 requests for the hour; or the second is refused.
        if (how === "refused" && answered === 2) throw refusal();
        return {
          data: updatedPage(WIDGETS.name, 150, page, since),
          headers: how === "low" && answered === 1 ? LOW : PLENTY,
        };
      });
      try {
        await memory.open(WIDGETS);
        await memory.open(GADGETS);
        let caughtUp: boolean | undefined;
        void runner.catchUp(CATCH_UP_SINCE).then((done) => (caughtUp = done));
        // Installation 7 now waits for its reset, an hour off; installation 8 has spent nothing.
        expect(await until(() => asked.includes("other/gadgets#1"))).toBe(true);
        await runner.idle();
        const before = how === "low" ? ["acme/widgets#1"] : ["acme/widgets#1", "acme/widgets#2"];
        expect(asked.filter((a) => a.startsWith("acme/"))).toEqual(before);
        expect(caughtUp).toBeUndefined();

        await clock.advance(3_601_000);
        expect(await until(() => caughtUp !== undefined)).toBe(true);
        expect(caughtUp).toBe(true);
        // From page 2 (with page 1 again after it), not from the start; then what was updated
        // since it began.
        expect(asked.filter((a) => a.startsWith("acme/")).slice(before.length)).toEqual([
          "acme/widgets#2",
          "acme/widgets#1",
          FOLLOW_UP,
        ]);
        const widgets = await memory.open(WIDGETS);
        expect((await widgets.stats()).records).toBe(150);
      } finally {
        await runner.close();
        await memory.closeAll();
      }
    },
  );

  it("tells the start's catch-up it did not finish when the runner closes while it waits for the reset", async () => {
    const { memory, asked, runner } = setUpTwo((page, since) => ({
      data: updatedPage(WIDGETS.name, 150, page, since),
      headers: LOW,
    }));
    await memory.open(WIDGETS);
    const caughtUp = runner.catchUp(CATCH_UP_SINCE);
    expect(await until(() => asked.length === 1)).toBe(true);
    await runner.idle();

    await runner.close();

    expect(await caughtUp).toBe(false);
    await memory.closeAll();
  });
});

describe("a page GitHub refuses for a rate limit again and again", () => {
  const refusing = () =>
    ({
      rest: {
        issues: {
          listForRepo: async () => {
            throw refusal();
          },
        },
      },
    }) as unknown as Octokit;
  const memory = { add: async () => undefined, addMany: async () => [] } as never;

  it(`fails a backfill at its ${MAX_RATE_LIMITED_TRIES}th refusal in a row, as a page whose tries are spent`, async () => {
    const progress = backfillProgressIn(makeDataDir());
    await progress.saveBackfillState({
      status: "running",
      page: 2,
      indexed: 100,
      last: { number: 51, createdAt: "2026-10-01T00:00:00Z" },
      retries: { failed: 0, rateLimited: MAX_RATE_LIMITED_TRIES - 1 },
    });
    const told: number[] = [];

    await expect(
      backfillRepository({
        octokit: refusing(),
        repo: { owner: "acme", repo: "widgets" },
        memory,
        progress,
        max: 1_000,
        clock: createFakeClock(START),
        log: pino({ level: "silent" }),
        onRateLimited: (resumeAt) => told.push(resumeAt),
      }),
    ).rejects.toThrow("API rate limit exceeded");

    expect(told).toEqual([]);
    const state = await progress.readBackfillState();
    expect(state).toMatchObject({
      status: "failed",
      page: 2,
      error: `page 2 refused for a rate limit ${MAX_RATE_LIMITED_TRIES} times in a row; last: 403 API rate limit exceeded for installation ID 7.`,
    });
    expect(state).not.toHaveProperty("retries");
  });

  it("stops a catch-up for the reset until then, telling where to go on from", async () => {
    const told: Array<{ resumeAt: number; rateLimited: number }> = [];
    const result = await catchUpRepository({
      octokit: refusing(),
      repo: { owner: "acme", repo: "widgets" },
      memory,
      since: CATCH_UP_SINCE,
      max: 1_000,
      clock: createFakeClock(START),
      log: pino({ level: "silent" }),
      onRateLimited: (resumeAt, from) => told.push({ resumeAt, rateLimited: from.rateLimited }),
    });

    expect(result).toMatchObject({ status: "rate-limited", read: 0 });
    // A second after the reset, as the refusal's headers say.
    expect(told).toEqual([{ resumeAt: RESET * 1000 + 1_000, rateLimited: 1 }]);
  });
});

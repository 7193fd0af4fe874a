import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { BackfillRunner } from "../../src/memory/backfill-runner.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { listedIssue, listingLinkOf } from "../helpers/listed-issue.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";

const START = Date.UTC(2026, 10, 24, 12);
const RESET = START / 1000 + 3_600;
const EARLY = "2026-11-20T00:00:00.000Z";
/** Issues 50..150 were updated at or after LATE (issue n, n minutes after EARLY). */
const LATE = new Date(Date.parse(EARLY) + 50 * 60_000).toISOString();
const WIDGETS = { installation: 7, repository: 2, name: "acme/widgets" };
const GADGETS = { installation: 8, repository: 3, name: "other/gadgets" };

const LOW = {
  "x-ratelimit-limit": "5000",
  "x-ratelimit-remaining": "10",
  "x-ratelimit-reset": String(RESET),
};
const PLENTY = { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4000" };

/** `count` issues, issue n updated n minutes after EARLY, as the listing since `since` pages them. */
function updated(name: string, count: number, page: number, since: string) {
  const listed = Array.from({ length: count }, (_, i) => count - i).filter(
    (n) => Date.parse(EARLY) + n * 60_000 >= Date.parse(since),
  );
  const last = Math.max(1, Math.ceil(listed.length / 100));
  return {
    data: listed.slice((page - 1) * 100, page * 100).map((n) =>
      listedIssue(n, {
        html_url: `https://github.com/${name}/issues/${n}`,
        updated_at: new Date(Date.parse(EARLY) + n * 60_000).toISOString(),
      }),
    ),
    link: listingLinkOf(page, last, "updated"),
  };
}

function client(
  name: string,
  id: number,
  list: (page: number, since: string) => Promise<{ data: unknown[]; headers: object }>,
  asked: string[],
) {
  const [owner = "", repo = ""] = name.split("/");
  return {
    config: { get: async () => ({ files: [] }) },
    rest: {
      repos: {
        get: async () => ({
          data: {
            id,
            name: repo,
            full_name: name,
            owner: { login: owner },
            created_at: "2020-01-01T00:00:00Z",
          },
        }),
      },
      issues: {
        listForRepo: async ({ page, since }: { page: number; since: string }) => {
          asked.push(`${name}#${page}@${since}`);
          return list(page, since);
        },
      },
    },
  } as unknown as Octokit;
}

/** Polls without any wall-clock bound (the test runner's own timeout ends a hang). */
const settled = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
};

describe("a command's catch-up stopped for a rate limit's reset, asked for again", () => {
  it("from an earlier time once queued again after the wait: reads from the earlier time (it resumed the later time's pass, and the window between was never read)", async () => {
    const clock = createManualClock(START);
    const memory = createTestRegistry(makeDataDir());
    const asked: string[] = [];
    let widgetsAnswered = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const seven = client(
      WIDGETS.name,
      WIDGETS.repository,
      async (page, since) => {
        const { data, link } = updated(WIDGETS.name, 150, page, since);
        // The first answer leaves 10 of 5,000 requests for the hour.
        return { data, headers: { ...link, ...(widgetsAnswered++ === 0 ? LOW : PLENTY) } };
      },
      asked,
    );
    const eight = client(
      GADGETS.name,
      GADGETS.repository,
      async (page, since) => {
        // Another installation's catch-up holds the queue till released.
        await held;
        const { data, link } = updated(GADGETS.name, 1, page, since);
        return { data, headers: { ...link, ...PLENTY } };
      },
      asked,
    );
    const runner = new BackfillRunner({
      memory,
      auth: async (installation) => (installation === 7 ? seven : eight),
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
    });
    try {
      await memory.open(WIDGETS);
      await memory.open(GADGETS);
      // `talos backfill --since LATE`: page 1 read, then the limit is low; it waits for the reset.
      expect(await runner.request(WIDGETS, { since: LATE, max: 1_000 })).toBe(true);
      await settled(() => asked.length === 1);
      await runner.idle();
      // Installation 8's catch-up runs meanwhile and holds the shared queue.
      expect(await runner.request(GADGETS, { since: EARLY, max: 1_000 })).toBe(true);
      await settled(() => asked.some((a) => a.startsWith("other/gadgets")));
      // The reset: acme/widgets' catch-up is queued again, behind the one running.
      await clock.advance(3_601_000);
      // `talos backfill --since EARLY` (or an unsuspension's catch-up from its mark): accepted,
      // the queued catch-up is to read from EARLY instead.
      expect(await runner.request(WIDGETS, { since: EARLY, max: 1_000 })).toBe(true);
      release();
      await settled(() => asked.filter((a) => a.startsWith("acme/")).length >= 3);
      await runner.idle();

      // Every issue updated since EARLY: 150. The resumed pass read LATE's 101 only.
      const widgets = await memory.open(WIDGETS);
      expect((await widgets.stats()).records).toBe(150);
      expect(asked.some((a) => a.startsWith(`acme/widgets#1@${EARLY}`))).toBe(true);
    } finally {
      release();
      await runner.close();
      await memory.closeAll();
    }
  });

  it("is one queued already when asked again from no earlier a time while it waits: it goes on from its page after the reset", async () => {
    const clock = createManualClock(START);
    const memory = createTestRegistry(makeDataDir());
    const asked: string[] = [];
    let answered = 0;
    const seven = client(
      WIDGETS.name,
      WIDGETS.repository,
      async (page, since) => {
        const { data, link } = updated(WIDGETS.name, 150, page, since);
        return { data, headers: { ...link, ...(answered++ === 0 ? LOW : PLENTY) } };
      },
      asked,
    );
    const runner = new BackfillRunner({
      memory,
      auth: async () => seven,
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
    });
    try {
      await memory.open(WIDGETS);
      expect(await runner.request(WIDGETS, { since: LATE, max: 1_000 })).toBe(true);
      await settled(() => asked.length === 1);
      await runner.idle();
      // Asked again while it waits for the reset: it is queued already.
      expect(await runner.request(WIDGETS, { since: LATE, max: 1_000 })).toBe(false);
      await clock.advance(3_601_000);
      await settled(() => asked.length >= 2);
      await runner.idle();

      // After the reset it goes on from page 2 (and reads page 1 again after it, as every page
      // after the first is followed); it had started over from page 1.
      expect(asked[1]).toBe(`acme/widgets#2@${LATE}`);
      expect((await (await memory.open(WIDGETS)).stats()).records).toBe(101);
    } finally {
      await runner.close();
      await memory.closeAll();
    }
  });
});

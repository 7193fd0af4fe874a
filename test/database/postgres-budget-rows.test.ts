import pg from "pg";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { TokenBudgets } from "../../src/agent/token-budgets.js";
import { Database } from "../../src/database/database.js";
import { PostgresBudgetCounts } from "../../src/database/postgres-budget-counts.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";

const available = await requirePostgres("budget notices and counts in PostgreSQL");

describe.runIf(available)("the budget rows kept in PostgreSQL", () => {
  const schema = freshSchema("talos_budget_rows");
  let database: Database | undefined;
  afterAll(async () => {
    await database?.close();
    await dropSchema(schema);
  });

  // Redis keeps a day's notice for two days (EX), the local file at most 10,000; PostgreSQL had
  // deleted neither budget_notices nor budget_counts rows: one per thread, and per repository, a
  // day, for ever.
  it("drops the notices of days long past as it takes new ones", async () => {
    database = await Database.open({
      url: TEST_DATABASE_URL,
      schema,
      log: pino({ level: "silent" }),
    });
    const counts = new PostgresBudgetCounts(database);
    for (let day = 1; day <= 20; day++) {
      const date = `2026-01-${String(day).padStart(2, "0")}`;
      for (let thread = 1; thread <= 5; thread++)
        expect(await counts.takeNotice(date, `7/42#${thread}`, `comment-${day}-${thread}`)).toBe(
          true,
        );
    }
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".budget_notices WHERE day < '2026-01-19'`,
      );
      expect(Number(rows[0]!.n)).toBe(0);
      const kept = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".budget_notices`,
      );
      // Yesterday's and today's: a clock stepped back across midnight still finds its notice.
      expect(Number(kept.rows[0]!.n)).toBe(10);
    } finally {
      await client.end();
    }
  }, 30_000);

  it("drops the counts of days long past as it charges new ones, keeping yesterday's", async () => {
    database ??= await Database.open({
      url: TEST_DATABASE_URL,
      schema,
      log: pino({ level: "silent" }),
    });
    const counts = new PostgresBudgetCounts(database);
    for (let day = 1; day <= 10; day++) {
      const date = `2026-02-${String(day).padStart(2, "0")}`;
      await counts.charge(date, "7", "7/42", 100, `charge-${day}`);
      // Another repository's rows are its own to prune.
      if (day === 1) await counts.charge(date, "7", "7/43", 50, "other-1");
    }
    expect(await counts.spent("2026-02-09", "7", "7/42")).toEqual({
      installation: 100,
      repository: 100,
    });
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ repository_id: string; day: string }>(
        `SELECT repository_id, to_char(day, 'YYYY-MM-DD') AS day FROM "${schema}".budget_counts
          WHERE day >= '2026-02-01' ORDER BY day, repository_id`,
      );
      expect(rows.map((r) => `${r.repository_id}@${r.day}`)).toEqual([
        "43@2026-02-01",
        "0@2026-02-09",
        "42@2026-02-09",
        "0@2026-02-10",
        "42@2026-02-10",
      ]);
    } finally {
      await client.end();
    }
  }, 30_000);

  // An instance whose clock is far ahead (a VM resumed with a wrong clock) charged on its day,
  // and pruned what was before it: today's counts, charge ids and notices, by the database's
  // clock, so the day's budget opened again for every instance, and threads got a second notice.
  describe("a charge or a notice on a day far ahead", () => {
    const DAY_MS = 86_400_000;
    const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const today = dayOf(Date.now());
    const farAhead = dayOf(Date.now() + 365 * DAY_MS);

    it("keeps today's counts and notices", async () => {
      database ??= await Database.open({
        url: TEST_DATABASE_URL,
        schema,
        log: pino({ level: "silent" }),
      });
      const counts = new PostgresBudgetCounts(database);
      await counts.charge(today, "17", "17/42", 9_000, "today-1");
      expect(await counts.takeNotice(today, "17/42#5", "comment-1")).toBe(true);
      await counts.charge(farAhead, "17", "17/42", 100, "far-1");
      expect(await counts.takeNotice(farAhead, "17/42#6", "comment-2")).toBe(true);
      expect(await counts.spent(today, "17", "17/42")).toEqual({
        installation: 9_000,
        repository: 9_000,
      });
      // Its id kept too: the same charge sent again counts nothing.
      await counts.charge(today, "17", "17/42", 9_000, "today-1");
      expect((await counts.spent(today, "17", "17/42")).installation).toBe(9_000);
      // Another over-budget command in thread 5 today: its notice was posted already.
      expect(await counts.takeNotice(today, "17/42#5", "comment-3")).toBe(false);
      // What was spent on that far day stays that day's.
      expect(await counts.spent(farAhead, "17", "17/42")).toEqual({
        installation: 100,
        repository: 100,
      });
    }, 30_000);

    it("so an installation's spent day is not reopened for the instances whose clock is right", async () => {
      database ??= await Database.open({
        url: TEST_DATABASE_URL,
        schema,
        log: pino({ level: "silent" }),
      });
      const shared = new PostgresBudgetCounts(database);
      const open = (clock: ReturnType<typeof createFakeClock>) =>
        TokenBudgets.open({
          shared,
          dailyTokens: 10_000,
          jobTokens: 60_000,
          clock,
          log: pino({ level: "silent" }),
          metrics: createMetrics(),
        });
      const now = Date.now();
      const right = await open(createFakeClock(now));
      (await right.account({ installation: 18, repository: 50 })).charge(10_000);
      await right.flush();
      expect((await right.account({ installation: 18, repository: 50 })).remaining()).toBe(0);
      // Another instance, its clock two days ahead, answers one call in another repository.
      const ahead = await open(createFakeClock(now + 2 * DAY_MS));
      (await ahead.account({ installation: 18, repository: 51 })).charge(10);
      await ahead.flush();
      expect((await right.account({ installation: 18, repository: 52 })).remaining()).toBe(0);
    }, 30_000);
  });
});

import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { RedisBudgetCounts } from "../../src/agent/redis-budget-counts.js";
import { TokenBudgets, type SharedBudgetCounts } from "../../src/agent/token-budgets.js";
import { Database } from "../../src/database/database.js";
import { PostgresBudgetCounts } from "../../src/database/postgres-budget-counts.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import {
  deleteKeys,
  dropSchema,
  freshSchema,
  requirePostgres,
  requireRedis,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";

const log = pino({ level: "silent" });
const DAY = "2026-12-03";
const redis = await requireRedis("the budget charge tests on Redis");
const postgres = await requirePostgres("the budget charge tests on PostgreSQL");

/** The shared counts, whose first charge is counted but its answer lost (a query timeout). */
function losingFirstAnswer(shared: SharedBudgetCounts): SharedBudgetCounts {
  let lost = false;
  return {
    spent: (...args) => shared.spent(...args),
    takeNotice: (...args) => shared.takeNotice(...args),
    charge: async (...args) => {
      await shared.charge(...args);
      if (lost) return;
      lost = true;
      throw new Error("Query read timeout");
    },
  };
}

const backends: Array<[string, boolean, () => Promise<[SharedBudgetCounts, () => Promise<void>]>]> =
  [
    [
      "Redis",
      redis,
      async () => {
        const prefix = `talos-test-${randomUUID()}`;
        const counts = await RedisBudgetCounts.open(TEST_REDIS_URL, prefix);
        return [counts, async () => (await counts.close(), await deleteKeys(prefix))];
      },
    ],
    [
      "PostgreSQL",
      postgres,
      async () => {
        const schema = freshSchema("talos_test");
        const database = await Database.open({ url: TEST_DATABASE_URL, schema, log });
        return [
          new PostgresBudgetCounts(database),
          async () => (await database.close(), await dropSchema(schema)),
        ];
      },
    ],
  ];

describe.each(backends)("budget charges on %s", (_, available, open) => {
  const closes: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const close of closes) await close();
  });

  it.runIf(available)("adds a charge once, however often it is sent", async () => {
    const [shared, close] = await open();
    closes.push(close);
    await shared.charge(DAY, "1", "1/10", 100, "a");
    await shared.charge(DAY, "1", "1/10", 100, "a");
    await shared.charge(DAY, "1", "1/20", 50, "a");
    await shared.charge(DAY, "1", "1/10", 100, "b");
    expect(await shared.spent(DAY, "1", "1/10")).toEqual({ installation: 250, repository: 200 });
    // The same id another day is another charge.
    await shared.charge("2026-12-04", "1", "1/10", 100, "a");
    expect(await shared.spent("2026-12-04", "1", "1/10")).toEqual({
      installation: 100,
      repository: 100,
    });
  });

  it.runIf(available)("counts once a charge sent again after its answer was lost", async () => {
    const [shared, close] = await open();
    closes.push(close);
    const budgets = await TokenBudgets.open({
      shared: losingFirstAnswer(shared),
      dailyTokens: 10_000,
      jobTokens: 10_000,
      clock: createFakeClock(Date.UTC(2026, 11, 3, 10)),
      log,
      metrics: createMetrics(),
    });
    (await budgets.account({ installation: 2, repository: 20 })).charge(1_000);
    await budgets.flush();
    // The next job sends the refused charge again, then reads the counts.
    const next = await budgets.account({ installation: 2, repository: 20 });
    expect(await shared.spent(DAY, "2", "2/20")).toEqual({
      installation: 1_000,
      repository: 1_000,
    });
    expect(next.remaining()).toBe(9_000);
  });
});

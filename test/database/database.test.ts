import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { TokenBudgets } from "../../src/agent/token-budgets.js";
import { APP_ROLE, Database, migrations } from "../../src/database/database.js";
import { PostgresBudgetCounts } from "../../src/database/postgres-budget-counts.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { eventually } from "../helpers/eventually.js";
import { asSuperuser } from "./database-helpers.js";
import {
  freshSchema,
  requirePostgres,
  startCuttableProxy,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";

const available = await requirePostgres("the PostgreSQL tests");

describe.runIf(available)("PostgreSQL: migrations and row-level security", () => {
  const schema = freshSchema("talos_test");
  const log = pino({ level: "silent" });
  const opened: Database[] = [];
  const open = async () => {
    const database = await Database.open({ url: TEST_DATABASE_URL, schema, log });
    opened.push(database);
    return database;
  };

  afterAll(async () => {
    for (const database of opened) await database.close();
    await asSuperuser((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  });

  it("migrates once when several instances start at the same time", async () => {
    await Promise.all([open(), open(), open()]);
    const versions = await asSuperuser(
      async (client) => (await client.query(`SELECT version FROM "${schema}".migrations`)).rows,
    );
    // Every version once.
    expect(versions).toEqual(migrations(schema).map((_, i) => ({ version: i + 1 })));
    // And again at the next start: nothing to do.
    await open();
    expect(
      await asSuperuser(
        async (client) =>
          (await client.query(`SELECT count(*)::int AS n FROM "${schema}".migrations`)).rows[0].n,
      ),
    ).toBe(migrations(schema).length);
  });

  it("finds a thread's records by its number through an index, not by scanning the repository's rows", async () => {
    await open();
    // What removing a thread's records asks (PostgresMemory's forgetThread, and the deletion or
    // transfer of an issue). The planner scans a table this small whatever its indexes, so the
    // scan is switched off: without the index, the primary key's prefix is what remains.
    const plan = await asSuperuser(async (client) => {
      await client.query("SET enable_seqscan = off");
      const { rows } = await client.query<{ "QUERY PLAN": string }>(
        `EXPLAIN UPDATE "${schema}".memory_records SET removed = true
          WHERE installation_id = 1 AND repository_id = 2 AND NOT removed
            AND kind <> 'note' AND number = 5`,
      );
      return rows.map((row) => row["QUERY PLAN"]).join("\n");
    });
    expect(plan).toMatch(/Index Scan using memory_records_number/);
  });

  it("shows a transaction only its installation's and repository's rows; without the setting, none", async () => {
    const database = await open();
    const budgets = new PostgresBudgetCounts(database);
    await budgets.charge("2026-12-03", "1", "1/10", 100, "charge-1");
    await budgets.charge("2026-12-03", "2", "2/20", 200, "charge-2");
    // Installation 1, repository 10: its own rows, nothing of installation 2.
    const seen = await database.inScope(
      { installation: 1, repository: 10 },
      async (client) =>
        (
          await client.query(
            "SELECT installation_id, repository_id, tokens FROM budget_counts ORDER BY repository_id",
          )
        ).rows,
    );
    expect(seen).toEqual([
      { installation_id: "1", repository_id: "0", tokens: "100" },
      { installation_id: "1", repository_id: "10", tokens: "100" },
    ]);
    // A query that forgets the setting, as the app's role: nothing, though rows exist.
    const forgotten = await asSuperuser(async (client) => {
      await client.query("BEGIN");
      await client.query(`SET LOCAL ROLE ${APP_ROLE}`);
      const rows = (await client.query(`SELECT * FROM "${schema}".budget_counts`)).rows;
      await client.query("ROLLBACK");
      return rows;
    });
    expect(forgotten).toEqual([]);
    const all = await asSuperuser(
      async (client) =>
        (await client.query(`SELECT count(*)::int AS n FROM "${schema}".budget_counts`)).rows[0].n,
    );
    expect(all).toBe(4);
    // A write into another installation's scope is refused by the policy.
    await expect(
      database.inScope({ installation: 1, repository: 10 }, (client) =>
        client.query("INSERT INTO budget_counts VALUES (2, 20, '2026-12-03', 1)"),
      ),
    ).rejects.toThrow(/row-level security/);
    // The role cannot bypass the policies, and owns nothing.
    const role = await asSuperuser(
      async (client) =>
        (
          await client.query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", [
            APP_ROLE,
          ])
        ).rows[0],
    );
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false });
  });

  it("keeps the daily token budgets of every instance in one place", async () => {
    const clock = createFakeClock(Date.UTC(2026, 11, 3, 10));
    const instance = async () =>
      TokenBudgets.open({
        shared: new PostgresBudgetCounts(await open()),
        dailyTokens: 10_000,
        jobTokens: 6_000,
        clock,
        log,
        metrics: createMetrics(),
      });
    const [a, b] = [await instance(), await instance()];
    const first = await a.account({ installation: 7, repository: 70 });
    first.charge(6_000);
    await a.flush();
    const second = await b.account({ installation: 7, repository: 71 });
    expect(second.remaining()).toBe(4_000);
    expect(await second.takeNotice("3")).toBe(true);
    expect(await (await a.account({ installation: 7, repository: 71 })).takeNotice("3")).toBe(
      false,
    );
    expect(await (await a.account({ installation: 7, repository: 70 })).takeNotice("3")).toBe(true);
    // A notice taken by a command's comment stays that comment's on every instance: its job,
    // retried after the post failed, posts it; no other comment's does.
    expect(
      await (await a.account({ installation: 7, repository: 70 })).takeNotice("4", "501"),
    ).toBe(true);
    const retried = await b.account({ installation: 7, repository: 70 });
    expect(await retried.takeNotice("4", "501")).toBe(true);
    expect(await retried.takeNotice("4", "502")).toBe(false);
    expect(await retried.takeNotice("4")).toBe(false);
    expect(await retried.takeNotice("3", "503")).toBe(false);
  });
  it("listens again after losing its connection, however many reconnections fail", async () => {
    const direct = new URL(TEST_DATABASE_URL);
    const proxy = await startCuttableProxy({
      host: direct.hostname,
      port: Number(direct.port || 5432),
    });
    const proxied = new URL(TEST_DATABASE_URL);
    proxied.host = new URL(proxy.url).host;
    const database = await Database.open({ url: proxied.toString(), schema, log });
    opened.push(database);
    const channel = `talos_test_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const messages: string[] = [];
    let gaps = 0;
    const listener = await database.listen(channel, {
      onMessage: (payload) => messages.push(payload),
      onGap: () => gaps++,
    });
    try {
      expect(listener.listening()).toBe(true);
      proxy.cut();
      await eventually(() => !listener.listening(), "the loss to be noticed");
      // Long enough for two reconnections to fail (one a second).
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(listener.listening()).toBe(false);
      proxy.restore();
      await eventually(() => listener.listening(), "listening again");
      // Initial, lost, listening again: each asks the indexes to read what they may have missed.
      expect(gaps).toBe(3);
      await asSuperuser((client) => client.query(`NOTIFY "${channel}", 'after the outage'`));
      await eventually(() => messages.includes("after the outage"), "the notification");
    } finally {
      await listener.close();
      await proxy.close();
    }
  });
});

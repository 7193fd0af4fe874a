import pg from "pg";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { Database, DatabaseTimeoutError } from "../../src/database/database.js";
import { PostgresBudgetCounts } from "../../src/database/postgres-budget-counts.js";
import { classifyJobFailure } from "../../src/jobs/job-runner.js";
import { eventually } from "../helpers/eventually.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";
import { socketsTo, startBlackHoleProxy } from "./black-hole-proxy.js";

const available = await requirePostgres("the PostgreSQL timeout tests");
const log = pino({ level: "silent" });

/** The bounds, shortened: each test waits many times longer before it looks. */
const QUERY_TIMEOUT_MS = 200;
const PATIENCE_MS = 3_000;

/** How `promise` stands after `ms`: its value, its error, or still pending. */
async function outcomeAfter<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ value: T } | { error: unknown } | "pending"> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<"pending">((resolve) => {
    timer = setTimeout(() => resolve("pending"), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe.runIf(available)("PostgreSQL queries while the server went silent", () => {
  const schema = freshSchema("talos_test");
  afterAll(() => dropSchema(schema));

  it("fails a query the server never answers, closes its connection, and works again once the server answers", async () => {
    const proxy = await startBlackHoleProxy();
    const database = await Database.open({
      url: proxy.url,
      schema,
      log,
      queryTimeoutMs: QUERY_TIMEOUT_MS,
    });
    const budgets = new PostgresBudgetCounts(database);
    try {
      await budgets.charge("2026-12-03", "1", "1/10", 100, "charge-1");
      // One connection, idle in the pool: the next query takes it.
      expect(socketsTo(proxy.port)).toBe(1);
      proxy.goDark();
      const outcome = await outcomeAfter(budgets.spent("2026-12-03", "1", "1/10"), PATIENCE_MS);
      expect(outcome).toEqual({ error: expect.any(DatabaseTimeoutError) });
      const { error } = outcome as { error: Error };
      expect(error.message).toMatch(/no answer from PostgreSQL within 0\.2 s/);
      // An outage, as far as jobs go: tried again later.
      expect(classifyJobFailure(error)).toBe("retry");
      // Closed, not back in the pool, where the next query would take it and queue behind the
      // lost one: this one gets a new connection.
      proxy.goLight();
      expect(await budgets.spent("2026-12-03", "1", "1/10")).toEqual({
        installation: 100,
        repository: 100,
      });
      await eventually(() => socketsTo(proxy.port) === 1, "the lost connection to close");
    } finally {
      await database.close();
      await proxy.close();
    }
  });

  it("fails a transaction whose connection goes silent midway, though its work catches the failure", async () => {
    const proxy = await startBlackHoleProxy();
    const database = await Database.open({
      url: proxy.url,
      schema,
      log,
      queryTimeoutMs: QUERY_TIMEOUT_MS,
    });
    try {
      const work = database.inScope({ installation: 1 }, async (client) => {
        await client.query("SELECT 1");
        proxy.goDark();
        // The failure is caught here: the transaction's end must not reuse the connection.
        await client.query("SELECT 2").catch(() => undefined);
        return client.query("SELECT 3");
      });
      expect(await outcomeAfter(work, PATIENCE_MS)).toEqual({
        error: expect.any(DatabaseTimeoutError),
      });
      proxy.goLight();
      const { rows } = await database.inScope({ installation: 1 }, (client) =>
        client.query("SELECT 4 AS four"),
      );
      expect(rows).toEqual([{ four: 4 }]);
      await eventually(() => socketsTo(proxy.port) === 1, "the lost connection to close");
    } finally {
      await database.close();
      await proxy.close();
    }
  });

  it("has the server stop a statement the client gave up on, not run on to its end", async () => {
    const database = await Database.open({
      url: TEST_DATABASE_URL,
      schema,
      log,
      queryTimeoutMs: QUERY_TIMEOUT_MS,
    });
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    const marker = `talos-slow-${Date.now()}`;
    const running = async () =>
      (
        await admin.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
          [`%${marker}%`],
        )
      ).rows[0]!.n;
    try {
      const slow = database.inScope({ installation: 1 }, (client) =>
        client.query(`SELECT pg_sleep(60) /* ${marker} */`),
      );
      expect(await outcomeAfter(slow, PATIENCE_MS)).toEqual({
        error: expect.any(DatabaseTimeoutError),
      });
      // The client closed its connection at 0.2 s; pg_sleep does not notice a closed socket, so
      // without a server-side bound the statement ran its full minute.
      await eventually(async () => (await running()) === 0, "the server to stop it", 10_000);
    } finally {
      await admin.end();
      await database.close();
    }
  });

  it("fails a transaction whose connection drops, and carries on", async () => {
    const database = await Database.open({ url: TEST_DATABASE_URL, schema, log });
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      // The server ends the connection between two queries (a restart, an administrator): pg
      // reports it as an error event, which ends the process when no one listens.
      const work = database.inScope({ installation: 1 }, async (client) => {
        const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        return client.query("SELECT 1");
      });
      await expect(work).rejects.toThrow(/terminat/);
      const { rows } = await database.inScope({ installation: 1 }, (client) =>
        client.query("SELECT 2 AS two"),
      );
      expect(rows).toEqual([{ two: 2 }]);
    } finally {
      await admin.end();
      await database.close();
    }
  });

  it("fails to open when connecting gets no answer", async () => {
    const proxy = await startBlackHoleProxy();
    proxy.goDark();
    try {
      const opening = Database.open({
        url: proxy.url,
        schema,
        log,
        connectTimeoutMs: QUERY_TIMEOUT_MS,
      });
      const outcome = await outcomeAfter(opening, PATIENCE_MS);
      expect(outcome).toEqual({ error: expect.any(Error) });
      expect((outcome as { error: Error }).error.message).toMatch(
        /cannot prepare the database .*timeout/,
      );
    } finally {
      await proxy.close();
    }
  });

  it("waits longer than a query's bound for another instance's migration, up to the migrations' own", async () => {
    const lock = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await lock.connect();
    const key = [`talos-migrations:${schema}`];
    try {
      await lock.query("SELECT pg_advisory_lock(hashtext($1))", key);
      const opening = Database.open({
        url: TEST_DATABASE_URL,
        schema,
        log,
        queryTimeoutMs: QUERY_TIMEOUT_MS,
      });
      expect(await outcomeAfter(opening, 5 * QUERY_TIMEOUT_MS)).toBe("pending");
      await lock.query("SELECT pg_advisory_unlock(hashtext($1))", key);
      const outcome = await outcomeAfter(opening, PATIENCE_MS);
      expect(outcome).toEqual({ value: expect.any(Database) });
      await (outcome as { value: Database }).value.close();
      // A migration that never ends (the lock never released) fails the start, in time.
      await lock.query("SELECT pg_advisory_lock(hashtext($1))", key);
      const stuck = await outcomeAfter(
        Database.open({ url: TEST_DATABASE_URL, schema, log, migrationTimeoutMs: 300 }),
        PATIENCE_MS,
      );
      expect(stuck).toEqual({ error: expect.any(Error) });
      expect((stuck as { error: Error }).error.cause).toBeInstanceOf(DatabaseTimeoutError);
    } finally {
      await lock.end();
    }
  });
});

import { randomUUID } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { Database, type MemoryDatabase, type PooledClient } from "../../src/database/database.js";
import { PostgresMemory } from "../../src/database/postgres-memory.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { TEST_DATABASE_URL } from "../helpers/shared-services.js";

export const log = pino({ level: "silent" });

/** A URL to the test PostgreSQL whose connections carry `name`, to find them in pg_stat_activity. */
export function namedUrl(name: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set("application_name", name);
  return url.toString();
}

export const uniqueName = (prefix: string) =>
  `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;

/** Runs `work` on a plain connection as the connecting user (a superuser here). */
export async function asSuperuser<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Resolves once a connection named `name` waits for a lock another transaction holds, or once
 * `done()` says there is nothing left to wait for.
 */
export async function waitingForLock(name: string, done: () => boolean): Promise<void> {
  while (!done()) {
    const waiting = await asSuperuser(async (client) => {
      const { rows } = await client.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
        [name],
      );
      return rows.length > 0;
    });
    if (waiting) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Calls `ran` after each query `db` runs in a scope, with its SQL, before the work goes on. */
export function afterQueries(db: Database, ran: (sql: string) => void | Promise<void>): void {
  const inScope = db.inScope.bind(db);
  db.inScope = (scope, work) =>
    inScope(scope, (client) =>
      work({
        query: async (...args: Parameters<PooledClient["query"]>) => {
          const result = await client.query(...args);
          await ran(String(args[0]));
          return result;
        },
      } as PooledClient),
    );
}

export function openMemory(database: MemoryDatabase, maxOpenBytes = 2 ** 26) {
  return PostgresMemory.open({
    database,
    schema: "talos",
    embedder: createLocalEmbedder(),
    log,
    metrics: createMetrics(),
    maxOpenBytes,
  });
}

export function openDatabase(schema: string, url = TEST_DATABASE_URL): Promise<Database> {
  return Database.open({ url, schema, log });
}

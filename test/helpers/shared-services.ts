import { randomUUID } from "node:crypto";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";

/** The Redis the multi-instance tests use: TALOS_TEST_REDIS_URL, or the machine's own. */
export const TEST_REDIS_URL = process.env.TALOS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Whether the shared services answer. CI (.ci/run) sets TALOS_REQUIRE_SERVICES=1 and then a
 * missing service fails the tests; elsewhere they are skipped, with a message saying how to run
 * them.
 */
export async function redisAnswers(): Promise<boolean> {
  const client = new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function requireRedis(what: string): Promise<boolean> {
  const answers = await redisAnswers();
  if (!answers) {
    if (process.env.TALOS_REQUIRE_SERVICES === "1")
      throw new Error(`${what}: Redis does not answer at ${TEST_REDIS_URL}, and CI requires it`);
    console.warn(
      `${what}: skipped, Redis does not answer at ${TEST_REDIS_URL} (start redis-server, or set TALOS_TEST_REDIS_URL; .ci/run starts it)`,
    );
  }
  return answers;
}

/** Deletes every key under `prefix`, after a test. */
export async function deleteKeys(prefix: string): Promise<void> {
  const client = new Redis(TEST_REDIS_URL);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
}

/**
 * A TCP proxy in front of `target` (host:port) that a test can cut: an outage of the server
 * behind it, as the app sees one, without stopping a server other tests share.
 */
export async function startCuttableProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    /** Drops every connection and refuses new ones. */
    cut: () => {
      open = false;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore: () => {
      open = true;
    },
    /**
     * Forwards nothing more either way, connections kept open: a Redis that takes commands and
     * never answers (a partition with no reset, a hung server).
     */
    stall: () => {
      for (const socket of sockets) socket.pause();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The PostgreSQL the multi-instance tests use: TALOS_TEST_DATABASE_URL, or the machine's own. */
export const TEST_DATABASE_URL =
  process.env.TALOS_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export async function postgresAnswers(): Promise<boolean> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({
    connectionString: TEST_DATABASE_URL,
    connectionTimeoutMillis: 3_000,
  });
  try {
    await client.connect();
    return (await client.query("SELECT 1 AS one")).rows[0]?.one === 1;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A schema of its own for a test or bench run, named `<prefix>_<16 hex digits>`. */
export const freshSchema = (prefix: string) =>
  `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 16)}`;

/** Drops a schema a test or a benchmark made. */
export async function dropSchema(schema: string): Promise<void> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export async function requirePostgres(what: string): Promise<boolean> {
  const answers = await postgresAnswers();
  if (!answers) {
    if (process.env.TALOS_REQUIRE_SERVICES === "1")
      throw new Error(
        `${what}: PostgreSQL does not answer at ${TEST_DATABASE_URL}, and CI requires it`,
      );
    console.warn(
      `${what}: skipped, PostgreSQL does not answer at ${TEST_DATABASE_URL} (start it, or set TALOS_TEST_DATABASE_URL; .ci/run starts it)`,
    );
  }
  return answers;
}

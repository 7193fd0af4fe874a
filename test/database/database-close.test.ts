import { createConnection, createServer, type Socket } from "node:net";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { Database } from "../../src/database/database.js";
import { PostgresMemory } from "../../src/database/postgres-memory.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";
import { issueMemory } from "../helpers/test-memory.js";

const available = await requirePostgres("the PostgreSQL close tests");
const log = pino({ level: "silent" });

/**
 * A TCP proxy to the test PostgreSQL that can become a black hole, as a partition or a NAT that
 * forgot the connections does: from then on nothing passes either way, not even the end of a
 * connection, and no connection is closed or refused.
 */
async function startBlackHoleProxy() {
  const target = new URL(TEST_DATABASE_URL);
  const sockets = new Set<Socket>();
  let dark = false;
  // Half-open allowed: a client's goodbye (its FIN) gets no FIN back while dark.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({
      host: target.hostname,
      port: Number(target.port || 5432),
      allowHalfOpen: true,
    });
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on("data", (data) => void (dark || to.write(data)));
      from.on("end", () => void (dark || to.end()));
      from.on("close", () => {
        sockets.delete(from);
        if (!dark) to.destroy();
      });
      from.on("error", () => undefined);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const url = new URL(TEST_DATABASE_URL);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.toString(),
    port,
    goDark: () => void (dark = true),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** This process's sockets still open to `port` (the proxy's own are connected from it). */
function socketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter(
    (handle) => handle instanceof Object && (handle as Partial<Socket>).remotePort === port,
  ).length;
}

describe.runIf(available)("closing PostgreSQL while the server went silent", () => {
  const schema = freshSchema("talos_test");
  afterAll(() => dropSchema(schema));

  it("closes the memory at once when its listening connection went silent, and leaves no socket open", async () => {
    const proxy = await startBlackHoleProxy();
    try {
      const database = await Database.open({ url: proxy.url, schema, log });
      const memory = await PostgresMemory.open({
        database,
        schema,
        embedder: createLocalEmbedder(),
        log,
        metrics: createMetrics(),
        maxOpenBytes: 2 ** 26,
      });
      // Searched in RAM: the memory keeps a connection listening for other instances' writes.
      expect(memory.searchesInSql).toBe(false);
      const repo = await memory.open({ installation: 1, repository: 10, name: "acme/widgets" });
      await repo.add(issueMemory(1, "App crashes when saving a widget"));
      expect(socketsTo(proxy.port)).toBeGreaterThan(1);
      proxy.goDark();
      // Neither waits for a goodbye the server cannot send (the test's timeout ends a hang).
      await memory.closeAll();
      await database.close();
      expect(socketsTo(proxy.port)).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it("leaves no pooled connection open after close when the server went silent", async () => {
    const proxy = await startBlackHoleProxy();
    try {
      const database = await Database.open({ url: proxy.url, schema, log });
      // Several connections at once, idle in the pool afterwards.
      await Promise.all(
        [1, 2, 3].map(() =>
          database.inScope({ installation: 1 }, (client) => client.query("SELECT pg_sleep(0.05)")),
        ),
      );
      expect(socketsTo(proxy.port)).toBe(3);
      proxy.goDark();
      await database.close();
      expect(socketsTo(proxy.port)).toBe(0);
    } finally {
      await proxy.close();
    }
  });
});

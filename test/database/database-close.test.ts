import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { Database } from "../../src/database/database.js";
import { PostgresMemory } from "../../src/database/postgres-memory.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { dropSchema, freshSchema, requirePostgres } from "../helpers/shared-services.js";
import { issueMemory } from "../helpers/test-memory.js";
import { socketsTo, startBlackHoleProxy } from "./black-hole-proxy.js";

const available = await requirePostgres("the PostgreSQL close tests");
const log = pino({ level: "silent" });

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

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemoryDatabase, SqlClient } from "../../src/database/database.js";
import { PostgresMemory } from "../../src/database/postgres-memory.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { fingerprintText, MAX_SHARED } from "../../src/memory/near-duplicate.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { openPgliteDatabase } from "../helpers/pglite-database.js";
import { issueMemory } from "../helpers/test-memory.js";
import { log } from "./database-helpers.js";

interface PlanNode {
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  Plans?: PlanNode[];
}

/** The rows a plan's scans of `relation` returned, over all their loops. */
function rowsRead(node: PlanNode, relation: string): number {
  const own =
    node["Relation Name"] === relation
      ? (node["Actual Rows"] ?? 0) * (node["Actual Loops"] ?? 1)
      : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child, relation), 0);
}

describe("memory in PGlite with pgvector: the near-duplicate ranking's cost", () => {
  let pglite: Awaited<ReturnType<typeof openPgliteDatabase>>;
  beforeAll(async () => {
    pglite = await openPgliteDatabase();
  }, 120_000);
  afterAll(() => pglite?.close());

  it("reads at most MAX_SHARED + 1 holders of each of the query's fingerprints, however many records share one", async () => {
    // The statement of the fingerprint ranking, with its values, as a search runs it.
    const captured: Array<{ sql: string; values: unknown[] | undefined }> = [];
    const database: MemoryDatabase = {
      vector: true,
      inScope: (scope, work) =>
        pglite.database.inScope(scope, (client) =>
          work({
            query: (sql: string, values?: unknown[]) => {
              if (sql.includes("fingerprints @>")) captured.push({ sql, values });
              return client.query(sql, values);
            },
          } as SqlClient),
        ),
      asOwner: (sql) => pglite.database.asOwner(sql),
      listen: () => Promise.reject(new Error("not needed with pgvector")),
    };
    const memory = await PostgresMemory.open({
      database,
      schema: "talos",
      embedder: createLocalEmbedder(),
      log,
      metrics: createMetrics(),
      maxOpenBytes: 2 ** 26,
    });
    const ref = { installation: 1, repository: 10, name: "acme/widgets" };
    const repo = await memory.open(ref);
    // A compiler's closing line, in a few hundred issues of the repository: common, not a sign
    // of a duplicate, and not worth reading each time a query quotes it.
    const common = "error: aborting due to 1 previous error";
    const shared = 300;
    await repo.addMany(
      Array.from({ length: shared }, (_, i) =>
        issueMemory(i + 1, `Build ${i + 1} of widget-${i + 1} fails\n${common}`),
      ),
    );
    const query = `Build of gadgets fails\n${common}`;
    expect(fingerprintText(query)).toHaveLength(1);
    await repo.search(query, { k: 5 });
    expect(captured).toHaveLength(1);
    const { sql, values } = captured[0]!;
    const plan = await pglite.database.inScope(ref, async (client) => {
      const { rows } = await client.query<{ "QUERY PLAN": unknown }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`,
        values,
      );
      const json = rows[0]!["QUERY PLAN"];
      return (typeof json === "string" ? JSON.parse(json) : json) as Array<{ Plan: PlanNode }>;
    });
    expect(rowsRead(plan[0]!.Plan, "memory_records")).toBeLessThanOrEqual(MAX_SHARED + 1);
    await memory.closeAll();
  });
});

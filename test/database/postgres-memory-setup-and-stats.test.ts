import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Database,
  setUpVector,
  type MemoryDatabase,
  type SqlClient,
} from "../../src/database/database.js";
import { openPgliteDatabase } from "../helpers/pglite-database.js";
import { freshSchema, requirePostgres, TEST_DATABASE_URL } from "../helpers/shared-services.js";
import { issueMemory } from "../helpers/test-memory.js";
import { openMemory } from "./database-helpers.js";

const available = await requirePostgres("the PostgreSQL memory review tests");
const log = pino({ level: "silent" });
const REF = { installation: 1, repository: 10, name: "acme/widgets" };

describe("pgvector's column and index, once made, take no table lock again", () => {
  let pglite: Awaited<ReturnType<typeof openPgliteDatabase>>;
  beforeAll(async () => {
    pglite = await openPgliteDatabase();
  }, 120_000);
  afterAll(() => pglite?.close());

  it("does not ALTER memory_records at a start where its vector column is there", async () => {
    const statements: string[] = [];
    const recording: SqlClient = {
      query: (text, values) => {
        statements.push(text);
        return pglite.owner.query(text, values);
      },
    };
    expect(await setUpVector(recording, "talos", log)).toBe(true);
    expect(statements.filter((sql) => /ALTER\s+TABLE/i.test(sql))).toEqual([]);
  });

  it("does not run CREATE INDEX at an instance's first open where the HNSW index is there", async () => {
    const first = await openMemory(pglite.database);
    await first.open(REF);
    await first.closeAll();
    const owned: string[] = [];
    const counting: MemoryDatabase = {
      vector: true,
      inScope: (scope, work) => pglite.database.inScope(scope, work),
      asOwner: (sql) => {
        owned.push(sql);
        return pglite.database.asOwner(sql);
      },
      listen: (channel, handlers) => pglite.database.listen(channel, handlers),
    };
    const second = await openMemory(counting);
    const repo = await second.open({ ...REF, repository: 11 });
    await repo.add(issueMemory(1, "App crashes when saving a widget"));
    expect(owned).toEqual([]);
    await second.closeAll();
  });
});

describe.runIf(available)("stats of a memory in PostgreSQL without pgvector", () => {
  const schema = freshSchema("talos_test");
  let database: Database;
  beforeAll(async () => {
    database = await Database.open({ url: TEST_DATABASE_URL, schema, log });
  });
  afterAll(async () => {
    await database?.close();
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });

  it("counts in bytesInRam its own index, not every memory's the instance holds", async () => {
    const memory = await openMemory(database);
    const small = await memory.open({ ...REF, repository: 20 });
    const large = await memory.open({ ...REF, repository: 21, name: "acme/gadgets" });
    await small.add(issueMemory(1, "App crashes when saving a widget"));
    await large.addMany(
      [1, 2, 3, 4, 5].map((n) =>
        issueMemory(n, `Gadget ${n} fails to sync its settings after an update`, {
          repo: "acme/gadgets",
        }),
      ),
    );
    await small.search("crash", { k: 1 });
    await large.search("sync", { k: 1 });
    const [ofSmall, ofLarge] = [(await small.stats()).bytesInRam, (await large.stats()).bytesInRam];
    expect(ofSmall).toBeGreaterThan(0);
    expect(ofLarge).toBeGreaterThan(ofSmall);
    // What `talos memory stats` adds up for its total: the instance's, once.
    expect(ofSmall + ofLarge).toBe(memory.openStores().bytes);
    await memory.closeAll();
  });
});

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { parseEnv } from "../../src/config.js";
import { createServices } from "../../src/create-services.js";
import { Database } from "../../src/database/database.js";
import {
  moveFileMarks,
  PostgresSuspensionMarks,
} from "../../src/database/postgres-suspension-marks.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";
import { testMarkdownWorkers } from "../helpers/test-markdown-workers.js";

const available = await requirePostgres("the suspension marks in PostgreSQL");

describe.runIf(available)("the suspension marks the instances share in PostgreSQL", () => {
  const schema = freshSchema("talos_suspensions");
  const databases: Database[] = [];

  /** An instance's marks: a database connection of its own, on the shared schema. */
  async function instance(): Promise<{ marks: PostgresSuspensionMarks; database: Database }> {
    const database = await Database.open({
      url: TEST_DATABASE_URL,
      schema,
      log: pino({ level: "silent" }),
    });
    databases.push(database);
    return { marks: new PostgresSuspensionMarks(database), database };
  }

  afterAll(async () => {
    for (const database of databases) await database.close();
    await dropSchema(schema);
  });

  it("keeps each installation's earliest suspension, for every instance, until one clears it", async () => {
    const [{ marks: a }, { marks: b }] = [await instance(), await instance()];
    expect(await b.since(2)).toBeUndefined();
    await Promise.all([
      a.record(2, "2026-11-20T08:00:00Z"),
      b.record(3, "2026-11-21T08:00:00.000Z"),
      b.record(2, "2026-11-22T08:00:00.000Z"),
    ]);
    expect(await b.since(2)).toBe("2026-11-20T08:00:00.000Z");
    await b.record(2, "2026-11-19T08:00:00.000Z");
    expect(await a.since(2)).toBe("2026-11-19T08:00:00.000Z");
    expect(await a.all()).toEqual(
      new Map([
        [2, "2026-11-19T08:00:00.000Z"],
        [3, "2026-11-21T08:00:00.000Z"],
      ]),
    );

    await a.clear(2);
    expect(await b.since(2)).toBeUndefined();
    expect([...(await b.all()).keys()]).toEqual([3]);
    await b.clear(3);
  });

  it("marks nothing for an id GitHub could not have or a time that is none or before 1970; far years are kept to the millisecond", async () => {
    const { marks } = await instance();
    await marks.record(1e20, "2026-11-20T08:00:00.000Z");
    await marks.record(4, "soon");
    // Before PostgreSQL's first time (4713 BC), which the file took: "timestamp out of range".
    await marks.record(8, "-005000-01-01T00:00:00.000Z");
    await marks.record(9, "1969-12-31T23:59:59.999Z");
    // to_timestamp's float gave these back a millisecond early.
    const far = [
      "+010000-01-01T00:00:00.000Z",
      "9999-12-31T00:00:01.994Z",
      "2300-06-15T12:34:56.789Z",
    ];
    for (const [i, at] of far.entries()) await marks.record(10 + i, at);
    expect(await marks.since(1e20)).toBeUndefined();
    expect(await marks.all()).toEqual(new Map(far.map((at, i) => [10 + i, at])));
    for (const i of far.keys()) await marks.clear(10 + i);
  });

  it("lets an installation's scope change its own mark only", async () => {
    const { marks, database } = await instance();
    await marks.record(6, "2026-11-20T08:00:00.000Z");
    await marks.record(7, "2026-11-20T08:00:00.000Z");
    // Row-level security: installation 6's scope sees, and deletes, nothing of 7's.
    await database.inScope({ installation: 6 }, (client) =>
      client.query("DELETE FROM suspension_marks"),
    );
    await expect(
      database.inScope({ installation: 6 }, (client) =>
        client.query("INSERT INTO suspension_marks VALUES (8, 0)"),
      ),
    ).rejects.toThrow(/row-level security/);
    expect([...(await marks.all()).keys()]).toEqual([7]);
  });
});

describe.runIf(available)("suspensions.json's marks, moved into PostgreSQL at start", () => {
  const start = async (dataDir: string, schema: string) =>
    createServices({
      env: parseEnv({
        TALOS_DATA_DIR: dataDir,
        DATABASE_URL: TEST_DATABASE_URL,
        TALOS_DATABASE_SCHEMA: schema,
      }),
      log: (await captureLogs("warn")).log,
      model: undefined,
      markdown: testMarkdownWorkers(),
    });
  const schemaForTest = () => {
    const schema = freshSchema("talos_suspensions");
    onTestFinished(() => dropSchema(schema));
    return schema;
  };

  it("moves them once: a mark its catch-up cleared is not brought back by the next start", async () => {
    const schema = schemaForTest();
    const dataDir = makeDataDir();
    const file = join(dataDir, "suspensions.json");
    writeFileSync(
      file,
      JSON.stringify({ 2: "2026-11-20T08:00:00.000Z", 3: "1900-01-01T00:00:00Z" }),
    );
    const first = await start(dataDir, schema);
    expect(await first.suspensions.all()).toEqual(new Map([[2, "2026-11-20T08:00:00.000Z"]]));
    expect(existsSync(file)).toBe(false);
    await first.suspensions.clear(2);
    await first.close();
    const second = await start(dataDir, schema);
    onTestFinished(() => second.close());
    expect(await second.suspensions.all()).toEqual(new Map());
  });

  it("finishes a move a crash cut short, and starts, with a warning, when the file cannot be read", async () => {
    const schema = schemaForTest();
    const dataDir = makeDataDir();
    const file = join(dataDir, "suspensions.json");
    // Renamed aside, then the process died before its marks were in.
    writeFileSync(`${file}.moving`, JSON.stringify({ 4: "2026-11-21T08:00:00.000Z" }));
    // A file that cannot be read: a directory stands for EACCES, which root (these tests) never meets.
    mkdirSync(file);
    const logs = await captureLogs("warn");
    const database = await Database.open({ url: TEST_DATABASE_URL, schema, log: logs.log });
    onTestFinished(() => database.close());
    const marks = new PostgresSuspensionMarks(database);
    await moveFileMarks(file, marks, logs.log);
    expect(await marks.all()).toEqual(new Map([[4, "2026-11-21T08:00:00.000Z"]]));
    expect(logs.lines()).toMatchObject([
      { level: 40, msg: "suspension marks not moved into the database" },
    ]);
    // The server starts all the same (it did not: the file was read eagerly, and threw).
    const services = await start(dataDir, schema);
    await services.close();
  });
});

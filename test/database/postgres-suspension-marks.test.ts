import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { Database } from "../../src/database/database.js";
import { PostgresSuspensionMarks } from "../../src/database/postgres-suspension-marks.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";

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

  it("marks nothing for an id GitHub could not have or a time that is none; a far year is kept", async () => {
    const { marks } = await instance();
    await marks.record(1e20, "2026-11-20T08:00:00.000Z");
    await marks.record(4, "soon");
    await marks.record(5, "+010000-01-01T00:00:00.000Z");
    expect(await marks.since(1e20)).toBeUndefined();
    expect(await marks.all()).toEqual(new Map([[5, "+010000-01-01T00:00:00.000Z"]]));
    await marks.clear(5);
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
        client.query("INSERT INTO suspension_marks VALUES (8, now())"),
      ),
    ).rejects.toThrow(/row-level security/);
    expect([...(await marks.all()).keys()]).toEqual([7]);
  });
});

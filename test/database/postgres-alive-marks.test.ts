import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { Database } from "../../src/database/database.js";
import { PostgresAliveMarks } from "../../src/database/postgres-alive-marks.js";
import { startOutageCatchUp, type AliveMark } from "../../src/memory/outage-catch-up.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs } from "../helpers/test-app.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";

const available = await requirePostgres("the shared alive mark");

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 11, 1, 12);
/** TALOS_REDELIVER_HOURS' default reach. */
const REACH = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

describe.runIf(available)("the alive mark the instances share in PostgreSQL", () => {
  const schemas: string[] = [];
  const databases: Database[] = [];

  /** Instances on one fresh schema, each with its own mark (and `before`, its alive.json's). */
  async function fleet(...names: string[]) {
    return fleetWith(undefined, ...names);
  }

  async function fleetWith(before: AliveMark | undefined, ...names: string[]) {
    const schema = freshSchema("talos_alive");
    schemas.push(schema);
    const database = await Database.open({
      url: TEST_DATABASE_URL,
      schema,
      log: pino({ level: "silent" }),
    });
    databases.push(database);
    return names.map(
      (instance) => new PostgresAliveMarks(database, { instance, before: async () => before }),
    );
  }

  afterAll(async () => {
    for (const database of databases) await database.close();
    for (const schema of schemas) await dropSchema(schema);
  });

  it("catches up only after an outage of every instance, once, and hands an unfinished one on", async () => {
    const [a, b, c] = await fleet("a", "b", "c");
    // The fleet's first start: nothing to catch up from.
    expect(await a!.start(T0, REACH)).toBeUndefined();
    expect(await b!.start(T0, REACH)).toBeUndefined();
    // b is down for four days while a runs: a's heartbeats followed the webhooks.
    await b!.stop(T0);
    await a!.beat(T0 + 4 * DAY, false);
    expect(await b!.start(T0 + 4 * DAY + HOUR, REACH)).toBeUndefined();

    // Then all of them are down for six days: the first to start takes the catch-up.
    const last = T0 + 4 * DAY + HOUR;
    await a!.stop(last);
    await b!.stop(last);
    const t1 = last + 6 * DAY;
    const since = iso(last - 10 * MINUTE);
    expect(await a!.start(t1, REACH)).toEqual({ since, caughtUp: [], lastRunning: iso(last) });
    expect(await b!.start(t1 + MINUTE, REACH)).toBeUndefined();
    expect(await b!.beat(t1 + 10 * MINUTE, false)).toBeUndefined();
    await a!.caughtUp("2/101", t1 + 11 * MINUTE);
    await a!.caughtUp("2/101", t1 + 11 * MINUTE);

    // a stops half-way (SIGTERM): the next heartbeat of another takes it on, with a's progress.
    await a!.stop(t1 + 12 * MINUTE);
    expect(await b!.beat(t1 + 20 * MINUTE, false)).toEqual({ since, caughtUp: ["2/101"] });
    // b is killed: its catch-up is its own until its heartbeat has been missing for 30 minutes.
    expect(await c!.beat(t1 + 40 * MINUTE, false)).toBeUndefined();
    expect(await c!.beat(t1 + 51 * MINUTE, false)).toEqual({ since, caughtUp: ["2/101"] });
    // Its own while it runs; held but not running (its end could not be recorded), run again.
    expect(await c!.beat(t1 + 52 * MINUTE, true)).toBeUndefined();
    expect(await a!.beat(t1 + 53 * MINUTE, false)).toBeUndefined();
    expect(await c!.beat(t1 + 54 * MINUTE, false)).toEqual({ since, caughtUp: ["2/101"] });

    // Unfinished (a listing failed): given up, and taken again by the next heartbeat.
    await c!.end(t1 + 55 * MINUTE, false);
    expect(await a!.start(t1 + 56 * MINUTE, REACH)).toEqual({
      since,
      caughtUp: ["2/101"],
      lastRunning: iso(t1 + 55 * MINUTE),
    });
    await a!.end(t1 + HOUR, true);
    expect(await b!.beat(t1 + 2 * HOUR, false)).toBeUndefined();
    expect(await c!.start(t1 + 3 * HOUR, REACH)).toBeUndefined();
  });

  it("catches up after an outage that spans the upgrade, from the instances' own alive.json", async () => {
    const aliveAt = iso(T0 - 5 * DAY);
    const [a, b] = await fleetWith({ aliveAt }, "a", "b");
    expect(await a!.start(T0, REACH)).toEqual({
      since: iso(T0 - 5 * DAY - 10 * MINUTE),
      caughtUp: [],
      lastRunning: aliveAt,
    });
    // The row is there now, and a holds the catch-up.
    expect(await b!.start(T0, REACH)).toBeUndefined();
    await a!.end(T0 + HOUR, true);
    expect(await b!.beat(T0 + 2 * HOUR, false)).toBeUndefined();
  });

  it("lets one of two instances starting after an outage of both run the catch-up", async () => {
    const [a, b] = await fleet("a", "b");
    await a!.start(T0, REACH);
    await a!.stop(T0);
    const asked: string[] = [];
    const start = async (marks: PostgresAliveMarks, at: number) => {
      const logs = await captureLogs("info");
      const outage = await startOutageCatchUp({
        marks,
        redeliverHours: 24,
        catchUp: async (since) => {
          asked.push(`${since} by ${marks === a ? "a" : "b"}`);
          return true;
        },
        clock: createFakeClock(at),
        log: logs.log,
      });
      await outage.settled;
      await outage.stop();
    };

    await Promise.all([start(a!, T0 + 5 * DAY), start(b!, T0 + 5 * DAY)]);

    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(new RegExp(`^${iso(T0 - 10 * MINUTE)} by [ab]$`));
  });
});

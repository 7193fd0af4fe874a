import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ALIVE_FILE,
  FileAliveMarks,
  type AliveMarks,
  readAliveMark,
  startOutageCatchUp,
  type CatchUpProgress,
} from "../../src/memory/outage-catch-up.js";
import { eventually } from "../helpers/eventually.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 11, 4, 12);

function dataDirWithMark(mark?: unknown): string {
  const directory = makeDataDir();
  if (mark !== undefined)
    writeFileSync(
      join(directory, ALIVE_FILE),
      typeof mark === "string" ? mark : JSON.stringify(mark),
    );
  return directory;
}

const markIn = (directory: string) => readAliveMark(join(directory, ALIVE_FILE));

/** Starts with redeliveries reaching 24 hours back; records what it was asked to catch up. */
async function start(
  directory: string,
  done: (progress: CatchUpProgress) => Promise<boolean> = async () => true,
) {
  const asked: string[] = [];
  const before: string[][] = [];
  const logs = await captureLogs("info");
  const outage = await startOutageCatchUp({
    marks: new FileAliveMarks(directory, logs.log),
    redeliverHours: 24,
    catchUp: (since, progress) => {
      asked.push(since);
      before.push([...progress.done]);
      return done(progress);
    },
    clock: createFakeClock(NOW),
    log: logs.log,
  });
  await outage.settled;
  return { outage, asked, before, logs };
}

describe("startOutageCatchUp", () => {
  it("catches up from before the last mark when Talos was down longer than redeliveries reach, then clears it", async () => {
    const directory = dataDirWithMark({ aliveAt: new Date(NOW - 5 * 24 * HOUR).toISOString() });

    const { outage, asked } = await start(directory);
    await outage.stop();

    // Ten minutes earlier than the mark: GitHub's clock and ours may differ.
    expect(asked).toEqual([new Date(NOW - 5 * 24 * HOUR - 10 * 60_000).toISOString()]);
    expect(await markIn(directory)).toEqual({ aliveAt: new Date(NOW).toISOString() });
  });

  it("keeps the catch-up in the mark while it runs, so that a crash meanwhile leaves it to do", async () => {
    const directory = dataDirWithMark({ aliveAt: new Date(NOW - 5 * 24 * HOUR).toISOString() });
    let finish!: (done: boolean) => void;
    const asked: string[] = [];
    const logs = await captureLogs("info");
    const outage = await startOutageCatchUp({
      marks: new FileAliveMarks(directory, logs.log),
      redeliverHours: 24,
      catchUp: (since) => {
        asked.push(since);
        return new Promise((resolve) => (finish = resolve));
      },
      clock: createFakeClock(NOW),
      log: logs.log,
    });

    expect(await markIn(directory)).toEqual({
      aliveAt: new Date(NOW).toISOString(),
      catchUpFrom: asked[0],
      caughtUp: [],
    });
    finish(true);
    await outage.settled;
    expect((await markIn(directory))?.catchUpFrom).toBeUndefined();
  });

  it("runs an unfinished catch-up again at the next start, from where it was to start", async () => {
    const directory = dataDirWithMark({ aliveAt: new Date(NOW - 5 * 24 * HOUR).toISOString() });
    const first = await start(directory, async () => false);
    await first.outage.stop();
    expect(first.logs.text().includes("memory catch-up unfinished")).toBe(true);

    // Restarted at once: the mark is recent, but its catch-up is not done.
    const second = await start(directory);

    expect(second.asked).toEqual(first.asked);
    expect((await markIn(directory))?.catchUpFrom).toBeUndefined();
  });

  it("goes on at the next start with the repositories not caught up yet", async () => {
    const directory = dataDirWithMark({ aliveAt: new Date(NOW - 5 * 24 * HOUR).toISOString() });
    const first = await start(directory, async (progress) => {
      progress.finished("2/101");
      return false;
    });
    await first.outage.stop();
    expect(await markIn(directory)).toEqual({
      aliveAt: new Date(NOW).toISOString(),
      catchUpFrom: first.asked[0],
      caughtUp: ["2/101"],
    });

    const second = await start(directory);

    expect(second.asked).toEqual(first.asked);
    expect(second.before).toEqual([["2/101"]]);
  });

  it("catches every repository up again, from the first outage, when down long again before it finished", async () => {
    const firstOutage = new Date(NOW - 30 * 24 * HOUR).toISOString();
    const directory = dataDirWithMark({
      aliveAt: new Date(NOW - 5 * 24 * HOUR).toISOString(),
      catchUpFrom: firstOutage,
      caughtUp: ["2/101"],
    });

    const { asked, before } = await start(directory);

    expect(asked).toEqual([firstOutage]);
    expect(before).toEqual([[]]);
  });

  it("keeps the catch-up to do when it fails", async () => {
    const directory = dataDirWithMark({ aliveAt: new Date(NOW - 5 * 24 * HOUR).toISOString() });

    const { asked, logs } = await start(directory, () =>
      Promise.reject(new Error("GitHub is down")),
    );

    expect((await markIn(directory))?.catchUpFrom).toBe(asked[0]);
    expect(logs.lines().find((l) => l.msg === "memory catch-up failed")?.level).toBe(50);
  });

  it("needs none when redeliveries reach back to the last mark", async () => {
    const directory = dataDirWithMark({ aliveAt: new Date(NOW - 20 * HOUR).toISOString() });

    const { asked } = await start(directory);

    expect(asked).toEqual([]);
    expect(await markIn(directory)).toEqual({ aliveAt: new Date(NOW).toISOString() });
  });

  it("needs none at a first start (no mark), and writes one", async () => {
    const directory = dataDirWithMark();

    const { asked } = await start(directory);

    expect(asked).toEqual([]);
    expect(await markIn(directory)).toEqual({ aliveAt: new Date(NOW).toISOString() });
  });

  it("says so and needs none when the mark is damaged, and writes a good one", async () => {
    const directory = dataDirWithMark('{"aliveAt": "yesterday"}');

    const { asked, logs } = await start(directory);

    expect(asked).toEqual([]);
    const warning = logs
      .lines()
      .find((l) => String(l.msg).includes("cannot read when Talos last ran"));
    expect(JSON.stringify(warning)).toContain(`${ALIVE_FILE} is damaged`);
    expect(JSON.parse(readFileSync(join(directory, ALIVE_FILE), "utf8"))).toEqual({
      aliveAt: new Date(NOW).toISOString(),
    });
  });

  it("takes on, at a heartbeat, a catch-up the mark hands over, and tries a start that failed again", async () => {
    const calls: string[] = [];
    const since = new Date(NOW - 5 * 24 * HOUR).toISOString();
    let starts = 0;
    let beats = 0;
    const marks: AliveMarks = {
      start: async () => {
        calls.push("start");
        // The database away at the first start.
        if (++starts === 1) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
        return undefined;
      },
      // Another instance gave its catch-up up: the second heartbeat takes it.
      beat: async () => {
        calls.push("beat");
        return ++beats === 2 ? { since, caughtUp: ["2/101"] } : undefined;
      },
      caughtUp: async (key) => void calls.push(`caught up ${key}`),
      end: async (_, finished) => void calls.push(`end ${finished}`),
      stop: async () => void calls.push("stop"),
    };
    const logs = await captureLogs("info");
    const asked: Array<[string, string[]]> = [];
    const outage = await startOutageCatchUp({
      marks,
      redeliverHours: 24,
      catchUp: async (from, progress) => {
        asked.push([from, [...progress.done]]);
        progress.finished("2/102");
        return true;
      },
      clock: createFakeClock(NOW),
      log: logs.log,
      everyMs: 5,
    });
    await outage.settled;
    await eventually(() => calls.includes("end true"), "the catch-up taken on");
    await outage.stop();

    expect(asked).toEqual([[since, ["2/101"]]]);
    expect(calls.slice(0, 4)).toEqual(["start", "start", "beat", "beat"]);
    expect(calls).toContain("caught up 2/102");
    expect(calls.at(-1)).toBe("stop");
    expect(logs.text()).toContain("cannot read or write the mark of when Talos last ran");
  });
});

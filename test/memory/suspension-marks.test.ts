import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileSuspensionMarks } from "../../src/memory/suspension-marks.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

describe("suspension marks", () => {
  it("keeps the earliest suspension of each installation until it is cleared, across instances of the file", async () => {
    const file = join(makeDataDir(), "suspensions.json");
    const { log } = await captureLogs("warn");
    const marks = new FileSuspensionMarks(file, log);
    expect(await marks.since(2)).toBeUndefined();

    // A second suspension whose unsuspension was missed does not move the first one's time.
    await Promise.all([
      marks.record(2, "2026-11-20T08:00:00.000Z"),
      marks.record(3, "2026-11-21T08:00:00.000Z"),
      marks.record(2, "2026-11-22T08:00:00.000Z"),
    ]);
    const reopened = new FileSuspensionMarks(file, log);
    expect(await reopened.since(2)).toBe("2026-11-20T08:00:00.000Z");
    expect(await reopened.since(3)).toBe("2026-11-21T08:00:00.000Z");
    await reopened.record(2, "2026-11-19T08:00:00.000Z");
    expect(await reopened.since(2)).toBe("2026-11-19T08:00:00.000Z");

    await reopened.clear(2);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ 3: "2026-11-21T08:00:00.000Z" });
  });

  it("reads a damaged file as no marks, with a warning, and writes it whole again", async () => {
    const file = join(makeDataDir(), "suspensions.json");
    writeFileSync(file, '{"2": "yesterday"');
    const logs = await captureLogs("warn");
    const marks = new FileSuspensionMarks(file, logs.log);

    expect(await marks.since(2)).toBeUndefined();
    expect(logs.lines()).toMatchObject([
      { level: 40, file, msg: "suspension marks damaged: read as none" },
    ]);
    await marks.record(4, "2026-11-20T08:00:00.000Z");
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ 4: "2026-11-20T08:00:00.000Z" });
  });

  it("keeps every other installation's mark when one is odd: an id past safe integers, a year past 9999, a hand-edited entry", async () => {
    const file = join(makeDataDir(), "suspensions.json");
    const { log } = await captureLogs("warn");
    const marks = new FileSuspensionMarks(file, log);
    await marks.record(2, "2026-11-20T08:00:00.000Z");
    await marks.record(1e20, "2026-11-20T08:00:00.000Z");
    await marks.record(3, "+010000-01-01T00:00:00.000Z");
    // Before 1970: a clock gone wrong (and before PostgreSQL's times begin, for 4713 BC).
    await marks.record(5, "1969-12-31T23:59:59.999Z");
    await marks.record(6, "-005000-01-01T00:00:00.000Z");
    const written = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    expect(written).toEqual({
      2: "2026-11-20T08:00:00.000Z",
      3: "+010000-01-01T00:00:00.000Z",
    });
    writeFileSync(
      file,
      JSON.stringify({
        ...written,
        4: "soon",
        7: "1900-01-01T00:00:00Z",
        x: "2026-11-20T08:00:00.000Z",
        // Read as 8, it was one that clearing 8 never removed: caught up from then for ever.
        "08": "2026-11-20T08:00:00.000Z",
      }),
    );

    const reopened = new FileSuspensionMarks(file, log);
    expect(await reopened.since(2)).toBe("2026-11-20T08:00:00.000Z");
    expect(await reopened.since(3)).toBe("+010000-01-01T00:00:00.000Z");
    expect(await reopened.since(4)).toBeUndefined();
    expect(await reopened.since(7)).toBeUndefined();
    expect(await reopened.since(8)).toBeUndefined();
    expect([...(await reopened.all()).keys()].sort()).toEqual([2, 3]);
  });
});

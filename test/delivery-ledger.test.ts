import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openDeliveryLedger } from "../src/delivery-ledger.js";
import { captureLogs, makeDataDir } from "./helpers/test-app.js";

const HOUR = 3_600_000;
const fixedClock = (at: number) => ({ now: () => at, sleep: async () => undefined });

async function open(file: string, clock = fixedClock(1_000 * HOUR), maxEntries = 100) {
  const logs = await captureLogs("warn");
  const ledger = await openDeliveryLedger({
    file,
    retentionMs: 72 * HOUR,
    maxEntries,
    clock,
    log: logs.log,
  });
  return { ledger, logs };
}

describe("the delivery ledger", () => {
  it("claims a delivery once, and again after a failure gave it back", async () => {
    const { ledger } = await open(join(makeDataDir(), "deliveries.log"));
    expect(ledger.claim("a")).toBe(true);
    expect(ledger.claim("a")).toBe(false); // in progress
    ledger.release("a");
    expect(ledger.claim("a")).toBe(true);
    await ledger.complete("a");
    expect(ledger.claim("a")).toBe(false);
    await ledger.close();
  });

  it("remembers completed deliveries across a restart", async () => {
    const file = join(makeDataDir(), "deliveries.log");
    const first = await open(file);
    for (const id of ["d1", "d2", "d3"]) {
      first.ledger.claim(id);
      await first.ledger.complete(id);
    }
    // No close(): a crash right after the append must not lose it.
    const second = await open(file);
    expect(["d1", "d2", "d3", "d4"].map((id) => second.ledger.claim(id))).toEqual([
      false,
      false,
      false,
      true,
    ]);
    await first.ledger.close();
    await second.ledger.close();
  });

  it("keeps concurrent completions", async () => {
    const file = join(makeDataDir(), "deliveries.log");
    const { ledger } = await open(file);
    const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
    ids.forEach((id) => ledger.claim(id));
    await Promise.all(ids.map((id) => ledger.complete(id)));
    await ledger.close();
    const reopened = await open(file);
    expect(ids.filter((id) => reopened.ledger.claim(id))).toEqual([]);
    await reopened.ledger.close();
  });

  it("forgets deliveries older than the retention", async () => {
    const file = join(makeDataDir(), "deliveries.log");
    let now = 1_000 * HOUR;
    const clock = { now: () => now, sleep: async () => undefined };
    const first = await open(file, clock);
    first.ledger.claim("old");
    await first.ledger.complete("old");
    await first.ledger.close();
    now += 73 * HOUR;
    const later = await open(file, clock);
    expect(later.ledger.claim("old")).toBe(true);
    expect(readFileSync(file, "utf8")).toBe("");
    await later.ledger.close();
  });

  it("bounds the file: it is rewritten with the newest entries once it doubles", async () => {
    const file = join(makeDataDir(), "deliveries.log");
    const { ledger } = await open(file, undefined, 100);
    for (let i = 0; i < 450; i++) {
      ledger.claim(`b${i}`);
      await ledger.complete(`b${i}`);
    }
    await ledger.close();
    const lines = readFileSync(file, "utf8").trim().split("\n");
    expect(lines.length).toBeLessThan(200);
    expect(lines.at(-1)).toMatch(/^b449\t/);
    const reopened = await open(file, undefined, 100);
    expect(reopened.ledger.claim("b449")).toBe(false);
    expect(reopened.ledger.claim("b0")).toBe(true);
    await reopened.ledger.close();
  });

  it("survives a torn last line and skips malformed lines, saying where", async () => {
    const file = join(makeDataDir(), "deliveries.log");
    const at = 1_000 * HOUR;
    writeFileSync(file, `good\t${at}\nnot a line\nalso-good\t${at}\ntorn\t12`);
    const { ledger, logs } = await open(file);
    expect(ledger.claim("good")).toBe(false);
    expect(ledger.claim("also-good")).toBe(false);
    expect(ledger.claim("torn")).toBe(true);
    const warnings = logs.lines().map((l) => [l.msg, l.line ?? null]);
    expect(warnings).toEqual([
      [
        "delivery ledger ends in a partly written line (a crash during an append); ignoring it",
        null,
      ],
      ["delivery ledger has a malformed line; skipping it", 2],
    ]);
    expect(logs.lines()[0]?.file).toBe(file);
    await ledger.close();
  });

  it("never writes an id that could forge a line", async () => {
    const file = join(makeDataDir(), "deliveries.log");
    const { ledger } = await open(file);
    ledger.claim("x\tevil\ny");
    await ledger.complete("x\tevil\ny");
    await ledger.close();
    expect(readFileSync(file, "utf8")).toBe("");
  });
});

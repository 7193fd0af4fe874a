import { describe, expect, it } from "vitest";
import type { Clock } from "../../src/clock.js";
import {
  createRedeliverySweeps,
  MAX_FAILED_SWEEPS,
  MAX_REDELIVERIES_WHILE_RUNNING,
  SWEEP_DELAY_MS,
  SWEEP_INTERVAL_MS,
  SWEEP_MARGIN_MS,
} from "../../src/github/create-redelivery-sweeps.js";
import { eventually } from "../helpers/eventually.js";
import { createFakeClock, createManualClock } from "../helpers/fake-clock.js";
import { githubScope } from "../helpers/github-mocks.js";
import {
  appClient,
  attempt,
  LIST,
  mockPage,
  mockRedeliveries,
} from "../helpers/hook-deliveries.js";
import { captureLogs } from "../helpers/test-app.js";

const SUMMARY = "asked GitHub to redeliver missed deliveries";

async function sweepsWith(clock: Clock, overrides: { hours?: number } = {}) {
  const logs = await captureLogs("info");
  const stop = new AbortController();
  const sweeps = createRedeliverySweeps({
    auth: appClient,
    queue: { has: () => Promise.resolve(false) },
    hours: 24,
    ledgerRetentionHours: 72,
    clock,
    log: logs.log,
    signal: stop.signal,
    ...overrides,
  });
  const summaries = () => logs.lines().filter((l) => l.msg === SUMMARY);
  return { sweeps, logs, stop, summaries };
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("createRedeliverySweeps", () => {
  it("after a burst of refusals, sweeps once, SWEEP_DELAY_MS after the first, looking back to it less SWEEP_MARGIN_MS", async () => {
    const clock = createManualClock();
    const { sweeps, summaries } = await sweepsWith(clock);
    const scope = githubScope();
    mockPage(scope, []);
    await sweeps.start();
    expect(summaries()).toHaveLength(1);
    await clock.advance(SWEEP_INTERVAL_MS);

    const refusedAt = clock.now();
    mockPage(scope, [attempt(90, "guid-busy", iso(refusedAt), { statusCode: 503 })]);
    const posted: string[] = [];
    mockRedeliveries(scope, [90], posted);
    sweeps.refused();
    await clock.advance(1_000);
    sweeps.refused();
    sweeps.refused();
    await clock.advance(SWEEP_DELAY_MS - 1_001);
    expect(scope.isDone()).toBe(false);
    await clock.advance(1);
    await sweeps.idle();

    expect(posted).toEqual([`${LIST}/90/attempts`]);
    expect(summaries()).toHaveLength(2);
    expect(summaries()[1]).toMatchObject({
      since: iso(refusedAt - SWEEP_MARGIN_MS),
      redelivered: 1,
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("sweeps again after a refusal made while it ran, SWEEP_INTERVAL_MS after its start, and stops once a delivery has been redelivered MAX_REDELIVERIES_WHILE_RUNNING times", async () => {
    const clock = createManualClock();
    const { sweeps, summaries } = await sweepsWith(clock);
    const scope = githubScope();
    mockPage(scope, []);
    await sweeps.start();

    // GitHub's attempts at delivering guid-busy, newest first: each redelivery is refused again
    // (503) while the sweep that asked for it runs.
    const attempts = [attempt(100, "guid-busy", iso(clock.now()), { statusCode: 503 })];
    const posted: string[] = [];
    const sweep = () => {
      mockPage(scope, [...attempts]);
      const id = attempts[0]!.id;
      scope.post(`${LIST}/${id}/attempts`).reply((uri) => {
        posted.push(uri);
        attempts.unshift(
          attempt(id + 1, "guid-busy", iso(clock.now()), { statusCode: 503, redelivery: true }),
        );
        sweeps.refused();
        return [202, {}];
      });
    };
    sweep();
    sweeps.refused();
    for (let n = 1; n <= MAX_REDELIVERIES_WHILE_RUNNING; n++) {
      await clock.advance(SWEEP_INTERVAL_MS - 1);
      expect(summaries()).toHaveLength(n);
      await clock.advance(1);
      await eventually(() => summaries().length === n + 1, `sweep ${n}`);
      if (n < MAX_REDELIVERIES_WHILE_RUNNING) sweep();
    }
    // The last redelivery was refused too: one more sweep, which asks for nothing.
    mockPage(scope, [...attempts]);
    await clock.advance(SWEEP_INTERVAL_MS);
    await sweeps.idle();

    expect(posted).toEqual([100, 101, 102].map((id) => `${LIST}/${id}/attempts`));
    expect(summaries().at(-1)).toMatchObject({
      redelivered: 0,
      skipped: expect.objectContaining({ redeliveredBefore: 1 }),
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("tries a sweep that stopped short again, each time twice as late, MAX_FAILED_SWEEPS times at most", async () => {
    const clock = createFakeClock();
    const { sweeps, logs } = await sweepsWith(clock);
    const scope = githubScope();
    mockPage(scope, []);
    await sweeps.start();
    scope.get(LIST).query(true).times(MAX_FAILED_SWEEPS).reply(502, { message: "Server Error" });

    sweeps.refused();
    await sweeps.idle();

    expect(clock.sleeps).toEqual(
      Array.from({ length: MAX_FAILED_SWEEPS }, (_, n) => SWEEP_INTERVAL_MS * 2 ** n),
    );
    expect(logs.lines().at(-1)).toMatchObject({
      level: 40,
      msg: "redelivery sweeps keep stopping short; the refused deliveries are left for the next start",
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("sweeps nothing once the server stops, nor with TALOS_REDELIVER_HOURS=0", async () => {
    const clock = createFakeClock();
    const stopping = await sweepsWith(clock);
    const scope = githubScope();
    mockPage(scope, []);
    await stopping.sweeps.start();
    stopping.sweeps.refused();
    stopping.stop.abort();
    stopping.sweeps.refused();
    await stopping.sweeps.idle();
    expect(stopping.summaries()).toHaveLength(1);

    const off = await sweepsWith(clock, { hours: 0 });
    await off.sweeps.start();
    off.sweeps.refused();
    await off.sweeps.idle();
    expect(off.logs.lines().map((l) => l.msg)).toEqual([]);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

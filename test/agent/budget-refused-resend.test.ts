import { describe, expect, it } from "vitest";
import {
  TokenBudgets,
  type BudgetCounts,
  type SharedBudgetCounts,
} from "../../src/agent/token-budgets.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs } from "../helpers/test-app.js";

/** Shared counts that add a charge once per id (as Redis and PostgreSQL do); some charges fail. */
class Counts implements SharedBudgetCounts {
  readonly ids = new Set<string>();
  total = 0;
  /** Charges of these sizes are refused (a blip). */
  failing = new Set<number>();
  async spent(): Promise<BudgetCounts> {
    await new Promise((resolve) => setImmediate(resolve));
    return { installation: this.total, repository: this.total };
  }
  async charge(_d: string, _i: string, _r: string, tokens: number, id: string) {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.failing.has(tokens)) throw new Error("blip");
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.total += tokens;
  }
  async takeNotice() {
    return true;
  }
}

describe("shared budget counts: refused charges sent again by jobs starting together", () => {
  it("never forgets a charge: each one ends up in the shared counts once", async () => {
    const shared = new Counts();
    const logs = await captureLogs("warn");
    const budgets = await TokenBudgets.open({
      shared,
      dailyTokens: 1_000_000,
      jobTokens: 1_000_000,
      clock: createFakeClock(),
      log: logs.log,
      metrics: createMetrics(),
    });
    const scope = { installation: 1, repository: 10 };
    // A blip: three charges refused.
    shared.failing = new Set([100, 200, 400]);
    const job = await budgets.account(scope);
    job.charge(100);
    job.charge(200);
    job.charge(400);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(shared.total).toBe(0);

    // The store is back, except for the last charge for a moment; two jobs start at once.
    shared.failing = new Set([400]);
    await Promise.all([budgets.account(scope), budgets.account(scope)]);
    // The blip is over.
    shared.failing = new Set();
    await budgets.flush();
    await budgets.account(scope);
    await budgets.flush();

    expect(shared.total).toBe(700);
    // And this instance still counts all of it.
    const next = await budgets.account(scope);
    expect(1_000_000 - next.remaining()).toBe(700);
  });
});

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BudgetExceededError, TokenBudgets } from "../../src/agent/token-budgets.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

async function open(file: string, clock: FakeClock, dailyTokens = 10_000, jobTokens = 6_000) {
  const logs = await captureLogs("warn");
  const metrics = createMetrics();
  const budgets = await TokenBudgets.open({
    file,
    dailyTokens,
    jobTokens,
    clock,
    log: logs.log,
    metrics,
  });
  return { budgets, logs, metrics };
}

describe("token budgets", () => {
  it("charges installation, repository and job; a repository can only lower its budget", async () => {
    const clock = createFakeClock();
    const { budgets } = await open(join(makeDataDir(), "budgets.json"), clock);
    const a = await budgets.account({ installation: 1, repository: 10, repositoryTokens: 3_000 });
    expect(a.remaining()).toBe(3_000);
    a.charge(2_500);
    expect(a.remaining()).toBe(500);
    // Another repository of the installation: its own budget, the installation's shared.
    const b = await budgets.account({ installation: 1, repository: 20, repositoryTokens: 50_000 });
    expect(b.remaining()).toBe(6_000); // the job cap
    b.charge(5_000);
    const c = await budgets.account({ installation: 1, repository: 20 });
    expect(c.remaining()).toBe(10_000 - 7_500);
    // Another installation is untouched.
    expect((await budgets.account({ installation: 2, repository: 10 })).remaining()).toBe(6_000);
  });

  it("holds a job to its cap across its runs: a retry starts from what the earlier runs spent", async () => {
    const clock = createFakeClock();
    const { budgets, metrics } = await open(join(makeDataDir(), "budgets.json"), clock);
    const recorded: number[] = [];
    const job = (spentTokens: number) => ({ spentTokens, spend: (t: number) => recorded.push(t) });
    const retry = await budgets.account({ installation: 1, repository: 10 }, job(4_000));
    expect(retry.remaining()).toBe(2_000);
    retry.charge(1_500);
    expect(recorded).toEqual([1_500]);
    expect(retry.remaining()).toBe(500);
    const spent = await budgets.account({ installation: 1, repository: 10 }, job(6_000));
    expect(spent.remaining()).toBe(0);
    expect(() => spent.check()).toThrow(/the job's model token budget is spent/);
    expect((await metrics.budgetRefusals.get()).values).toEqual([
      expect.objectContaining({ labels: { scope: "job" }, value: 1 }),
    ]);
  });

  it("refuses with the scope that is spent, counts the refusal, and resets at midnight UTC", async () => {
    const clock = createFakeClock(Date.UTC(2026, 11, 2, 23, 0));
    const { budgets, metrics } = await open(join(makeDataDir(), "budgets.json"), clock);
    const account = await budgets.account({
      installation: 1,
      repository: 10,
      repositoryTokens: 1_000,
    });
    account.charge(1_000);
    expect(() => account.check()).toThrow(BudgetExceededError);
    expect(() => account.check()).toThrow(/repository's model token budget is spent/);
    const refusals = (await metrics.budgetRefusals.get()).values;
    expect(refusals).toEqual([
      expect.objectContaining({ labels: { scope: "repository" }, value: 2 }),
    ]);
    clock.advance(60 * 60_000);
    const tomorrow = await budgets.account({
      installation: 1,
      repository: 10,
      repositoryTokens: 1_000,
    });
    expect(() => tomorrow.check()).not.toThrow();
    expect(tomorrow.remaining()).toBe(1_000);
  });

  it("survives a restart, notices included", async () => {
    const clock = createFakeClock();
    const file = join(makeDataDir(), "budgets.json");
    const first = await open(file, clock);
    const account = await first.budgets.account({ installation: 1, repository: 10 });
    account.charge(9_999);
    expect(await account.takeNotice("7")).toBe(true);
    expect(await account.takeNotice("7")).toBe(false);
    await first.budgets.flush();
    const second = await open(file, clock);
    const again = await second.budgets.account({ installation: 1, repository: 10 });
    expect(again.remaining()).toBe(1);
    expect(await again.takeNotice("7")).toBe(false);
    expect(await again.takeNotice("8")).toBe(true);
  });

  it("counts a damaged file as a spent day, never as a fresh budget", async () => {
    const clock = createFakeClock();
    const file = join(makeDataDir(), "budgets.json");
    writeFileSync(file, '{"day": "2026-11-24", "installations": {"1": 5');
    const { budgets, logs } = await open(file, clock);
    const account = await budgets.account({ installation: 1, repository: 10 });
    expect(account.remaining()).toBe(0);
    expect(logs.text()).toContain("today's budgets count as spent");
    // The notice saves the day's counts, which are zero: the day must stay spent after a restart.
    expect(await account.takeNotice("7")).toBe(true);
    await budgets.flush();
    const restarted = await open(file, clock);
    expect((await restarted.budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(
      0,
    );
    const tomorrow = await open(file, createFakeClock(clock.now() + 24 * 60 * 60_000));
    expect((await tomorrow.budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(
      6_000,
    );
    clock.advance(24 * 60 * 60_000);
    expect((await budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(6_000);
  });

  it("gives a thread's notice again to the comment that took it, and to no other", async () => {
    const clock = createFakeClock();
    const file = join(makeDataDir(), "budgets.json");
    const first = await open(file, clock, 1);
    const account = await first.budgets.account({ installation: 1, repository: 10 });
    expect(await account.takeNotice("7", "501")).toBe(true);
    // The same comment's job, retried because posting the notice failed: it may post it now.
    expect(await account.takeNotice("7", "501")).toBe(true);
    expect(await account.takeNotice("7", "502")).toBe(false);
    expect(await account.takeNotice("7")).toBe(false);
    await first.budgets.flush();
    const second = await open(file, clock, 1);
    const again = await second.budgets.account({ installation: 1, repository: 10 });
    expect(await again.takeNotice("7", "501")).toBe(true);
    expect(await again.takeNotice("7", "503")).toBe(false);
    expect(await again.takeNotice("8", "503")).toBe(true);
    clock.advance(24 * 60 * 60_000);
    expect(await again.takeNotice("7", "502")).toBe(true);
  });
});

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  BudgetExceededError,
  TokenBudgets,
  type BudgetCounts,
  type SharedBudgetCounts,
} from "../../src/agent/token-budgets.js";
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

  it.each([-1_000_000, Number.NaN, Infinity])(
    "refuses a charge of %s, which would give the day back or switch its budget off",
    async (tokens) => {
      const { budgets } = await open(join(makeDataDir(), "budgets.json"), createFakeClock());
      const spender = await budgets.account({ installation: 1, repository: 10 });
      spender.charge(10_000);
      const other = await budgets.account({ installation: 1, repository: 20 });
      expect(() => other.charge(tokens)).toThrow(RangeError);
      const next = await budgets.account({ installation: 1, repository: 30 });
      expect(next.remaining()).toBe(0);
      expect(() => next.check()).toThrow(BudgetExceededError);
    },
  );

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

  it("keeps a spent day spent when the clock steps back across midnight, and across a restart", async () => {
    const clock = createFakeClock(Date.UTC(2026, 11, 3, 0, 0, 5));
    const file = join(makeDataDir(), "budgets.json");
    const { budgets } = await open(file, clock);
    (await budgets.account({ installation: 1, repository: 10 })).charge(10_000);
    // An NTP correction steps the clock back 10 s, to 2026-12-02T23:59:55Z.
    clock.advance(-10_000);
    const during = await budgets.account({ installation: 1, repository: 10 });
    expect(during.remaining()).toBe(0);
    await budgets.flush();
    const restarted = await (
      await open(file, clock)
    ).budgets.account({
      installation: 1,
      repository: 10,
    });
    expect(restarted.remaining()).toBe(0);
    clock.advance(11_000);
    expect((await budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(0);
  });

  it("drops a day far ahead of the clock (a clock stepped far forward, then back), keeping what was spent on it as today's", async () => {
    // A VM resumed with a wrong clock, say. Kept, that far day froze the budgets, and the file
    // too: every model call refused until the calendar caught up (found by a review).
    const DAY = 86_400_000;
    const clock = createFakeClock(Date.UTC(2026, 10, 24, 12));
    const file = join(makeDataDir(), "budgets.json");
    const { budgets, logs } = await open(file, clock, 10_000, 60_000);
    clock.advance(365 * DAY);
    (await budgets.account({ installation: 1, repository: 10 })).charge(100);
    clock.advance(-365 * DAY);
    (await budgets.account({ installation: 1, repository: 10 })).charge(9_900);
    // Spent on the far day, counted today: nothing is given back.
    expect((await budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(0);
    expect(logs.text()).toContain("token budgets: a day ahead of the clock is dropped");
    await budgets.flush();
    // The next day, and after a restart: a fresh budget.
    clock.advance(DAY);
    expect((await budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(10_000);
    const restarted = await open(file, clock, 10_000, 60_000);
    const account = await restarted.budgets.account({ installation: 1, repository: 10 });
    expect(account.remaining()).toBe(10_000);
  });

  it("adds to what today spent before the clock jumped far ahead, and keeps its notices, once corrected", async () => {
    // That day's counts had been dropped at the jump: its budget paid twice, its notices given
    // again (found by a review).
    const DAY = 86_400_000;
    const clock = createFakeClock(Date.UTC(2026, 10, 24, 12));
    const { budgets } = await open(join(makeDataDir(), "budgets.json"), clock, 10_000, 60_000);
    const today = await budgets.account({ installation: 1, repository: 10 });
    today.charge(9_000);
    expect(await today.takeNotice("7")).toBe(true);
    clock.advance(365 * DAY);
    (await budgets.account({ installation: 1, repository: 99 })).charge(100);
    clock.advance(-365 * DAY);
    const corrected = await budgets.account({ installation: 1, repository: 10 });
    expect(corrected.remaining()).toBe(900);
    expect(await corrected.takeNotice("7")).toBe(false);
    expect(await corrected.takeNotice("8")).toBe(true);
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

  // Saved only with the day's first charge or notice, the lost day was not on disk when none
  // came (only automations ran, which take no notice): each restart on a later day, before its
  // first model call, found the damaged file again and refused that day too.
  it("saves the lost day at once, so a restart on a later day has that day's budget", async () => {
    const day = 24 * 60 * 60_000;
    const clock = createFakeClock();
    const file = join(makeDataDir(), "budgets.json");
    writeFileSync(file, "{ not json");
    const damaged = await open(file, clock);
    expect((await damaged.budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(
      0,
    );
    const sameDay = await open(file, clock);
    expect((await sameDay.budgets.account({ installation: 1, repository: 10 })).remaining()).toBe(
      0,
    );
    expect(sameDay.logs.text()).not.toContain("unreadable");
    for (let later = 1; later <= 2; later++) {
      const restarted = await open(file, createFakeClock(clock.now() + later * day));
      const account = await restarted.budgets.account({ installation: 1, repository: 10 });
      expect(account.remaining(), `day ${later}`).toBe(6_000);
    }
  });

  it("keeps one installation's notices from pushing out another's: each gives way only to its own", async () => {
    // One list for all had dropped the oldest: an installation whose budget is spent (its owner
    // may set `budget.daily_tokens: 1`) and whose commands span a thousand threads gave another
    // installation's thread the day's notice a second time (found by a review).
    const file = join(makeDataDir(), "budgets.json");
    const { budgets } = await open(file, createFakeClock(), 10_000, 6_000);
    const victim = await budgets.account({ installation: 1, repository: 10 });
    expect(await victim.takeNotice("7", "100")).toBe(true);
    const flood = await budgets.account({ installation: 2, repository: 20 });
    for (let thread = 1; thread <= 1_500; thread++)
      expect(await flood.takeNotice(String(thread), String(1_000_000 + thread))).toBe(true);
    expect(await victim.takeNotice("7", "101")).toBe(false);
    // Its own oldest gave way (told twice, by its own doing), its newest are kept.
    expect(await flood.takeNotice("1", "2000001")).toBe(true);
    expect(await flood.takeNotice("1500", "2001500")).toBe(false);
    await budgets.flush();
    const saved = JSON.parse(readFileSync(file, "utf8")) as { notices: string[] };
    expect(saved.notices.filter((n) => n.startsWith("2/")).length).toBe(1_000);
    expect(saved.notices).toContain("1/10#7@100");
  });

  it("refuses a notice, and logs it, once the day's notices of every installation are full", async () => {
    const { budgets, logs } = await open(join(makeDataDir(), "budgets.json"), createFakeClock());
    for (let installation = 1; installation <= 10; installation++) {
      const account = await budgets.account({ installation, repository: installation * 10 });
      for (let thread = 1; thread <= 1_000; thread++) await account.takeNotice(String(thread));
    }
    const late = await budgets.account({ installation: 11, repository: 110 });
    expect(await late.takeNotice("1")).toBe(false);
    expect(logs.text()).toContain("over-budget notice not posted: today's notices are full");
    // An installation at its own bound still takes its newest, giving up its oldest.
    const full = await budgets.account({ installation: 3, repository: 30 });
    expect(await full.takeNotice("1001")).toBe(true);
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

/**
 * As Redis serves one connection: commands applied in the order sent, their replies in that order
 * (each a macrotask later).
 */
class OrderedCounts implements SharedBudgetCounts {
  readonly ordered = true;
  readonly counts = new Map<string, number>();
  #replies: Promise<void> = Promise.resolve();
  #reply<T>(value: () => T): Promise<T> {
    const result = this.#replies.then(
      () => new Promise<T>((resolve) => setTimeout(() => resolve(value()), 2)),
    );
    this.#replies = result.then(() => undefined);
    return result;
  }
  spent(day: string, installation: string, repository: string): Promise<BudgetCounts> {
    const snapshot = {
      installation: this.counts.get(`${day}:${installation}`) ?? 0,
      repository: this.counts.get(`${day}:${repository}`) ?? 0,
    };
    return this.#reply(() => snapshot);
  }
  charge(day: string, installation: string, repository: string, tokens: number): Promise<void> {
    for (const key of [`${day}:${installation}`, `${day}:${repository}`])
      this.counts.set(key, (this.counts.get(key) ?? 0) + tokens);
    return this.#reply(() => undefined);
  }
  async takeNotice(): Promise<boolean> {
    return true;
  }
}

async function openShared(shared: SharedBudgetCounts, clock = createFakeClock()) {
  const logs = await captureLogs("warn");
  const budgets = await TokenBudgets.open({
    shared,
    dailyTokens: 10_000,
    jobTokens: 60_000,
    clock,
    log: logs.log,
    metrics: createMetrics(),
  });
  return { budgets, logs };
}

/** Shared counts in memory, as Redis or PostgreSQL keep them; the next `refuse` charges fail. */
class SharedCounts implements SharedBudgetCounts {
  readonly counts = new Map<string, number>();
  refuse = 0;
  /** A read's answer waits for this after its snapshot (PostgreSQL's COMMIT round trip). */
  readGate: Promise<void> | undefined;
  /** How long a charge takes to be stored (ms). */
  chargeDelay = 0;
  async spent(day: string, installation: string, repository: string): Promise<BudgetCounts> {
    const snapshot = {
      installation: this.counts.get(`${day}:${installation}`) ?? 0,
      repository: this.counts.get(`${day}:${repository}`) ?? 0,
    };
    await this.readGate;
    return snapshot;
  }
  async charge(day: string, installation: string, repository: string, tokens: number) {
    if (this.chargeDelay > 0) await new Promise((resolve) => setTimeout(resolve, this.chargeDelay));
    if (this.refuse > 0) {
      this.refuse--;
      // As Redis without its offline queue fails while it is away.
      throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
    }
    for (const key of [`${day}:${installation}`, `${day}:${repository}`])
      this.counts.set(key, (this.counts.get(key) ?? 0) + tokens);
  }
  async takeNotice(): Promise<boolean> {
    return true;
  }
}

describe("token budgets in shared counts", () => {
  it("keeps counting a charge the shared counts refused, and sends it again until they hold it, once", async () => {
    const shared = new SharedCounts();
    const { budgets, logs } = await openShared(shared);
    const scope = { installation: 1, repository: 10 };
    // Refused when charged, when sent again at the flush, and at the next job's start.
    shared.refuse = 3;
    (await budgets.account(scope)).charge(9_500);
    await budgets.flush();
    // The next jobs' accounts read the shared counts, which lack it: it is added to them.
    expect((await budgets.account(scope)).remaining()).toBe(500);
    expect(logs.text()).toContain("tokens spent not counted in the shared budgets yet");
    expect(shared.counts.get(`2026-11-24:1`)).toBeUndefined();
    // The store is back: the charge goes in once, and is counted once.
    expect((await budgets.account(scope)).remaining()).toBe(500);
    expect(shared.counts.get(`2026-11-24:1`)).toBe(9_500);
    expect((await budgets.account(scope)).remaining()).toBe(500);
    expect(shared.counts.get(`2026-11-24:1`)).toBe(9_500);
  });

  it.each([
    ["made before the read and stored during it", true],
    ["made and stored during the read", false],
  ])(
    "counts the instance's own charge %s: it is in neither the counts nor the list after",
    async (_case, before) => {
      // PostgreSQL answers a read after its transaction's COMMIT, a round trip after the
      // snapshot; a charge stored on another connection meanwhile had been forgotten, and every
      // job of the instance saw 10,000 left of the 2,000 there were (found by a review).
      const shared = new SharedCounts();
      shared.chargeDelay = 5;
      const { budgets } = await openShared(shared);
      const first = await budgets.account({ installation: 1, repository: 10 });
      let release!: () => void;
      shared.readGate = new Promise((resolve) => (release = resolve));
      if (before) first.charge(8_000);
      const opening = budgets.account({ installation: 1, repository: 20 });
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (!before) first.charge(8_000);
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(shared.counts.get("2026-11-24:1")).toBe(8_000);
      release();
      const second = await opening;
      expect(second.remaining()).toBe(2_000);
      expect(first.remaining()).toBe(2_000);
      // The next job's read has the charge in the counts, and counts it once.
      shared.readGate = undefined;
      expect((await budgets.account({ installation: 1, repository: 30 })).remaining()).toBe(2_000);
    },
  );

  it("counts a charge in flight as a job reads Redis's counts once: the read, sent after it, holds it", async () => {
    // Added as PostgreSQL's may need, it was counted twice: 6,000 spent read as 12,000.
    const shared = new OrderedCounts();
    const { budgets } = await openShared(shared);
    const first = await budgets.account({ installation: 1, repository: 10 });
    first.charge(6_000);
    const second = await budgets.account({ installation: 1, repository: 20 });
    expect(shared.counts.get("2026-11-24:1")).toBe(6_000);
    expect(second.remaining()).toBe(4_000);
  });

  it("sends again a refused charge of a later day kept after the clock stepped back across midnight", async () => {
    const clock = createFakeClock(Date.UTC(2026, 10, 24, 23, 59, 59));
    const shared = new SharedCounts();
    const { budgets } = await openShared(shared, clock);
    const scope = { installation: 1, repository: 10 };
    const job = await budgets.account(scope);
    clock.advance(2_000); // the 25th, 00:00:01: the counts move to it
    expect(job.remaining()).toBe(10_000);
    clock.advance(-3_000); // an NTP correction: the 24th, 23:59:58; the 25th is kept
    shared.refuse = 1;
    job.charge(5_000);
    await new Promise((resolve) => setTimeout(resolve, 5));
    // The next job sends it again, and counts it.
    expect((await budgets.account(scope)).remaining()).toBe(5_000);
    await budgets.flush();
    expect(shared.counts.get("2026-11-25:1")).toBe(5_000);
  });
});

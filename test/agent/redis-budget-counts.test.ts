import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { RedisBudgetCounts } from "../../src/agent/redis-budget-counts.js";
import { BudgetExceededError, TokenBudgets } from "../../src/agent/token-budgets.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import {
  deleteKeys,
  requireRedis,
  startCuttableProxy,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";
import { captureLogs } from "../helpers/test-app.js";

const available = await requireRedis("the shared budgets' tests");

describe.runIf(available)("token budgets shared through Redis", () => {
  const prefix = `talos-test-${randomUUID()}`;
  const opened: RedisBudgetCounts[] = [];
  afterAll(async () => {
    for (const counts of opened) await counts.close();
    await deleteKeys(prefix);
  });

  /** An instance's budgets: its own TokenBudgets, on the shared counts. */
  async function instance(clock = createFakeClock(Date.UTC(2026, 11, 3, 10))) {
    const shared = await RedisBudgetCounts.open(TEST_REDIS_URL, prefix);
    opened.push(shared);
    const budgets = await TokenBudgets.open({
      shared,
      dailyTokens: 10_000,
      jobTokens: 6_000,
      clock,
      log: (await captureLogs("warn")).log,
      metrics: createMetrics(),
    });
    return budgets;
  }

  it("fails a count Redis takes and never answers, in seconds, rather than holding the job", async () => {
    const proxy = await startCuttableProxy({ host: "127.0.0.1", port: 6379 });
    onTestFinished(() => proxy.close());
    const shared = await RedisBudgetCounts.open(proxy.url, prefix);
    opened.push(shared);
    expect(await shared.spent("2026-12-03", "1", "2")).toEqual({ installation: 0, repository: 0 });
    // A partition with no reset: the job fails and is retried, never run unbudgeted nor held
    // (with its thread and a concurrency slot) until the connection's keepalive gives up.
    proxy.stall();
    await expect(shared.spent("2026-12-03", "1", "2")).rejects.toThrow(/timed out/);
    await expect(shared.charge("2026-12-03", "1", "2", 10, "run-1")).rejects.toThrow(/timed out/);
    await expect(shared.takeNotice("2026-12-03", "1#7")).rejects.toThrow(/timed out/);
  });

  it("counts what every instance spends against one daily budget, and gives one notice per thread", async () => {
    const [a, b] = [await instance(), await instance()];
    const first = await a.account({ installation: 1, repository: 10 });
    first.charge(5_000);
    // A charge reaches the shared counts in the background; flush waits for it, as a shutdown does.
    await a.flush();
    const second = await b.account({ installation: 1, repository: 10 });
    expect(second.remaining()).toBe(5_000);
    second.charge(5_000);
    await b.flush();
    // The installation's day is spent, whichever instance the next job runs on.
    const third = await a.account({ installation: 1, repository: 20 });
    expect(() => third.check()).toThrow(BudgetExceededError);
    expect(await third.takeNotice("7")).toBe(true);
    const fourth = await b.account({ installation: 1, repository: 20 });
    expect(await fourth.takeNotice("7")).toBe(false);
    // Another repository's issue 7 is another thread.
    const otherRepository = await b.account({ installation: 1, repository: 10 });
    expect(await otherRepository.takeNotice("7")).toBe(true);
    // A notice taken by a command's comment stays that comment's on every instance: its job,
    // retried after the post failed, posts it; no other comment's does.
    const claimed = await a.account({ installation: 1, repository: 20 });
    expect(await claimed.takeNotice("8", "501")).toBe(true);
    const retried = await b.account({ installation: 1, repository: 20 });
    expect(await retried.takeNotice("8", "501")).toBe(true);
    expect(await retried.takeNotice("8", "502")).toBe(false);
    expect(await retried.takeNotice("8")).toBe(false);
    expect(await retried.takeNotice("7", "503")).toBe(false);
    // Another installation, and the next day, start afresh.
    expect((await b.account({ installation: 2, repository: 10 })).remaining()).toBe(6_000);
    const tomorrow = await instance(createFakeClock(Date.UTC(2026, 11, 4, 0, 5)));
    expect((await tomorrow.account({ installation: 1, repository: 10 })).remaining()).toBe(6_000);
  });
});

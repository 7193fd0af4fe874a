import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import {
  HOUR_MS,
  MemoryAutomationBudget,
  type AutomationBudget,
} from "../../src/automations/automation-budget.js";
import {
  AutomationBudgetUnavailableError,
  RedisAutomationBudget,
} from "../../src/automations/redis-automation-budget.js";
import type { Clock } from "../../src/clock.js";
import { parseEnv } from "../../src/config.js";
import { createServices } from "../../src/create-services.js";
import { eventually } from "../helpers/eventually.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import {
  deleteKeys,
  requireRedis,
  startCuttableProxy,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";
import { testMarkdownWorkers } from "../helpers/test-markdown-workers.js";

const available = await requireRedis("the shared automation budget's tests");

const REPO = { installation: 1, repository: 10 };
let runs = 0;
/** A run of its own: a job's first try. */
const run = () => `job-${++runs}:new-issue`;

describe.runIf(available)("the hourly automation budget shared through Redis", () => {
  const prefixes: string[] = [];
  const opened: RedisAutomationBudget[] = [];
  const redis = new Redis(TEST_REDIS_URL);
  afterAll(async () => {
    for (const budget of opened) await budget.close();
    for (const prefix of prefixes) await deleteKeys(prefix);
    redis.disconnect();
  });

  /** A prefix of the test's own: the instances given it share their budgets. */
  function freshPrefix(): string {
    const prefix = `talos-test-${randomUUID()}`;
    prefixes.push(prefix);
    return prefix;
  }

  /** One app instance's budget on the shared counts. */
  async function instance(
    prefix: string,
    clock: Clock,
    maxPerInstallationPerHour: number,
    url = TEST_REDIS_URL,
  ) {
    const { log, lines } = await captureLogs("info");
    const budget = await RedisAutomationBudget.open({
      url,
      prefix,
      clock,
      maxPerInstallationPerHour,
      log,
    });
    opened.push(budget);
    return Object.assign(budget, { lines });
  }

  /** Every key the budgets hold under `prefix`, with its number of runs. */
  async function runsByKey(prefix: string): Promise<Record<string, number>> {
    const keys = await redis.keys(`${prefix}:*`);
    const counts = await Promise.all(keys.map((key) => redis.zcard(key)));
    return Object.fromEntries(keys.map((key, i) => [key.slice(prefix.length + 1), counts[i]!]));
  }

  it("lets two instances together take exactly the configured runs an hour, per repository and per installation", async () => {
    const prefix = freshPrefix();
    const clock = createFakeClock();
    const [a, b] = [await instance(prefix, clock, 5), await instance(prefix, clock, 5)];
    // The repository's cap (3), its takes alternating between the instances.
    const repository = [];
    for (let i = 0; i < 5; i++) repository.push(await (i % 2 ? b : a).take(REPO, 3, run()));
    expect(repository).toEqual([true, true, true, false, false]);
    // The installation's cap (5) counts the first repository's 3.
    const other = { installation: 1, repository: 20 };
    const installation = [];
    for (let i = 0; i < 4; i++) installation.push(await (i % 2 ? a : b).take(other, 10, run()));
    expect(installation).toEqual([true, true, false, false]);
    // Another installation has an hour of its own.
    expect(await b.take({ installation: 2, repository: 10 }, 3, run())).toBe(true);
    // Runs refused were added nowhere; runs taken the same millisecond each count.
    expect(await runsByKey(prefix)).toEqual({
      "automation:{1}:installation": 5,
      "automation:{1}:repository:10": 3,
      "automation:{1}:repository:20": 2,
      "automation:{2}:installation": 1,
      "automation:{2}:repository:10": 1,
    });
    // A set is dropped an hour after its last run, when it would be empty anyway.
    const ttl = await redis.pttl(`${prefix}:automation:{1}:repository:10`);
    expect(ttl).toBeGreaterThan(HOUR_MS - 60_000);
    expect(ttl).toBeLessThanOrEqual(HOUR_MS);
  });

  it("never lets takes made at the same moment on two instances pass the cap together", async () => {
    const prefix = freshPrefix();
    const clock = createFakeClock();
    const [a, b] = [await instance(prefix, clock, 10), await instance(prefix, clock, 10)];
    const burst = (scope: typeof REPO) =>
      Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).take(scope, 7, run())));
    expect((await burst(REPO)).filter(Boolean)).toHaveLength(7);
    // The installation has 3 runs left: the second repository gets those, and only those.
    const other = { installation: 1, repository: 20 };
    expect((await burst(other)).filter(Boolean)).toHaveLength(3);
    expect(await runsByKey(prefix)).toEqual({
      "automation:{1}:installation": 10,
      "automation:{1}:repository:10": 7,
      "automation:{1}:repository:20": 3,
    });
  });

  it("fails every take while Redis is away (never allows one, never says spent), says so once per outage, and counts again once it answers", async () => {
    const prefix = freshPrefix();
    const proxy = await startCuttableProxy({ host: "127.0.0.1", port: 6379 });
    onTestFinished(() => proxy.close());
    const clock = createFakeClock();
    const budget = await instance(prefix, clock, 100, proxy.url);
    const warnings = () => budget.lines().filter((l) => l.level === 40);
    expect(await budget.take(REPO, 100, run())).toBe(true);
    // Connections dropped (a take already sent waits out the command timeout).
    proxy.cut();
    for (let i = 0; i < 5; i++)
      await expect(budget.take(REPO, 100, run())).rejects.toThrow(AutomationBudgetUnavailableError);
    expect(warnings().map((l) => l.msg)).toEqual([
      "automation budget: Redis unreachable, automatic work is retried once it answers",
    ]);
    proxy.restore();
    await eventually(
      () => budget.take(REPO, 100, run()).catch(() => false),
      "a take once Redis answers",
    );
    expect(budget.lines().at(-1)?.msg).toBe("automation budget: Redis answers again");
    // Then nothing listens on its port any more: a second outage, told once too.
    await proxy.close();
    for (let i = 0; i < 5; i++)
      await expect(budget.take(REPO, 100, run())).rejects.toThrow(AutomationBudgetUnavailableError);
    expect(warnings()).toHaveLength(2);
  });

  it("refuses to start on a Redis that does not answer (a closed port)", async () => {
    const clock = createFakeClock();
    await expect(instance(freshPrefix(), clock, 100, "redis://127.0.0.1:1")).rejects.toThrow();
  });

  it("is the one createServices makes with REDIS_URL: two instances share it", async () => {
    const prefix = freshPrefix();
    const { log } = await captureLogs("warn");
    const start = () =>
      createServices({
        env: parseEnv({
          TALOS_DATA_DIR: makeDataDir(),
          REDIS_URL: TEST_REDIS_URL,
          TALOS_REDIS_PREFIX: prefix,
          TALOS_AUTOMATION_MAX_PER_HOUR: "3",
        }),
        log,
        model: undefined,
        markdown: testMarkdownWorkers(),
      });
    const [a, b] = [await start(), await start()];
    try {
      const taken = [];
      for (let i = 0; i < 6; i++)
        taken.push(await (i % 2 ? b : a).automationBudget.take(REPO, 100, run()));
      expect(taken).toEqual([true, true, true, false, false, false]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/** What both budgets do alike: run against each, on one instance. */
describe.each([
  ["in memory", false],
  ["in Redis", true],
] as const)("the hourly automation budget %s", (_, inRedis) => {
  const prefix = `talos-test-${randomUUID()}`;
  const opened: RedisAutomationBudget[] = [];
  afterAll(async () => {
    for (const budget of opened) await budget.close();
    if (inRedis && available) await deleteKeys(prefix);
  });

  async function budget(
    clock: Clock,
    maxPerInstallationPerHour: number,
  ): Promise<AutomationBudget> {
    if (!inRedis) return new MemoryAutomationBudget({ clock, maxPerInstallationPerHour });
    const { log } = await captureLogs("warn");
    const shared = await RedisAutomationBudget.open({
      url: TEST_REDIS_URL,
      prefix,
      clock,
      maxPerInstallationPerHour,
      log,
    });
    opened.push(shared);
    return shared;
  }

  it.runIf(!inRedis || available)("slides the hour with the clock", async () => {
    const clock = createFakeClock();
    const hour = await budget(clock, 100);
    expect(await hour.take(REPO, 2, run())).toBe(true);
    clock.advance(30 * 60_000);
    expect(await hour.take(REPO, 2, run())).toBe(true);
    clock.advance(30 * 60_000 - 1);
    expect(await hour.take(REPO, 2, run())).toBe(false);
    // The first run is an hour old: its place is free, and only its.
    clock.advance(1);
    expect(await hour.take(REPO, 2, run())).toBe(true);
    expect(await hour.take(REPO, 2, run())).toBe(false);
    clock.advance(30 * 60_000);
    expect(await hour.take(REPO, 2, run())).toBe(true);
  });

  it.runIf(!inRedis || available)(
    "lets a run taken in the last hour (a job's retry) run again without taking another",
    async () => {
      const clock = createFakeClock();
      const hour = await budget(clock, 2);
      // An installation of its own: the Redis cases share a prefix.
      const REPO = { installation: 3, repository: 10 };
      const other = { installation: 3, repository: 20 };
      expect(await hour.take(REPO, 1, "job-a:new-issue")).toBe(true);
      clock.advance(10 * 60_000);
      // The retry is allowed though the repository's one run is spent, by it; others are not.
      expect(await hour.take(REPO, 1, "job-a:new-issue")).toBe(true);
      expect(await hour.take(REPO, 1, "job-b:new-issue")).toBe(false);
      // It took no second place in the installation's hour (2): one is left, for another repository.
      expect(await hour.take(other, 5, "job-c:new-issue")).toBe(true);
      expect(await hour.take(other, 5, "job-d:new-issue")).toBe(false);
      // The same job's other run is a run of its own.
      expect(await hour.take(REPO, 1, "job-a:review")).toBe(false);
      // An hour after it was taken, a run with its name takes a place again.
      clock.advance(50 * 60_000);
      expect(await hour.take(REPO, 1, "job-a:new-issue")).toBe(true);
      expect(await hour.take(REPO, 1, "job-a:new-issue")).toBe(true);
      expect(await hour.take(REPO, 1, "job-e:new-issue")).toBe(false);
    },
  );
});

import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { describe, expect, it, onTestFinished } from "vitest";
import { RedisAutomationBudget } from "../../src/automations/redis-automation-budget.js";
import { eventually } from "../helpers/eventually.js";
import { createManualClock } from "../helpers/fake-clock.js";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockIssueNow,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import {
  deleteKeys,
  requireRedis,
  startCuttableProxy,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";
import { captureLogs, createTestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const available = await requireRedis("the Redis automation budget's outage test");

const REPO = "/repos/Codertocat/Hello-World";
const HELLO_WORLD = 186853002;

function opened(number: number, title: string) {
  const payload = webhookExample("issues", "opened");
  Object.assign(payload.issue, {
    number,
    title,
    body: "The editor crashes on save.",
    comments: 0,
    html_url: `https://github.com/Codertocat/Hello-World/issues/${number}`,
    created_at: `2026-11-${String(number).padStart(2, "0")}T10:00:00Z`,
  });
  return payload;
}

describe.runIf(available)("a new issue while the Redis automation budget is away", () => {
  it("fails its job, still remembers the issue, and its retry posts the 'possibly related' comment once Redis answers", async () => {
    const target = new URL(TEST_REDIS_URL);
    const proxy = await startCuttableProxy({
      host: target.hostname,
      port: Number(target.port || 6379),
    });
    onTestFinished(() => proxy.close());
    const prefix = `talos-test-${randomUUID()}`;
    onTestFinished(() => deleteKeys(prefix));
    const clock = createManualClock();
    const budgetLogs = await captureLogs("info");
    const redisBudget = await RedisAutomationBudget.open({
      url: proxy.url,
      prefix,
      clock,
      maxPerInstallationPerHour: 100,
      log: budgetLogs.log,
    });
    onTestFinished(() => redisBudget.close());

    const app = await createTestApp({ clock });
    // The app's budget is the Redis one, as createServices makes it with REDIS_URL.
    app.talos.services.automationBudget.take = (scope, max, run) =>
      redisBudget.take(scope, max, run);
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "similar:\n  enabled: true\n" });
    // Issue 12 finds nothing in an empty memory: no comment, one run from the budget.
    const first = opened(12, "Crash when saving a file on Windows");
    mockIssueNow(scope, first.issue);
    await app.probot.receive({ id: "opened-12", name: "issues", payload: first } as never);
    expect(scope.pendingMocks()).toEqual([]);

    // A blip on the budget's connection as issue 14 arrives: nothing is posted (no mock).
    const before = app.logs.lines().length;
    proxy.cut();
    const second = opened(14, "Crash when saving a file on Windows 11");
    mockIssueNow(scope, second.issue);
    await app.probot.receive({ id: "opened-14", name: "issues", payload: second } as never);
    const lines = app.logs.lines().slice(before);
    expect(lines.map((l) => l.msg)).not.toContain("job finished");
    expect(lines.map((l) => l.msg)).not.toContain(
      "automatic work skipped: this hour's automation budget is spent",
    );
    const failed = lines.filter((l) => l.msg === "job failed; will retry");
    expect(failed.map((l) => (l.err as { message?: string }).message)).toEqual([
      expect.stringContaining("the automation budget cannot be read"),
    ]);
    expect(budgetLogs.lines().map((l) => l.msg)).toEqual([
      "automation budget: Redis unreachable, automatic work is retried once it answers",
    ]);
    const [waiting] = app.talos.services.journal!.list();
    expect(waiting).toMatchObject({ id: "opened-14", attempts: 1 });
    // The issue is remembered all the same (its retry adds it again, which changes nothing).
    const memory = await app.talos.memory.open({
      installation: 2,
      repository: HELLO_WORLD,
      name: "Codertocat/Hello-World",
    });
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-12", "issue-14"]);

    // Redis answers again (a take for another repository shows it); the job's retry does the work.
    proxy.restore();
    const probe = { installation: 99, repository: 99 };
    await eventually(
      () => redisBudget.take(probe, 100, "probe").catch(() => false),
      "a take once Redis answers",
    );
    // The retry reads issue 14 again; #12 is named from the cache, which its own job's read
    // filled.
    mockIssueNow(scope, second.issue);
    mockAppIdentity(scope);
    scope.get(`${REPO}/issues/14/comments`).query({ per_page: "100" }).reply(200, []);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/14/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(201, { id: 1401, body: "" });
    await clock.advance(waiting!.retryAt! - clock.now());
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("**Possibly related**: #12");
    expect(app.talos.services.journal!.list()).toEqual([]);
    // One run for each issue's job: the failed take counted nothing.
    const redis = new Redis(TEST_REDIS_URL);
    onTestFinished(() => redis.disconnect());
    expect(await redis.zrange(`${prefix}:automation:{2}:repository:${HELLO_WORLD}`, 0, -1)).toEqual(
      ["opened-12:new-issue", "opened-14:new-issue"],
    );
  }, 30_000);
});

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { BackfillQueueFile } from "../../src/memory/backfill-queue-file.js";
import { BackfillRunner } from "../../src/memory/backfill-runner.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { listedIssue } from "../helpers/listed-issue.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";

/** acme/widgets (id 2) in installation 7, as an installation_repositories.added names it. */
const WIDGETS = { installation: 7, repository: 2, name: "acme/widgets" };
const WIDGETS_REPOSITORY = {
  id: 2,
  name: "widgets",
  full_name: "acme/widgets",
  owner: { login: "acme" },
  created_at: "2020-01-01T00:00:00Z",
};
const RETRY = { attempts: 3, baseMs: 1_000, maxMs: 4_000 };

const badGateway = () => Object.assign(new Error("Bad Gateway"), { status: 502 });

/**
 * A client of acme/widgets (no `.github/talos.yml`, two issues) whose `GET /repos/acme/widgets`
 * fails with a 502 the first `failures` times it is asked.
 */
function flakyClient(failures: number) {
  const asked = { repository: 0, issues: [] as number[] };
  const octokit = {
    config: { get: async () => ({ files: [] }) },
    rest: {
      repos: {
        get: async () => {
          if (asked.repository++ < failures) throw badGateway();
          return { data: WIDGETS_REPOSITORY };
        },
      },
      issues: {
        listForRepo: async ({ page }: { page: number }) => {
          asked.issues.push(page);
          return { data: page === 1 ? [listedIssue(5), listedIssue(4)] : [], headers: {} };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, asked };
}

async function recordIds(memory: ReturnType<typeof createTestRegistry>) {
  if ((await memory.list()).length === 0) return [];
  return (await (await memory.open(WIDGETS)).list()).map((record) => record.id).sort();
}

describe("a backfill GitHub fails before it has saved any progress", () => {
  it("is tried again with backoff while the process runs, when GitHub fails to say what the repository is (502)", async () => {
    const memory = createTestRegistry(makeDataDir());
    const { octokit, asked } = flakyClient(1);
    const clock = createFakeClock();
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
      retry: RETRY,
    });

    runner.enqueue(WIDGETS);
    await runner.idle();
    await runner.close();

    expect(asked.repository).toBe(2);
    expect(clock.sleeps).toEqual([1_000]);
    expect(await recordIds(memory)).toEqual(["issue-4", "issue-5"]);
    expect(await memory.readBackfillState(WIDGETS)).toMatchObject({ status: "done", indexed: 2 });
    await memory.closeAll();
  });

  it("stays in the queue's file after its last try, and the next start runs it", async () => {
    const memory = createTestRegistry(makeDataDir());
    const file = join(makeDataDir(), "backfill-queue.json");
    const log = pino({ level: "silent" });
    const down = flakyClient(Infinity);
    const first = new BackfillRunner({
      memory,
      auth: async () => down.octokit,
      max: 1_000,
      clock: createFakeClock(),
      log,
      retry: RETRY,
      queue: new BackfillQueueFile(file, log),
    });
    first.enqueue(WIDGETS);
    await first.idle();
    await first.close();

    // Nothing was read, and nothing on disk says a backfill is owed but the queue's file.
    expect(down.asked.issues).toEqual([]);
    expect(await memory.readBackfillState(WIDGETS)).toBeUndefined();
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([WIDGETS]);

    const up = flakyClient(0);
    const next = new BackfillRunner({
      memory,
      auth: async () => up.octokit,
      max: 1_000,
      clock: createFakeClock(),
      log,
      retry: RETRY,
      queue: new BackfillQueueFile(file, log),
    });
    await next.resume();
    await next.idle();
    await next.close();

    expect(await recordIds(memory)).toEqual(["issue-4", "issue-5"]);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual([]);
    await memory.closeAll();
  });
});

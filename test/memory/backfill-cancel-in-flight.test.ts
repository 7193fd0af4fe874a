import { existsSync } from "node:fs";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { BackfillRunner } from "../../src/memory/backfill-runner.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";
import { listedIssue } from "../helpers/listed-issue.js";

const WIDGETS = { installation: 7, repository: 2, name: "acme/widgets" };

describe("BackfillRunner.cancel while a page is in flight (its repository removed)", () => {
  it("writes nothing into the deleted memory, neither records nor backfill.json", async () => {
    const memory = createTestRegistry(makeDataDir());
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inFlight = false;
    const octokit = {
      config: { get: async () => ({ files: [] }) },
      rest: {
        repos: {
          get: async () => ({
            data: { id: 2, name: "widgets", full_name: "acme/widgets", owner: { login: "acme" } },
          }),
        },
        issues: {
          listForRepo: async ({ page }: { page: number }) => {
            if (page === 2) {
              inFlight = true;
              await held;
            }
            const data = Array.from({ length: 100 }, (_, i) =>
              listedIssue(1_000 - (page - 1) * 100 - i),
            );
            return { data, headers: {} };
          },
        },
      },
    } as unknown as Octokit;
    const runner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
    });
    runner.enqueue(WIDGETS);
    while (!inFlight) await new Promise((r) => setTimeout(r, 5));
    const directory = memory.directoryOf(WIDGETS);
    // repository.deleted: cancel, then delete (handle-repository-changed.ts forget()).
    const forgetting = runner.cancel(WIDGETS).then(() => memory.delete(WIDGETS));
    setTimeout(release, 20);
    await forgetting;
    await runner.idle();
    expect(existsSync(directory)).toBe(false);
    await expect(memory.open(WIDGETS)).rejects.toThrow();
    await runner.close();
    await memory.closeAll();
  });
});

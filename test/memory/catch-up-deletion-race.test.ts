import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { BackfillRunner } from "../../src/memory/backfill-runner.js";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";

/** Added to installation 7 while Talos was down: no memory of it yet. */
const FRESH = { installation: 7, repository: 3, name: "acme/fresh" };

const notFound = () => Object.assign(new Error("Not Found"), { status: 404 });

describe("the start's catch-up and a repository deleted while it lists the installations", () => {
  it("does not readmit the memory of a repository whose repository.deleted ran during the listing", async () => {
    const memory = createTestRegistry(makeDataDir());
    const asked: string[] = [];
    // The repository is gone from GitHub by the time anything reads it.
    const octokit = {
      paginate: async () => [],
      config: { get: async () => ({ files: [] }) },
      rest: {
        apps: { listReposAccessibleToInstallation: async () => ({ data: [] }) },
        repos: {
          get: async ({ owner, repo }: { owner: string; repo: string }) => {
            asked.push(`${owner}/${repo}`);
            throw notFound();
          },
        },
        issues: { listForRepo: async () => ({ data: [], headers: {} }) },
      },
    } as unknown as Octokit;
    const runner: BackfillRunner = new BackfillRunner({
      memory,
      auth: async () => octokit,
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
      installed: async () => {
        // GitHub listed acme/fresh as installation 7's; then, before the listing of every
        // installation was done, acme/fresh was deleted and its repository.deleted handled, as
        // handle-repository-changed.ts does.
        const listed = { installations: [7], read: [7], repositories: [FRESH] };
        await runner.cancel(FRESH);
        await memory.delete(FRESH);
        return listed;
      },
    });

    await runner.catchUp("2026-11-20T00:00:00.000Z");
    await runner.idle();
    await runner.close();

    // Still refused: a job journaled before the deletion and run now writes nothing back.
    await expect(memory.open(FRESH)).rejects.toThrow(MemoryDeletedError);
    expect(asked).toEqual([]);
    await memory.closeAll();
  });
});

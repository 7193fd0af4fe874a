import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { backfillProgressIn, backfillRepository } from "../../src/memory/backfill-repository.js";
import type { MemoryStore } from "../../src/memory/memory-store.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { openTestStore } from "../helpers/test-memory.js";
import { listedIssue } from "../helpers/listed-issue.js";

const run = (octokit: Octokit, memory: Pick<MemoryStore, "add" | "addMany">, directory: string) =>
  backfillRepository({
    octokit,
    repo: { owner: "acme", repo: "widgets" },
    memory,
    progress: backfillProgressIn(directory),
    max: 1_000,
    clock: createFakeClock(),
    log: pino({ level: "silent" }),
  });

describe("backfillRepository and an item it cannot store: left out, never failing its page", () => {
  it.each([
    ["a null body and user", { body: null, user: null }],
    ["null labels", { labels: null }],
    ["a null title", { title: null }],
    [
      "a lone surrogate and NUL in the text",
      { title: "bad \ud800 title \u0000", body: "x\udfff\u0000y" },
    ],
    ["a huge body", { body: "word ".repeat(400_000) }],
    ["no created_at", { created_at: undefined }],
  ])("%s", async (_label, changes) => {
    const directory = makeDataDir();
    const store = await openTestStore(directory);
    try {
      const octokit = {
        rest: {
          issues: {
            listForRepo: async ({ page }: { page: number }) => {
              if (page > 1) return { data: [], headers: {} };
              const data = [3, 2, 1].map((number) =>
                listedIssue(number, number === 2 ? changes : {}),
              );
              return { data, headers: {} };
            },
          },
        },
      } as unknown as Octokit;
      const state = await run(octokit, store, directory);
      expect(state.status).toBe("done");
      expect(state.indexed + (state.skipped ?? 0)).toBe(3);
      expect(await store.get("issue-1")).toBeDefined();
      expect(await store.get("issue-3")).toBeDefined();
    } finally {
      await store.close();
    }
  });
});

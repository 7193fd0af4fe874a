import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { backfillRepository, readBackfillState } from "../../src/memory/backfill-repository.js";
import type { VectraMemoryStore } from "../../src/memory/vectra-memory-store.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { openTestStore } from "../helpers/test-memory.js";

interface Page {
  count: number;
  headers?: Record<string, string>;
}

/** A client whose issue listing serves scripted pages, recording the pages asked for. */
function fakeOctokit(pages: Page[]) {
  const asked: number[] = [];
  let next = 0;
  const octokit = {
    rest: {
      issues: {
        listForRepo: async ({ page }: { page: number }) => {
          asked.push(page);
          const { count, headers = {} } = pages[next++] ?? { count: 0 };
          const data = Array.from({ length: count }, (_, i) => {
            const number = 1_000 - (page - 1) * 100 - i;
            return {
              number,
              title: `Issue ${number}`,
              body: "",
              state: "open",
              user: { login: "octocat" },
              labels: [],
              html_url: `https://github.com/acme/widgets/issues/${number}`,
              created_at: "2026-10-01T00:00:00Z",
            };
          });
          return { data, headers };
        },
      },
    },
  };
  return { octokit: octokit as unknown as Octokit, asked };
}

describe("backfillRepository", () => {
  let store: VectraMemoryStore | undefined;
  afterEach(() => store?.close());

  it("pauses until the reset when the installation's rate limit runs low, then goes on", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    const clock = createFakeClock();
    const reset = Math.floor(clock.now() / 1000) + 600;
    const { octokit, asked } = fakeOctokit([
      { count: 100, headers: { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4000" } },
      {
        count: 100,
        headers: {
          "x-ratelimit-limit": "5000",
          "x-ratelimit-remaining": "300",
          "x-ratelimit-reset": String(reset),
        },
      },
      { count: 20 },
    ]);
    const progress: number[] = [];

    const state = await backfillRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      directory,
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
      onProgress: (indexed) => progress.push(indexed),
    });

    expect(asked).toEqual([1, 2, 3]);
    // Under 10% left after page 2: wait for the reset (and a second more), nothing sooner.
    expect(clock.sleeps).toEqual([601_000]);
    expect(progress).toEqual([100, 200, 220]);
    expect(state).toEqual({ status: "done", repo: "acme/widgets", page: 4, indexed: 220 });
    expect(await readBackfillState(directory)).toEqual(state);
    expect(store.list()).toHaveLength(220);
  });

  it("stops between pages when told to, leaving progress to resume from", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    const stop = new AbortController();
    const { octokit, asked } = fakeOctokit([{ count: 100 }, { count: 100 }]);

    const state = await backfillRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      directory,
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
      onProgress: () => stop.abort(),
      signal: stop.signal,
    });

    expect(asked).toEqual([1]);
    expect(state).toMatchObject({ status: "running", page: 2, indexed: 100 });
  });

  it("names the progress file when it is damaged", async () => {
    const directory = makeDataDir();
    await writeFile(join(directory, "backfill.json"), "{ not json");

    await expect(readBackfillState(directory)).rejects.toThrow(/backfill\.json is damaged/);
  });
});

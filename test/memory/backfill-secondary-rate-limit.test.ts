import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import {
  backfillProgressIn,
  backfillRepository,
  readBackfillState,
} from "../../src/memory/backfill-repository.js";
import { catchUpRepository } from "../../src/memory/catch-up-repository.js";
import type { VectraMemoryStore } from "../../src/memory/vectra-memory-store.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { listedIssue } from "../helpers/listed-issue.js";
import { makeDataDir } from "../helpers/test-app.js";
import { openTestStore } from "../helpers/test-memory.js";

/**
 * GitHub's answer to a request past a secondary rate limit, as Octokit throws it once its
 * throttling gives up (its retries spent, or a wait over TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS):
 * a 403 with neither `retry-after` nor a spent primary limit. GitHub's advice then is to wait at
 * least a minute: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit
 */
const secondaryLimit = () =>
  Object.assign(
    new Error(
      "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    ),
    {
      status: 403,
      response: {
        headers: { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4200" },
      },
    },
  );

/** An issues listing answering a secondary rate limit once, then page 1 (`count` issues). */
function limitedOnce(count: number) {
  const asked: number[] = [];
  let limited = false;
  const octokit = {
    rest: {
      issues: {
        listForRepo: async ({ page }: { page: number }) => {
          asked.push(page);
          if (!limited) {
            limited = true;
            throw secondaryLimit();
          }
          const data =
            page === 1 ? Array.from({ length: count }, (_, i) => listedIssue(100 - i)) : [];
          return { data, headers: {} };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, asked };
}

describe("a secondary rate limit GitHub answers without retry-after", () => {
  let store: VectraMemoryStore | undefined;
  afterEach(() => store?.close());

  it("is waited out (a minute) by a backfill, which then goes on, rather than giving up at once", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    const clock = createFakeClock();
    const { octokit, asked } = limitedOnce(3);

    const state = await backfillRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      progress: backfillProgressIn(directory),
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
    });

    expect(asked).toEqual([1, 1]);
    expect(clock.sleeps).toEqual([60_000]);
    expect(state).toMatchObject({ status: "done", indexed: 3 });
    expect(await readBackfillState(directory)).toMatchObject({ status: "done", indexed: 3 });
    expect(await store.list()).toHaveLength(3);
  });

  it("is waited out (a minute) by a catch-up, which then goes on", async () => {
    store = await openTestStore(makeDataDir());
    const clock = createFakeClock();
    const { octokit, asked } = limitedOnce(2);

    const result = await catchUpRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      since: "2026-11-20T00:00:00.000Z",
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
    });

    expect(asked).toEqual([1, 1]);
    expect(clock.sleeps).toEqual([60_000]);
    expect(result).toMatchObject({ status: "done", stored: 2 });
  });
});

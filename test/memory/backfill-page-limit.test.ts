import { RequestError } from "@octokit/request-error";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import {
  backfillRepository,
  type BackfillProgress,
  type BackfillState,
} from "../../src/memory/backfill-repository.js";
import { catchUpRepository } from "../../src/memory/catch-up-repository.js";
import type { MemoryInput, MemoryRecord } from "../../src/memory/memory-store.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { listedIssue } from "../helpers/listed-issue.js";

/*
 * GitHub's issues listing refuses page-number pagination past 99 pages of 100: page 100 (and
 * after) is answered `422 Pagination with the page parameter is not supported for large
 * datasets, please use cursor based pagination (after/before)` (e.g. longhorn/longhorn#10862).
 * An operator may ask for far more than 9,900 items (`TALOS_BACKFILL_MAX`, `talos backfill
 * --max`); the 422 had failed the backfill, at every start again, and the catch-up likewise.
 */

const TOTAL = 12_000;
const DEEP_PAGE_MESSAGE =
  "Pagination with the page parameter is not supported for large datasets, please use cursor based pagination (after/before)";

/** GitHub's answer to a page past the 99th. */
function deepPageRefusal(page: number) {
  return new RequestError(DEEP_PAGE_MESSAGE, 422, {
    request: {
      method: "GET",
      url: `https://api.github.com/repos/acme/widgets/issues?per_page=100&page=${page}`,
      headers: {},
    },
    response: {
      status: 422,
      url: `https://api.github.com/repos/acme/widgets/issues?per_page=100&page=${page}`,
      headers: {},
      data: { message: DEEP_PAGE_MESSAGE, status: "422" },
    },
  });
}

/** A repository of TOTAL issues whose listing behaves as GitHub's does past page 99. */
function bigRepository() {
  const asked: number[] = [];
  const start = Date.UTC(2020, 0, 1);
  const octokit = {
    rest: {
      issues: {
        listForRepo: async ({ page = 1 }: { page?: number }) => {
          asked.push(page);
          if (page >= 100) throw deepPageRefusal(page);
          const data = [];
          for (let i = 0; i < 100; i++) {
            const number = TOTAL - (page - 1) * 100 - i;
            if (number < 1) break;
            const at = new Date(start + number * 60_000).toISOString();
            data.push(listedIssue(number, { created_at: at, updated_at: at }));
          }
          return { data, headers: {} };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, asked };
}

/** A memory that only counts what it is given (the store itself is not what is under test). */
function countingMemory() {
  const ids = new Set<string>();
  const put = (input: MemoryInput) => {
    ids.add(input.id);
    return input as MemoryRecord;
  };
  return {
    ids,
    memory: {
      add: async (input: MemoryInput) => put(input),
      addMany: async (inputs: MemoryInput[]) => inputs.map(put),
    },
  };
}

function progressInRam(): BackfillProgress & { state(): BackfillState | undefined } {
  let saved: BackfillState | undefined;
  return {
    readBackfillState: async () => (saved ? structuredClone(saved) : undefined),
    saveBackfillState: async (state) => void (saved = structuredClone(state)),
    state: () => saved,
  };
}

describe("the last page GitHub lists by number (99)", () => {
  it("a backfill asked for more than 9,900 items does not end failed, to fail again at every start", async () => {
    // What page numbers reach is read, and the backfill ends `done`: `failed`, it was queued
    // again at every start, to read page 99 again and fail on page 100 again.
    const { octokit, asked } = bigRepository();
    const { memory, ids } = countingMemory();
    const progress = progressInRam();
    const run = () =>
      backfillRepository({
        octokit,
        repo: { owner: "acme", repo: "widgets" },
        memory,
        progress,
        max: 50_000,
        clock: createFakeClock(),
        log: pino({ level: "silent" }),
      });

    const first = await run().then(
      (state) => state,
      (error: unknown) => error,
    );
    expect(ids.size).toBe(9_900);
    expect(first).not.toBeInstanceOf(Error);
    expect(progress.state()?.status).not.toBe("failed");

    // A restart: nothing is asked of page 100 again.
    asked.length = 0;
    await run().catch(() => undefined);
    expect(asked.filter((page) => page >= 100)).toEqual([]);
  });

  it("a catch-up of more than 9,900 updated items ends capped instead of throwing", async () => {
    // A catch-up (after a long outage, or `talos backfill --since … --max 50000`) that reaches
    // the last page stores what it read and ends capped, so the repository counts as caught up:
    // throwing, it was caught up again at every start, and failed again.
    const { octokit } = bigRepository();
    const { memory, ids } = countingMemory();
    const result = await catchUpRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory,
      since: "2019-01-01T00:00:00.000Z",
      max: 50_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
    }).then(
      (value) => value,
      (error: unknown) => error,
    );
    expect(ids.size).toBe(9_900);
    expect(result).not.toBeInstanceOf(Error);
    expect(result).toMatchObject({ status: "done", capped: true });
  });
});

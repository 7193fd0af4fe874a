import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import {
  backfillProgressIn,
  backfillRepository,
  hasNextPage,
} from "../../src/memory/backfill-repository.js";
import type { MemoryInput, MemoryStore } from "../../src/memory/memory-store.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { listedIssue, listingLinkOf } from "../helpers/listed-issue.js";

/** A memory that only records what was added. */
function recordingMemory() {
  const ids = new Set<string>();
  const memory: Pick<MemoryStore, "add" | "addMany"> = {
    add: async (input: MemoryInput) => {
      ids.add(input.id);
      return input;
    },
    addMany: async (inputs: MemoryInput[]) => {
      for (const input of inputs) ids.add(input.id);
      return inputs;
    },
  };
  return { memory, ids };
}

/** Issue `number` as listed: opened `number` minutes after 2026 began, so newest first sorts. */
const issueOf = (number: number) =>
  listedIssue(number, {
    created_at: new Date(Date.UTC(2026, 0, 1) + number * 60_000).toISOString(),
  });

const linkOf = (page: number, last: number) => listingLinkOf(page, last, "created");

/**
 * GitHub's issues listing of `numbers` (newest first), 100 a page, recording the pages asked;
 * `onPage` runs before a page is answered, `headersOf` gives its headers.
 */
function listing(
  numbers: number[],
  {
    onPage = () => undefined,
    headersOf = () => ({}),
    hidden = new Set<number>(),
  }: {
    onPage?: (page: number) => void;
    headersOf?: (page: number) => Record<string, string>;
    hidden?: Set<number>;
  } = {},
) {
  const asked: number[] = [];
  const octokit = {
    rest: {
      issues: {
        listForRepo: async ({ page }: { page: number }) => {
          asked.push(page);
          onPage(page);
          const data = numbers
            .slice((page - 1) * 100, page * 100)
            .filter((number) => !hidden.has(number))
            .map(issueOf);
          return { data, headers: headersOf(page) };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, asked };
}

const run = (octokit: Octokit, memory: Pick<MemoryStore, "add" | "addMany">) =>
  backfillRepository({
    octokit,
    repo: { owner: "acme", repo: "widgets" },
    memory,
    progress: backfillProgressIn(makeDataDir()),
    max: 1_000,
    clock: createFakeClock(),
    log: pino({ level: "silent" }),
  });

describe("backfillRepository while the listing changes between two pages", () => {
  it("stores every issue still there when an issue it read is deleted between two pages", async () => {
    // 250 issues, 250..1, newest first. Page 1 holds 250..151.
    const numbers = Array.from({ length: 250 }, (_, i) => 250 - i);
    const { octokit, asked } = listing(numbers, {
      onPage: (page) => {
        // Issue 240 (read on page 1) deleted (spam, transferred away) as page 2 is asked for:
        // issue 150 moves from page 2's first slot to page 1's last.
        if (page === 2 && numbers.includes(240)) numbers.splice(numbers.indexOf(240), 1);
      },
    });
    const { memory, ids } = recordingMemory();

    const state = await run(octokit, memory);

    // Each page after the first is followed by the page before it again, where 150 is now.
    expect(asked).toEqual([1, 2, 1, 3, 2]);
    expect(state).toMatchObject({ status: "done", indexed: 250 });
    // Every issue still in the repository is remembered; 240 was stored before its deletion.
    expect(numbers.filter((n) => !ids.has(`issue-${n}`))).toEqual([]);
  });

  it("stores what more deletions than a page holds pulled back, reading back to where it stopped", async () => {
    const numbers = Array.from({ length: 350 }, (_, i) => 350 - i);
    const { octokit, asked } = listing(numbers, {
      onPage: (page) => {
        // 120 issues page 1 and 2 held (250 to 131) deleted as page 3 is asked for: page 3 now
        // holds 30 to 1, and 150 to 31 it has not read are on pages 1 and 2.
        if (page === 3 && numbers.includes(250)) numbers.splice(numbers.indexOf(250), 120);
      },
    });
    const { memory, ids } = recordingMemory();

    const state = await run(octokit, memory);

    // Page 2 again starts with an issue not read (130): page 1 again too.
    expect(asked).toEqual([1, 2, 1, 3, 2, 1]);
    expect(state).toMatchObject({ status: "done" });
    expect(numbers.filter((n) => !ids.has(`issue-${n}`))).toEqual([]);
  });

  it("does not read the page before again when the page starts with an issue it read (issues opened meanwhile pushed it along)", async () => {
    const numbers = Array.from({ length: 150 }, (_, i) => 150 - i);
    const { octokit, asked } = listing(numbers, {
      onPage: (page) => {
        if (page === 2 && !numbers.includes(151)) numbers.unshift(155, 154, 153, 152, 151);
      },
    });
    const { memory, ids } = recordingMemory();

    const state = await run(octokit, memory);

    // Page 2 starts with 55, read on page 1: nothing unread can be before it.
    expect(asked).toEqual([1, 2]);
    expect(state).toMatchObject({ status: "done", indexed: 150 });
    expect(ids.size).toBe(150);
  });
});

describe("backfillRepository and the end of the listing", () => {
  it("reads on when GitHub answers a page shorter than per_page but links a next page", async () => {
    // Page 1 comes back with 99 items (GitHub hides an item after paging, e.g. a spam
    // account's), yet its `link` header names page 2: the listing goes on.
    const numbers = Array.from({ length: 250 }, (_, i) => 250 - i);
    const { octokit, asked } = listing(numbers, {
      hidden: new Set([200]),
      headersOf: (page) => linkOf(page, 3),
    });
    const { memory, ids } = recordingMemory();

    const state = await run(octokit, memory);

    expect(asked).toEqual([1, 2, 1, 3, 2]);
    expect(state).toMatchObject({ status: "done", indexed: 249 });
    expect(ids.size).toBe(249);
  });

  it("ends at a full page that links no next page, without asking for an empty one", async () => {
    const numbers = Array.from({ length: 200 }, (_, i) => 200 - i);
    const { octokit, asked } = listing(numbers, { headersOf: (page) => linkOf(page, 2) });
    const { memory, ids } = recordingMemory();

    const state = await run(octokit, memory);

    // By count alone, a full page 2 was followed by an empty page 3.
    expect(asked).toEqual([1, 2, 1]);
    expect(state).toMatchObject({ status: "done", page: 3, indexed: 200 });
    expect(ids.size).toBe(200);
  });

  it("goes by the count when GitHub sends no link header (a listing of one page)", async () => {
    const { octokit, asked } = listing([3, 2, 1]);
    const state = await run(octokit, recordingMemory().memory);
    expect(asked).toEqual([1]);
    expect(state).toMatchObject({ status: "done", indexed: 3 });
  });
});

describe("hasNextPage", () => {
  const url = "<https://api.github.com/repositories/2/issues?per_page=100&page=3>";

  it.each([
    ["GitHub's, with next", `${url}; rel="prev", ${url}; rel="next", ${url}; rel="last"`, true],
    ["GitHub's last page", `${url}; rel="prev", ${url}; rel="first"`, false],
    ["an unquoted rel", `${url}; rel=next`, true],
    ["next among several rels", `${url}; rel="next last"`, true],
    ["another parameter first", `${url}; title="x"; REL="Next"`, true],
    ["a rel that only starts with next", `${url}; rel="nextish"`, false],
    ["no rel", `${url}; title="next"`, false],
    ["an unclosed link", `<https://api.github.com/x; rel="next"`, false],
  ])("%s", (_label, link, more) => {
    // The count says the opposite each time: the header decides.
    expect(hasNextPage({ link }, more ? 10 : 100)).toBe(more);
  });

  it("goes by the count without a link header, or with one too long to be GitHub's", () => {
    expect(hasNextPage({}, 100)).toBe(true);
    expect(hasNextPage({}, 99)).toBe(false);
    expect(hasNextPage({ link: "" }, 99)).toBe(false);
    const long = `${url}; rel="prev", `.repeat(200) + `${url}; rel="next"`;
    expect(hasNextPage({ link: long }, 40)).toBe(false);
  });

  it("reads a long hostile header in linear time", () => {
    const hostile = "<".repeat(4_000) + ">;".repeat(40);
    const started = performance.now();
    expect(hasNextPage({ link: hostile }, 0)).toBe(false);
    expect(performance.now() - started).toBeLessThan(100);
  });
});

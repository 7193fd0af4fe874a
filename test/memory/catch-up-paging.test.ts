import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { catchUpRepository } from "../../src/memory/catch-up-repository.js";
import type { MemoryInput, MemoryStore } from "../../src/memory/memory-store.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { listedIssue, listingLinkOf } from "../helpers/listed-issue.js";

const SINCE = "2026-11-20T00:00:00.000Z";
/** The fake clock's start: the catch-up begins then. */
const START = Date.UTC(2026, 10, 24, 12);

/** A memory that records each item added, by id, with the text it was last given. */
function recordingMemory() {
  const texts = new Map<string, string>();
  const memory: Pick<MemoryStore, "add" | "addMany"> = {
    add: async (input: MemoryInput) => {
      texts.set(input.id, input.text);
      return input;
    },
    addMany: async (inputs: MemoryInput[]) => {
      for (const input of inputs) texts.set(input.id, input.text);
      return inputs;
    },
  };
  return { memory, texts };
}

interface Issue {
  number: number;
  updatedAt: number;
  title: string;
}

/** Issues `count` down to 1, issue n updated n minutes after SINCE (the highest most recently). */
const issues = (count: number): Issue[] =>
  Array.from({ length: count }, (_, i) => {
    const number = count - i;
    return { number, updatedAt: Date.parse(SINCE) + number * 60_000, title: `Issue ${number}` };
  });

const linkOf = (page: number, last: number) => listingLinkOf(page, last, "updated");

/**
 * GitHub's issues listing of `all` updated at or after the `since` asked, most recently updated
 * first, 100 a page, with GitHub's `link` header; records each request as `page` (or
 * `page@since` for another `since`). `onPage` runs before a page is answered; `hidden` items are
 * left out of their page after paging (GitHub hides a spam account's items so).
 */
function listing(
  all: Issue[],
  {
    onPage = () => undefined,
    hidden = new Set<number>(),
    linked = true,
  }: { onPage?: (page: number) => void; hidden?: Set<number>; linked?: boolean } = {},
) {
  const asked: string[] = [];
  const octokit = {
    rest: {
      issues: {
        listForRepo: async ({ page, since }: { page: number; since: string }) => {
          asked.push(since === SINCE ? String(page) : `${page}@${since}`);
          onPage(page);
          const listed = all
            .filter((issue) => issue.updatedAt >= Date.parse(since))
            .sort((a, b) => b.updatedAt - a.updatedAt || b.number - a.number);
          const last = Math.max(1, Math.ceil(listed.length / 100));
          const data = listed
            .slice((page - 1) * 100, page * 100)
            .filter((issue) => !hidden.has(issue.number))
            .map((issue) =>
              listedIssue(issue.number, {
                title: issue.title,
                updated_at: new Date(issue.updatedAt).toISOString(),
              }),
            );
          return { data, headers: linked ? linkOf(page, last) : {} };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, asked };
}

const catchUp = (octokit: Octokit, memory: Pick<MemoryStore, "add" | "addMany">) =>
  catchUpRepository({
    octokit,
    repo: { owner: "acme", repo: "widgets" },
    memory,
    since: SINCE,
    max: 10_000,
    clock: createFakeClock(START),
    log: pino({ level: "silent" }),
  });

/** What a listing of more than one page is followed by: what was updated since it began. */
const FOLLOW_UP = "1@2026-11-24T11:50:00.000Z";

const missing = (all: Issue[], texts: Map<string, string>) =>
  all.filter((issue) => !texts.has(`issue-${issue.number}`)).map((issue) => issue.number);

describe("catchUpRepository and the end of the listing", () => {
  it("reads on when GitHub answers a page shorter than per_page but links a next page", async () => {
    const all = issues(250);
    // Page 1 comes back with 99 items (GitHub hides one after paging), yet links page 2.
    const { octokit, asked } = listing(all, { hidden: new Set([200]) });
    const { memory, texts } = recordingMemory();

    const result = await catchUp(octokit, memory);

    expect(missing(all, texts)).toEqual([200]);
    expect(result).toMatchObject({ status: "done", capped: false, read: 249 });
    expect(asked).toEqual(["1", "2", "1", "3", "2", FOLLOW_UP]);
  });

  it("ends at a full page that links no next page, without asking for an empty one", async () => {
    const { octokit, asked } = listing(issues(200));

    const result = await catchUp(octokit, recordingMemory().memory);

    // By count alone, a full page 2 was followed by an empty page 3.
    expect(asked).toEqual(["1", "2", "1", FOLLOW_UP]);
    expect(result).toMatchObject({ status: "done", read: 200 });
  });

  it("reads a listing of one page with one request (no page before it, nothing moves in it)", async () => {
    const { octokit, asked } = listing(issues(40), { linked: false });
    const result = await catchUp(octokit, recordingMemory().memory);
    expect(asked).toEqual(["1"]);
    expect(result).toMatchObject({ status: "done", read: 40 });
  });
});

describe("catchUpRepository while the listing changes between two pages", () => {
  it("reads the issue pulled back onto a page read already when one it read is deleted between two pages", async () => {
    const all = issues(250);
    const { octokit, asked } = listing(all, {
      onPage: (page) => {
        // Issue 240 (read on page 1) deleted (spam, transferred away) as page 2 is asked for:
        // issue 150 moves from page 2's first slot to page 1's last.
        const at = all.findIndex((issue) => issue.number === 240);
        if (page === 2 && at >= 0) all.splice(at, 1);
      },
    });
    const { memory, texts } = recordingMemory();

    const result = await catchUp(octokit, memory);

    expect(missing(all, texts)).toEqual([]);
    // None read twice.
    expect(result).toMatchObject({ status: "done", read: 250 });
    // Each page after the first is followed by the page before it again, where 150 is now.
    expect(asked).toEqual(["1", "2", "1", "3", "2", FOLLOW_UP]);
  });

  it("reads an issue not read yet that an update while it reads moves to the first page", async () => {
    const all = issues(250);
    const clock = createFakeClock(START);
    const { octokit, asked } = listing(all, {
      onPage: (page) => {
        // Issue 30, edited while Talos was down (memory has its old title) and not read yet, is
        // commented on as page 2 is asked for: its update moves it to the front of page 1, and
        // the comment's delivery does not carry its edit into memory.
        const issue = all.find((i) => i.number === 30)!;
        if (page === 2 && issue.updatedAt < START) issue.updatedAt = clock.now();
      },
    });
    const { memory, texts } = recordingMemory();
    all.find((i) => i.number === 30)!.title = "Edited while Talos was down";

    const result = await catchUpRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory,
      since: SINCE,
      max: 10_000,
      clock,
      log: pino({ level: "silent" }),
    });

    expect(texts.get("issue-30")).toMatch(/^Edited while Talos was down/);
    expect(missing(all, texts)).toEqual([]);
    expect(result).toMatchObject({ status: "done", read: 250 });
    // Page 2 starts with issue 151, read on page 1 and pushed along: no page before it is read
    // again. The listing of what was updated since it began finds issue 30.
    expect(asked).toEqual(["1", "2", "3", "2", FOLLOW_UP]);
  });
});

describe("catchUpRepository reading the pull requests' listing (issues switched off)", () => {
  it("reads on when GitHub answers a page shorter than per_page but links a next page", async () => {
    const all = issues(150);
    const asked: number[] = [];
    const octokit = {
      rest: {
        issues: {
          listForRepo: async () => {
            throw Object.assign(new Error("Issues are disabled for this repo"), { status: 410 });
          },
        },
        pulls: {
          list: async ({ page }: { page: number }) => {
            asked.push(page);
            // No `since` here: every pull request, most recently updated first; page 1 comes
            // back with 99 (GitHub hid one after paging), yet links page 2.
            const data = all
              .slice((page - 1) * 100, page * 100)
              .filter((pull) => pull.number !== 120)
              .map((pull) => ({
                ...listedIssue(pull.number, { updated_at: new Date(pull.updatedAt).toISOString() }),
                html_url: `https://github.com/acme/widgets/pull/${pull.number}`,
              }));
            return { data, headers: linkOf(page, 2) };
          },
        },
      },
    } as unknown as Octokit;
    const { memory, texts } = recordingMemory();

    const result = await catchUp(octokit, memory);

    expect(result).toMatchObject({ status: "done", listing: "pulls", read: 149 });
    expect(texts.size).toBe(149);
    // Page 2, page 1 again, then what was updated since it began: none on page 1.
    expect(asked).toEqual([1, 2, 1, 1]);
  });
});

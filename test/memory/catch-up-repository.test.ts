import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { catchUpRepository, type CatchUpOptions } from "../../src/memory/catch-up-repository.js";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";
import { listedIssue } from "../helpers/listed-issue.js";

const SINCE = "2026-11-20T08:00:00.000Z";
const REPO = { owner: "acme", repo: "widgets" };

/** An issue as GitHub's listing gives it, last updated at `updatedAt`. */
const updatedIssue = (number: number, updatedAt: string, changes: Record<string, unknown> = {}) =>
  listedIssue(number, { updated_at: updatedAt, ...changes });

/** `count` issues updated since SINCE, the most recently updated first, as the listing sorts. */
const updatedIssues = (count: number) =>
  Array.from({ length: count }, (_, i) =>
    updatedIssue(
      1_000 - i,
      new Date(Date.parse("2026-11-24T00:00:00Z") - i * 60_000).toISOString(),
    ),
  );

type Answer = unknown[] | { status: number; headers?: Record<string, string> };

/**
 * A client whose issues listing answers `answers` in turn (an array: that page's items; an
 * object: that failure), recording each request's parameters.
 */
function listingOctokit(answers: Answer[]) {
  const asked: Array<Record<string, unknown>> = [];
  const octokit = {
    rest: {
      issues: {
        listForRepo: async (params: Record<string, unknown>) => {
          asked.push(params);
          const answer = answers.shift();
          if (answer === undefined) throw new Error("no more answers scripted");
          if (!Array.isArray(answer))
            throw Object.assign(new Error(`HTTP ${answer.status}`), {
              status: answer.status,
              response: { headers: answer.headers ?? {} },
            });
          return { data: answer, headers: {} };
        },
      },
    },
  } as unknown as Octokit;
  return { octokit, asked };
}

async function openStore(embedder: Embedder = createLocalEmbedder()) {
  const store = await openTestStore(makeDataDir(), { embedder });
  onTestFinished(() => store.close());
  return store;
}

/** A catch-up of acme/widgets since SINCE, quiet, with `options` over those defaults. */
const catchUp = (options: Pick<CatchUpOptions, "octokit" | "memory"> & Partial<CatchUpOptions>) =>
  catchUpRepository({
    repo: REPO,
    since: SINCE,
    max: 10_000,
    clock: createFakeClock(),
    log: pino({ level: "silent" }),
    ...options,
  });

const listParams = (page: number, since = SINCE) => ({
  ...REPO,
  state: "all",
  sort: "updated",
  direction: "desc",
  since,
  per_page: 100,
  page,
});

/**
 * What a listing of more than one page is followed by (items updated while it read moved to the
 * first page): what was updated since it began, less 10 minutes for the clocks' skew. The fake
 * clock starts at 2026-11-24T12:00:00Z.
 */
const FOLLOW_UP = "2026-11-24T11:50:00.000Z";

describe("catchUpRepository", () => {
  it("reads what GitHub changed since, most recently updated first, until a short page, and stores it over older copies", async () => {
    const store = await openStore();
    // Memory as it was before the outage: #1000 open with its old text.
    await store.add(
      issueMemory(1_000, "Issue 1000", { metadata: { updatedAt: "2026-11-10T00:00:00Z" } }),
    );
    const page1 = updatedIssues(100);
    page1[0] = updatedIssue(1_000, "2026-11-24T00:00:00Z", {
      title: "Crash on start",
      body: "Fixed in 2.1",
      state: "closed",
    });
    const page2 = updatedIssues(130).slice(100);
    // Page 2, then page 1 again (what a deletion meanwhile pulled back onto it), then what was
    // updated since the listing began: nothing.
    const { octokit, asked } = listingOctokit([page1, page2, page1, []]);

    const result = await catchUp({ octokit, memory: store });

    expect(asked).toEqual([listParams(1), listParams(2), listParams(1), listParams(1, FOLLOW_UP)]);
    expect(result).toEqual({
      status: "done",
      capped: false,
      listing: "issues",
      read: 130,
      stored: 130,
      skipped: [],
    });
    const caughtUp = await store.get("issue-1000");
    expect(caughtUp?.text).toBe("Crash on start\n\nFixed in 2.1");
    expect(caughtUp?.state).toBe("closed");
    expect((await store.stats()).records).toBe(130);
  });

  it("leaves a record newer than the listed copy: an edit delivered by webhook meanwhile stays", async () => {
    const store = await openStore();
    await store.add(
      issueMemory(1_000, "Edited after the listing was read", {
        metadata: { updatedAt: "2026-11-25T00:00:00Z" },
      }),
    );
    const { octokit } = listingOctokit([[updatedIssue(1_000, "2026-11-24T00:00:00Z")]]);

    await catchUp({ octokit, memory: store });

    expect((await store.get("issue-1000"))?.text).toBe("Edited after the listing was read");
  });

  it("leaves out an item the embedder refuses, names it, and stores the rest of its page", async () => {
    const local = createLocalEmbedder();
    const refusing: Embedder = {
      ...local,
      embed: async (texts) => {
        if (texts.some((text) => text.startsWith("Issue 999")))
          throw Object.assign(new Error("input too long"), { status: 400 });
        return local.embed(texts);
      },
    };
    const store = await openStore(refusing);
    const { octokit } = listingOctokit([updatedIssues(3)]);

    const result = await catchUp({ octokit, memory: store });

    expect(result.stored).toBe(2);
    expect(result.skipped).toEqual([{ number: 999, reason: expect.stringContaining("400") }]);
    expect(await store.get("issue-999")).toBeUndefined();
    expect(await store.get("issue-998")).toBeDefined();
  });

  it("tries a failing page again after a wait that doubles, then goes on from that page", async () => {
    const store = await openStore();
    const clock = createFakeClock();
    const { octokit, asked } = listingOctokit([
      updatedIssues(100),
      { status: 502 },
      { status: 503 },
      updatedIssues(110).slice(100),
      updatedIssues(100),
      [],
    ]);

    const result = await catchUp({
      octokit,
      memory: store,
      clock,
      retry: { attempts: 3, baseMs: 1_000, maxMs: 10_000 },
    });

    expect(asked.map((params) => params.page)).toEqual([1, 2, 2, 2, 1, 1]);
    expect(clock.sleeps).toEqual([1_000, 2_000]);
    expect(result).toMatchObject({ status: "done", read: 110, stored: 110 });
  });

  it("gives up after the last try, naming the repository and the page", async () => {
    const store = await openStore();
    const { octokit } = listingOctokit([{ status: 502 }, { status: 502 }]);

    await expect(
      catchUp({
        octokit,
        memory: store,
        retry: { attempts: 2, baseMs: 1_000, maxMs: 10_000 },
      }),
    ).rejects.toThrow("acme/widgets: catching up stopped at page 1: HTTP 502");
  });

  // The cap cuts a full page, or the listing's last, short one.
  it.each([200, 180])(
    "stops at `max` items, saying it was capped (%i updated)",
    async (updated) => {
      const store = await openStore();
      const { octokit, asked } = listingOctokit([
        updatedIssues(100),
        updatedIssues(updated).slice(100),
        updatedIssues(100),
        [],
      ]);

      const result = await catchUp({
        octokit,
        memory: store,
        max: 150,
      });

      // Page 2, page 1 again, and what was updated since the listing began.
      expect(asked).toHaveLength(4);
      expect(result).toMatchObject({ status: "done", capped: true, read: 150, stored: 150 });
      expect((await store.stats()).records).toBe(150);
    },
  );

  it("reads the pull requests updated since, newest first, from their own listing when issues are switched off (410)", async () => {
    const store = await openStore();
    const asked: Array<{ listing: string; params: Record<string, unknown> }> = [];
    // 130 pull requests updated since, then older ones: the listing has no `since`.
    const pulls = [...updatedIssues(130), updatedIssue(10, "2026-11-19T00:00:00Z")].map((pull) => ({
      ...pull,
      html_url: pull.html_url.replace("issues", "pull"),
    }));
    const octokit = {
      rest: {
        issues: {
          listForRepo: async (params: Record<string, unknown>) => {
            asked.push({ listing: "issues", params });
            throw Object.assign(new Error("Issues are disabled for this repo"), { status: 410 });
          },
        },
        pulls: {
          list: async (params: { page: number }) => {
            asked.push({ listing: "pulls", params });
            const data = pulls.slice((params.page - 1) * 100, params.page * 100);
            return { data, headers: {} };
          },
        },
      },
    } as unknown as Octokit;

    const result = await catchUp({ octokit, memory: store });

    const { since, ...pullParams } = listParams(1);
    expect(since).toBe(SINCE);
    expect(asked).toEqual([
      { listing: "issues", params: listParams(1) },
      { listing: "pulls", params: pullParams },
      { listing: "pulls", params: { ...pullParams, page: 2 } },
      { listing: "pulls", params: pullParams },
      // What was updated since the listing began: none of those it lists first.
      { listing: "pulls", params: pullParams },
    ]);
    expect(result).toMatchObject({ status: "done", listing: "pulls", read: 130, stored: 130 });
    expect(await store.get("pull_request-1000")).toMatchObject({ kind: "pull_request" });
    expect(await store.get("pull_request-10")).toBeUndefined();
  });

  it("stops between pages when told to", async () => {
    const store = await openStore();
    const controller = new AbortController();
    const { octokit, asked } = listingOctokit([updatedIssues(100), updatedIssues(200).slice(100)]);
    const memory = {
      add: store.add.bind(store),
      addMany: async (inputs: Parameters<typeof store.addMany>[0]) => {
        const records = await store.addMany(inputs);
        controller.abort();
        return records;
      },
    };

    const result = await catchUp({
      octokit,
      memory,
      signal: controller.signal,
    });

    expect(asked).toHaveLength(1);
    expect(result).toMatchObject({ status: "stopped", read: 100 });
  });
});

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../../src/clock.js";
import type { Octokit } from "../../src/github/octokit.js";
import {
  BackfillTakenOverError,
  backfillProgressIn,
  backfillRepository,
  readBackfillState,
  type BackfillProgress,
  type BackfillState,
} from "../../src/memory/backfill-repository.js";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import {
  BACKFILL_LEASE_MS,
  backfillClaim,
  type MemoryService,
} from "../../src/memory/memory-service.js";
import type { VectraMemoryStore } from "../../src/memory/vectra-memory-store.js";
import { createFakeClock, createManualClock } from "../helpers/fake-clock.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";
import { listedIssue } from "../helpers/listed-issue.js";

interface Page {
  count: number;
  headers?: Record<string, string>;
  /** Titles by issue number, where not `Issue <number>`. */
  titles?: Record<number, string>;
}

/** GitHub failing a request, as Octokit reports it. */
interface Failure {
  status: number;
  /** The response's headers (a rate limit's say when to try again). */
  headers?: Record<string, string>;
}

/** When the scripted pages' issues were opened. */
const LISTED_AT = "2026-10-01T00:00:00Z";

/** A finished backfill's progress: its next page, what it stored, the last issue it read. */
const doneAt = (page: number, indexed: number, last: number) => ({
  status: "done",
  repo: "acme/widgets",
  page,
  indexed,
  last: { number: last, createdAt: LISTED_AT },
});

/** When the scripted pull requests were last edited. */
const PULL_UPDATED_AT = "2026-11-01T10:00:00Z";

/**
 * A pull request as GitHub's pulls listing gives it: unlike the issues listing's items, it has
 * no `pull_request` field.
 */
function listedPull(number: number, createdAt: string) {
  return {
    ...listedIssue(number, { created_at: createdAt }),
    title: `Pull ${number}`,
    state: "closed",
    html_url: `https://github.com/acme/widgets/pull/${number}`,
    updated_at: PULL_UPDATED_AT,
  };
}

/** A listing serving scripted pages (or failures) of `item`s, recording the pages asked. */
function scriptedListing(
  pages: Array<Page | Failure>,
  asked: number[],
  item: (number: number, createdAt: string) => { title: string },
) {
  let next = 0;
  return async ({ page }: { page: number }) => {
    asked.push(page);
    const scripted = pages[next++] ?? { count: 0 };
    if ("status" in scripted) {
      throw Object.assign(new Error("Bad Gateway"), {
        status: scripted.status,
        response: { headers: scripted.headers ?? {} },
      });
    }
    const { count, headers = {}, titles = {} } = scripted;
    const data = Array.from({ length: count }, (_, i) => {
      const number = 1_000 - (page - 1) * 100 - i;
      const listed = item(number, LISTED_AT);
      return { ...listed, title: titles[number] ?? listed.title };
    });
    return { data, headers };
  };
}

/**
 * A client whose issue listing serves scripted pages (or failures), and its pull request
 * listing `pulls`, recording what was asked of each.
 */
function fakeOctokit(pages: Array<Page | Failure>, pulls: Array<Page | Failure> = []) {
  const asked: number[] = [];
  const askedPulls: number[] = [];
  const pullParams: unknown[] = [];
  const listPulls = scriptedListing(pulls, askedPulls, listedPull);
  const octokit = {
    rest: {
      issues: {
        listForRepo: scriptedListing(pages, asked, (number, createdAt) =>
          listedIssue(number, { created_at: createdAt }),
        ),
      },
      pulls: {
        list: (params: { page: number }) => {
          pullParams.push(params);
          return listPulls(params);
        },
      },
    },
  };
  return { octokit: octokit as unknown as Octokit, asked, askedPulls, pullParams };
}

/** Progress in `directory`, recording every state saved. */
function recordedProgress(directory: string) {
  const inDirectory = backfillProgressIn(directory);
  const saved: BackfillState[] = [];
  const progress: BackfillProgress = {
    readBackfillState: () => inDirectory.readBackfillState(),
    saveBackfillState: async (state) => {
      saved.push(structuredClone(state));
      await inDirectory.saveBackfillState(state);
    },
  };
  return { progress, saved };
}

/**
 * Claims on backfills as PostgreSQL keeps them (claimBackfill in postgres-memory.ts: a lease
 * that only its holder renews until it lapses), timed by the test's clock rather than the
 * database's, so that a test can let an hour pass.
 */
function claimStore(clock: Clock): Pick<MemoryService, "claimBackfill"> {
  let held: { holder: string; until: number } | undefined;
  return {
    claimBackfill: async (_namespace, holder, leaseMs) => {
      if (held && held.holder !== holder && held.until >= clock.now()) return false;
      held = leaseMs > 0 ? { holder, until: clock.now() + leaseMs } : undefined;
      return true;
    },
  };
}

describe("backfillRepository", () => {
  let store: VectraMemoryStore | undefined;
  afterEach(() => store?.close());

  it("resumes after issues were opened meanwhile without reading any twice or leaving the oldest out", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    // The repository's issues as GitHub lists them: newest first, 100 a page.
    const numbers = Array.from({ length: 250 }, (_, i) => 250 - i);
    const asked: number[] = [];
    const octokit = {
      rest: {
        issues: {
          listForRepo: async ({ page }: { page: number }) => {
            asked.push(page);
            const data = numbers.slice((page - 1) * 100, page * 100).map((number) =>
              listedIssue(number, {
                created_at: new Date(Date.UTC(2026, 0, 1) + number * 60_000).toISOString(),
              }),
            );
            return { data, headers: {} };
          },
        },
      },
    } as unknown as Octokit;
    const run = (signal?: AbortSignal, onProgress?: () => void) =>
      backfillRepository({
        octokit,
        repo: { owner: "acme", repo: "widgets" },
        memory: store!,
        progress: backfillProgressIn(directory),
        max: 250,
        clock: createFakeClock(),
        log: pino({ level: "silent" }),
        signal,
        onProgress,
      });
    const stop = new AbortController();
    expect(await run(stop.signal, () => stop.abort())).toMatchObject({ page: 2, indexed: 100 });
    // 30 issues opened before the resume (their webhooks remember them): page 2 now starts
    // with 30 issues page 1 held.
    numbers.unshift(...Array.from({ length: 30 }, (_, i) => 280 - i));
    const state = await run();
    // Page 2 starts with issues read before (those opened pushed it along): nothing unread can
    // be before it. Page 3 does not, so the page before it is read again after it, in case
    // issues were deleted meanwhile.
    expect(asked).toEqual([1, 2, 3, 2]);
    expect(state).toMatchObject({ status: "done", indexed: 250 });
    const ids = (await store.list()).map((record) => record.id);
    expect(ids.sort()).toEqual(Array.from({ length: 250 }, (_, i) => `issue-${i + 1}`).sort());
  });

  it("resumes after more than a page of issues it read were deleted meanwhile, reading back to where it stopped", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    let numbers = Array.from({ length: 350 }, (_, i) => 350 - i);
    const asked: number[] = [];
    const octokit = {
      rest: {
        issues: {
          listForRepo: async ({ page }: { page: number }) => {
            asked.push(page);
            const data = numbers
              .slice((page - 1) * 100, page * 100)
              .map((number) => listedIssue(number, { created_at: LISTED_AT }));
            return { data, headers: {} };
          },
        },
      },
    } as unknown as Octokit;
    const run = (signal?: AbortSignal, onProgress?: (indexed: number) => void) =>
      backfillRepository({
        octokit,
        repo: { owner: "acme", repo: "widgets" },
        memory: store!,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock: createFakeClock(),
        log: pino({ level: "silent" }),
        signal,
        onProgress,
      });
    const stop = new AbortController();
    const stopped = await run(stop.signal, (indexed) => indexed === 300 && stop.abort());
    expect(stopped).toMatchObject({ page: 4, indexed: 300, last: { number: 51 } });
    // 150 of the issues it read (300 to 151) deleted: what it has not read, 50 to 1, is on page 2.
    numbers = numbers.filter((n) => n > 300 || n <= 150);

    const state = await run();
    // Before the stop, each page after the first was followed by the page before it. After it,
    // page 4 and page 3 are empty now, and page 2 starts with an issue read before: the rest is
    // there.
    expect(asked).toEqual([1, 2, 1, 3, 2, 4, 3, 2]);
    expect(state).toMatchObject({ status: "done", indexed: 350 });
    const ids = (await store.list()).map((record) => record.id);
    expect(ids.sort()).toEqual(Array.from({ length: 350 }, (_, i) => `issue-${i + 1}`).sort());
  });

  it("pauses until the reset when the installation's rate limit runs low, then goes on", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    const clock = createFakeClock();
    const reset = Math.floor(clock.now() / 1000) + 600;
    const { octokit, asked } = fakeOctokit([
      { count: 100, headers: { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4000" } },
      { count: 100 },
      // Page 1 again after page 2 (an issue deleted meanwhile would have pulled one back onto
      // it): the latest answer says the limit now.
      {
        count: 100,
        headers: {
          "x-ratelimit-limit": "5000",
          "x-ratelimit-remaining": "300",
          "x-ratelimit-reset": String(reset),
        },
      },
      { count: 20 },
      // Page 2 again after page 3: the pause was no different from any time between two pages.
      { count: 100 },
    ]);
    const progress: number[] = [];

    const state = await backfillRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      progress: backfillProgressIn(directory),
      max: 1_000,
      clock,
      log: pino({ level: "silent" }),
      onProgress: (indexed) => progress.push(indexed),
    });

    expect(asked).toEqual([1, 2, 1, 3, 2]);
    // Under 10% left after page 2: wait for the reset (and a second more), nothing sooner.
    expect(clock.sleeps).toEqual([601_000]);
    expect(progress).toEqual([100, 200, 220]);
    expect(state).toEqual(doneAt(4, 220, 781));
    expect(await readBackfillState(directory)).toEqual(state);
    expect(await store.list()).toHaveLength(220);
  });

  it("leaves a record newer than the page it read: an edit that arrived meanwhile stays", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    // Webhooks handled while the page was on its way: #7 edited after the page was read, #5's
    // record is older than the page.
    await store.add(
      issueMemory(7, "The edited title", { metadata: { updatedAt: "2026-11-02T10:00:00Z" } }),
    );
    await store.add(
      issueMemory(5, "A stale title", { metadata: { updatedAt: "2026-10-01T10:00:00Z" } }),
    );
    const listed = (number: number, title: string, updatedAt: string) => ({
      ...listedIssue(number, { created_at: LISTED_AT }),
      title,
      updated_at: updatedAt,
    });
    const octokit = {
      rest: {
        issues: {
          listForRepo: async () => ({
            data: [
              listed(7, "The first title", "2026-11-01T10:00:00Z"),
              listed(6, "Issue 6", "2026-11-01T10:00:00Z"),
              listed(5, "The current title", "2026-11-01T10:00:00Z"),
            ],
            headers: {},
          }),
        },
      },
    } as unknown as Octokit;

    const state = await backfillRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      progress: backfillProgressIn(directory),
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
    });

    expect(state).toMatchObject({ status: "done", indexed: 3 });
    expect(await store.get("issue-7")).toMatchObject({
      text: "The edited title",
      metadata: { updatedAt: "2026-11-02T10:00:00.000Z" },
    });
    // What the page held, with its version: an older event delivered later leaves it.
    expect(await store.get("issue-6")).toMatchObject({
      text: "Issue 6",
      metadata: { updatedAt: "2026-11-01T10:00:00.000Z" },
    });
    expect(await store.get("issue-5")).toMatchObject({
      text: "The current title",
      metadata: { updatedAt: "2026-11-01T10:00:00.000Z" },
    });
  });

  describe("its claim, with instances sharing a database", () => {
    const namespace = { installation: 7, repository: 42 };
    const repo = { owner: "acme", repo: "widgets" };

    it("keeps its claim through a rate-limit pause far longer than the lease, so no other holder takes the backfill over", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createManualClock();
      const claims = claimStore(clock);
      expect(await claims.claimBackfill(namespace, "this-instance", BACKFILL_LEASE_MS)).toBe(true);
      // An hour until the rate limit resets: twelve leases.
      const resumeAt = clock.now() + 3_601_000;
      const { octokit, asked } = fakeOctokit([
        {
          count: 100,
          headers: {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "10",
            "x-ratelimit-reset": String(Math.floor(clock.now() / 1000) + 3_600),
          },
        },
        // Page 2, then page 1 again after it.
        { count: 20 },
        { count: 100 },
      ]);
      let paused!: () => void;
      const pausing = new Promise<void>((resolve) => (paused = resolve));

      const running = backfillRepository({
        octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock,
        log: pino({ level: "silent" }),
        onProgress: (indexed) => indexed === 100 && paused(),
        claim: backfillClaim(claims, namespace, "this-instance"),
      });
      await pausing;
      await new Promise((resolve) => setImmediate(resolve));
      // Another instance starting at any minute of the pause finds the backfill held.
      while (clock.now() < resumeAt) {
        await clock.advance(60_000);
        expect(await claims.claimBackfill(namespace, "another-instance", BACKFILL_LEASE_MS)).toBe(
          false,
        );
      }

      expect(await running).toEqual(doneAt(3, 120, 881));
      expect(asked).toEqual([1, 2, 1]);
      expect(await readBackfillState(directory)).toMatchObject({ status: "done", indexed: 120 });
    });

    it("stops without saving progress once another holder has claimed the backfill after its lease lapsed", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      const claims = claimStore(clock);
      const progress = backfillProgressIn(directory);
      const before = { status: "running" as const, repo: "acme/widgets", page: 3, indexed: 200 };
      await progress.saveBackfillState(before);
      expect(await claims.claimBackfill(namespace, "this-instance", BACKFILL_LEASE_MS)).toBe(true);
      const { octokit: pages } = fakeOctokit([{ count: 100 }, { count: 100 }]);
      const asked: number[] = [];
      // This instance stalls on page 3 past its lease (a frozen VM, say); another instance
      // starting meanwhile finds the lease lapsed and resumes the backfill from page 3 itself.
      const octokit = {
        rest: {
          issues: {
            listForRepo: async (params: { page: number }) => {
              asked.push(params.page);
              clock.advance(BACKFILL_LEASE_MS + 1);
              expect(
                await claims.claimBackfill(namespace, "another-instance", BACKFILL_LEASE_MS),
              ).toBe(true);
              return pages.rest.issues.listForRepo(params as never);
            },
          },
        },
      } as unknown as Octokit;

      await expect(
        backfillRepository({
          octokit,
          repo,
          memory: store,
          progress,
          max: 1_000,
          clock,
          log: pino({ level: "silent" }),
          claim: backfillClaim(claims, namespace, "this-instance"),
        }),
      ).rejects.toThrow(BackfillTakenOverError);

      // It read no further page, and left the progress as the new holder found it.
      expect(asked).toEqual([3]);
      expect(await readBackfillState(directory)).toEqual(before);
      expect(await claims.claimBackfill(namespace, "this-instance", BACKFILL_LEASE_MS)).toBe(false);
    });
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
      progress: backfillProgressIn(directory),
      max: 1_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
      onProgress: () => stop.abort(),
      signal: stop.signal,
    });

    expect(asked).toEqual([1]);
    expect(state).toMatchObject({ status: "running", page: 2, indexed: 100 });
  });

  it("is done, reading nothing, when it resumes at or past a max lowered since it stopped", async () => {
    const directory = makeDataDir();
    store = await openTestStore(directory);
    const progress = backfillProgressIn(directory);
    await progress.saveBackfillState({
      status: "running",
      repo: "acme/widgets",
      page: 4,
      indexed: 300,
    });
    const { octokit, asked } = fakeOctokit([{ count: 100 }]);

    const state = await backfillRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      progress,
      max: 200,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
    });

    expect(asked).toEqual([]);
    expect(state).toMatchObject({ status: "done", page: 4, indexed: 300 });
    expect(await progress.readBackfillState()).toMatchObject({ status: "done", indexed: 300 });
  });

  it("names the progress file when it is damaged", async () => {
    const directory = makeDataDir();
    await writeFile(join(directory, "backfill.json"), "{ not json");

    await expect(readBackfillState(directory)).rejects.toThrow(/backfill\.json is damaged/);
  });

  describe("robustness", () => {
    const repo = { owner: "acme", repo: "widgets" };

    /** The local embedder, except that it refuses any text holding `refused` as an API would. */
    function refusingEmbedder(refused: string, status = 400): Embedder {
      const inner = createLocalEmbedder();
      return {
        ...inner,
        async embed(texts) {
          if (texts.some((t) => t.includes(refused))) {
            throw Object.assign(new Error(`${status} the input is not accepted`), { status });
          }
          return inner.embed(texts);
        },
      };
    }

    function capturedLog() {
      const lines: Array<Record<string, unknown>> = [];
      const log = pino(
        { level: "info" },
        { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
      );
      return { log, lines };
    }

    it("leaves out an item the embedder refuses, counting and logging it, and stores the rest of its page", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory, { embedder: refusingEmbedder("POISON") });
      const { octokit } = fakeOctokit([
        { count: 100, titles: { 990: "POISON: far too long to embed" } },
        { count: 30 },
      ]);
      const { log, lines } = capturedLog();

      const state = await backfillRepository({
        octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock: createFakeClock(),
        log,
      });

      expect(state).toEqual({
        status: "done",
        repo: "acme/widgets",
        page: 3,
        indexed: 129,
        skipped: 1,
        skippedItems: [{ number: 990, reason: "400 the input is not accepted" }],
        last: { number: 871, createdAt: LISTED_AT },
      });
      expect(await readBackfillState(directory)).toEqual(state);
      const ids = (await store.list()).map((r) => r.id);
      expect(ids).toHaveLength(129);
      expect(ids).not.toContain("issue-990");
      expect(ids).toContain("issue-989");
      expect(lines.filter((l) => l.msg === "backfill left out an item it cannot store")).toEqual([
        expect.objectContaining({ number: 990, repo: "acme/widgets", level: 40 }),
      ]);
    });

    it("leaves out an item PostgreSQL refuses as data (SQLSTATE class 22), storing the rest of its page", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const refused = Object.assign(new Error("invalid input syntax for type json"), {
        code: "22P02",
      });
      const poisoned = (inputs: Array<{ text: string }>) =>
        inputs.some((input) => input.text.includes("POISON"));
      // The store as PostgreSQL would answer: a batch holding the item fails whole, as it does.
      const memory = new Proxy(store, {
        get(target, key) {
          if (key === "addMany")
            return async (inputs: Parameters<VectraMemoryStore["addMany"]>[0]) => {
              if (poisoned(inputs)) throw refused;
              return target.addMany(inputs);
            };
          if (key === "add")
            return async (input: Parameters<VectraMemoryStore["add"]>[0]) => {
              if (poisoned([input])) throw refused;
              return target.add(input);
            };
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const { octokit } = fakeOctokit([{ count: 30, titles: { 990: "POISON" } }]);

      const state = await backfillRepository({
        octokit,
        repo,
        memory,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock: createFakeClock(),
        log: capturedLog().log,
      });

      // It had failed the page at every try, and the backfill for good at that page.
      expect(state).toMatchObject({ status: "done", indexed: 29, skipped: 1 });
      expect(state.skippedItems).toEqual([
        { number: 990, reason: "invalid input syntax for type json" },
      ]);
    });

    it("fails the page, not each item, when the embedding model refuses every item of it", async () => {
      // A model refusing everything is set up wrong: each item skipped, the backfill had ended
      // `done` with nothing stored, and never ran again.
      const directory = makeDataDir();
      store = await openTestStore(directory, { embedder: refusingEmbedder("") });
      const { octokit } = fakeOctokit([{ count: 30 }]);
      const { log } = capturedLog();

      await expect(
        backfillRepository({
          octokit,
          repo,
          memory: store,
          progress: backfillProgressIn(directory),
          max: 1_000,
          clock: createFakeClock(),
          log,
        }),
      ).rejects.toThrow("400 the input is not accepted");

      expect(await readBackfillState(directory)).toMatchObject({
        status: "failed",
        page: 1,
        indexed: 0,
        error: expect.stringContaining("400 the input is not accepted"),
      });
      expect(await store.list()).toEqual([]);
    });

    it("tries a page GitHub fails again after a doubling wait, while it runs", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      const { octokit, asked } = fakeOctokit([
        { count: 100 },
        { status: 502 },
        { status: 503 },
        { count: 10 },
        // Page 1 again after page 2.
        { count: 100 },
      ]);

      const state = await backfillRepository({
        octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock,
        log: pino({ level: "silent" }),
      });

      expect(asked).toEqual([1, 2, 2, 2, 1]);
      expect(clock.sleeps).toEqual([5_000, 10_000]);
      expect(state).toMatchObject({ status: "done", page: 3, indexed: 110 });
      expect(await store.list()).toHaveLength(110);
    });

    it("tries again when the embedder is down, rather than leaving the page's items out", async () => {
      const directory = makeDataDir();
      let down = 2;
      const inner = createLocalEmbedder();
      store = await openTestStore(directory, {
        embedder: {
          ...inner,
          embed: async (texts) => {
            if (down-- > 0)
              throw Object.assign(new Error("503 Service Unavailable"), { status: 503 });
            return inner.embed(texts);
          },
        },
      });
      const clock = createFakeClock();
      const { octokit, asked } = fakeOctokit([{ count: 5 }, { count: 5 }, { count: 5 }]);

      const state = await backfillRepository({
        octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock,
        log: pino({ level: "silent" }),
      });

      expect(asked).toEqual([1, 1, 1]);
      expect(clock.sleeps).toEqual([5_000, 10_000]);
      expect(state).toEqual(doneAt(2, 5, 996));
    });

    it("gives up after its tries, says so in backfill.json, and the next run resumes at that page", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      const retry = { attempts: 3, baseMs: 1_000, maxMs: 60_000 };
      const failing = fakeOctokit([
        { count: 100 },
        { status: 502 },
        { status: 502 },
        { status: 502 },
      ]);

      await expect(
        backfillRepository({
          octokit: failing.octokit,
          repo,
          memory: store,
          progress: backfillProgressIn(directory),
          max: 1_000,
          clock,
          log: pino({ level: "silent" }),
          retry,
        }),
      ).rejects.toThrow("Bad Gateway");

      expect(failing.asked).toEqual([1, 2, 2, 2]);
      expect(clock.sleeps).toEqual([1_000, 2_000]);
      expect(await readBackfillState(directory)).toEqual({
        status: "failed",
        repo: "acme/widgets",
        page: 2,
        indexed: 100,
        last: { number: 901, createdAt: LISTED_AT },
        error: "page 2 failed 3 times; last: 502 Bad Gateway",
        failedAt: new Date(clock.now()).toISOString(),
      });

      // Page 2, then the page before it again (nothing on it is new).
      const working = fakeOctokit([{ count: 40 }, { count: 100 }]);
      const state = await backfillRepository({
        octokit: working.octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock,
        log: pino({ level: "silent" }),
        retry,
      });
      expect(working.asked).toEqual([2, 1]);
      expect(state).toEqual(doneAt(3, 140, 861));
    });

    it("waits out a rate limit GitHub answers with 403 (primary or secondary), as long as GitHub asks, then goes on", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      // What the client's throttling gives up on (a wait over its limit) comes back as a 403.
      const { octokit, asked } = fakeOctokit([
        { count: 100 },
        {
          status: 403,
          headers: {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": String(Math.floor(clock.now() / 1000) + 1_200),
          },
        },
        // After each wait for the rate limit, page 2 again; once read, page 1 again after it.
        { status: 403, headers: { "retry-after": "120" } },
        { count: 10 },
        { count: 100 },
      ]);

      const state = await backfillRepository({
        octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock,
        log: pino({ level: "silent" }),
      });

      expect(asked).toEqual([1, 2, 2, 2, 1]);
      // Until the reset (and a second more), then what retry-after says.
      expect(clock.sleeps).toEqual([1_201_000, 120_000]);
      expect(state).toEqual(doneAt(3, 110, 891));
    });

    it("records a repository whose issues are disabled (GitHub's 410 Gone) as done once its pull requests are read, and a later run checks again", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      // No pull requests either.
      const disabled = fakeOctokit([{ status: 410 }], [{ count: 0 }]);
      const { log, lines } = capturedLog();

      const state = await backfillRepository({
        octokit: disabled.octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock,
        log,
      });

      // Final, not failed: a start does not resume it (backfill-runner.ts checks again a day
      // later), and nothing is tried again meanwhile.
      const checkedAt = new Date(clock.now()).toISOString();
      expect(state).toEqual({
        status: "done",
        repo: "acme/widgets",
        listing: "pulls",
        page: 2,
        indexed: 0,
        issuesDisabledAt: checkedAt,
      });
      expect(await readBackfillState(directory)).toEqual(state);
      expect(disabled.asked).toEqual([1]);
      expect(disabled.askedPulls).toEqual([1]);
      expect(clock.sleeps).toEqual([]);
      expect(lines.filter((l) => Number(l.level) >= 50)).toEqual([]);
      expect(lines).toContainEqual(
        expect.objectContaining({ repo: "acme/widgets", msg: "backfill: issues are disabled" }),
      );

      // Issues enabled again: asked to run, it checks, and the mark goes once it could list.
      const enabled = fakeOctokit([{ count: 30 }]);
      const again = await backfillRepository({
        octokit: enabled.octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock,
        log,
      });
      expect(enabled.asked).toEqual([1]);
      expect(again).toEqual(doneAt(2, 30, 971));
    });

    it("does not try again what cannot succeed (the repository is gone)", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      const { octokit, asked } = fakeOctokit([{ status: 404 }]);
      await expect(
        backfillRepository({
          octokit,
          repo,
          memory: store,
          progress: backfillProgressIn(directory),
          max: 1_000,
          clock,
          log: pino({ level: "silent" }),
        }),
      ).rejects.toThrow("Bad Gateway");
      expect(asked).toEqual([1]);
      expect(clock.sleeps).toEqual([]);
      expect(await readBackfillState(directory)).toMatchObject({
        status: "failed",
        error: "page 1 failed once; last: 404 Bad Gateway",
      });
    });
  });
  describe("a repository with issues switched off", () => {
    const repo = { owner: "acme", repo: "widgets" };
    const pullIds = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => `pull_request-${from - i}`).sort();

    it("reads the pull requests' own listing when GitHub answers 410 to the issues listing, storing them as pull requests, a page at a time", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      const { octokit, asked, askedPulls, pullParams } = fakeOctokit(
        [{ status: 410 }],
        // Page 2, then page 1 again after it.
        [{ count: 100 }, { count: 30 }, { count: 100 }],
      );
      const { progress, saved } = recordedProgress(directory);

      const state = await backfillRepository({
        octokit,
        repo,
        memory: store,
        progress,
        max: 1_000,
        clock,
        log: pino({ level: "silent" }),
      });

      expect(asked).toEqual([1]);
      expect(askedPulls).toEqual([1, 2, 1]);
      expect(pullParams[0]).toEqual({
        owner: "acme",
        repo: "widgets",
        state: "all",
        sort: "created",
        direction: "desc",
        per_page: 100,
        page: 1,
      });
      const issuesDisabledAt = new Date(clock.now()).toISOString();
      const pulls = { repo: "acme/widgets", listing: "pulls", issuesDisabledAt };
      // Saved as it turned to the pull requests, then after each page.
      expect(saved).toEqual([
        { status: "running", ...pulls, page: 1, indexed: 0 },
        {
          status: "running",
          ...pulls,
          page: 2,
          indexed: 100,
          last: { number: 901, createdAt: LISTED_AT },
        },
        {
          status: "done",
          ...pulls,
          page: 3,
          indexed: 130,
          last: { number: 871, createdAt: LISTED_AT },
        },
      ]);
      expect(state).toEqual(saved.at(-1));
      const records = await store.list();
      expect(records.map((r) => r.id).sort()).toEqual(pullIds(1_000, 130));
      expect(records.every((r) => r.kind === "pull_request")).toBe(true);
      expect(await store.get("pull_request-1000")).toMatchObject({
        number: 1000,
        text: "Pull 1000",
        url: "https://github.com/acme/widgets/pull/1000",
        metadata: { updatedAt: "2026-11-01T10:00:00.000Z" },
      });
    });

    it("resumes a pull request listing where a stop left it, looking back a page, without asking for the issues", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const issuesDisabledAt = "2026-09-30T00:00:00.000Z";
      await backfillProgressIn(directory).saveBackfillState({
        status: "running",
        repo: "acme/widgets",
        listing: "pulls",
        page: 2,
        indexed: 100,
        last: { number: 901, createdAt: LISTED_AT },
        issuesDisabledAt,
      });
      const { octokit, asked, askedPulls } = fakeOctokit(
        [],
        // Page 2, page 1 again, page 3, page 2 again.
        [{ count: 100 }, { count: 100 }, { count: 20 }, { count: 100 }],
      );

      const state = await backfillRepository({
        octokit,
        repo,
        memory: store,
        progress: backfillProgressIn(directory),
        max: 1_000,
        clock: createFakeClock(),
        log: pino({ level: "silent" }),
      });

      expect(asked).toEqual([]);
      // Each page followed by the page before it again (its first item was read before).
      expect(askedPulls).toEqual([2, 1, 3, 2]);
      expect(state).toEqual({
        status: "done",
        repo: "acme/widgets",
        listing: "pulls",
        page: 4,
        indexed: 220,
        last: { number: 781, createdAt: LISTED_AT },
        issuesDisabledAt,
      });
      expect((await store.list()).map((r) => r.id).sort()).toEqual(pullIds(900, 120));
    });

    it("checked again once its pull requests are read, asks only for the issues' first page while they are off, and reads the issues listing from the start once they are on", async () => {
      const directory = makeDataDir();
      store = await openTestStore(directory);
      const clock = createFakeClock();
      const read = {
        status: "done" as const,
        repo: "acme/widgets",
        listing: "pulls" as const,
        page: 3,
        indexed: 130,
        last: { number: 871, createdAt: LISTED_AT },
        issuesDisabledAt: "2026-09-30T00:00:00.000Z",
      };
      await backfillProgressIn(directory).saveBackfillState(read);
      const run = (octokit: Octokit) =>
        backfillRepository({
          octokit,
          repo,
          memory: store!,
          progress: backfillProgressIn(directory),
          max: 1_000,
          clock,
          log: pino({ level: "silent" }),
        });

      const off = fakeOctokit([{ status: 410 }], [{ count: 100 }]);
      const still = await run(off.octokit);
      expect(off.asked).toEqual([1]);
      expect(off.askedPulls).toEqual([]);
      expect(still).toEqual({ ...read, issuesDisabledAt: new Date(clock.now()).toISOString() });
      expect(await readBackfillState(directory)).toEqual(still);

      // Switched on: the issues listing holds the pull requests too, from its first page.
      const on = fakeOctokit([{ count: 100 }, { count: 10 }, { count: 100 }]);
      const again = await run(on.octokit);
      expect(on.asked).toEqual([1, 2, 1]);
      expect(on.askedPulls).toEqual([]);
      expect(again).toEqual(doneAt(3, 110, 891));
      expect(await store.list()).toHaveLength(110);
    });
  });
});

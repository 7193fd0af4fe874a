import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { toIssueInfo } from "../github/create-repo-client.js";
import { describeError, statusOf, type Octokit, type RepoRef } from "../github/octokit.js";
import {
  afterPageFailure,
  DEFAULT_BACKFILL_RETRY,
  hasNextPage,
  LAST_LISTED_PAGE,
  lowRateLimitResetAt,
  pauseFor,
  pauseForRateLimit,
  readListingPage,
  storeListedItems,
  type BackfillRetry,
  type ListedItem,
  type ListedPage,
  type SkippedItem,
} from "./backfill-repository.js";
import type { MemoryStore } from "./memory-store.js";
import { CLOCK_SKEW_MS } from "./outage-catch-up.js";

export interface CatchUpOptions {
  octokit: Octokit;
  repo: RepoRef;
  memory: Pick<MemoryStore, "add" | "addMany">;
  /** Issues and pull requests updated at or after this time (ISO 8601) are read. */
  since: string;
  /** The most items to read; the most recently updated come first. */
  max: number;
  clock: Clock;
  log: Logger;
  /** Stops between pages (on shutdown): the caller runs it again from the start later. */
  signal?: AbortSignal | undefined;
  retry?: BackfillRetry | undefined;
  /**
   * Told, once a page is stored and the installation's rate limit has run low, or once GitHub
   * refused to list a page for a rate limit, when to go on (ms since the epoch) and from where:
   * the catch-up then returns `rate-limited`, for the caller to run it again with `resume` after
   * that, rather than wait here (up to an hour) holding a queue that other installations, each
   * with a limit of its own, share. A refusal uses up none of the page's tries, and those it
   * used keep counting after. Without it, it waits here, and a refusal is one of the page's
   * tries, as any failure is.
   */
  onRateLimited?: ((resumeAt: number, from: CatchUpState) => void) | undefined;
  /** Where a catch-up stopped for a rate limit goes on (given to `onRateLimited`). */
  resume?: CatchUpState | undefined;
}

export interface CatchUpResult {
  /**
   * `done`: every item updated since was read, or the `max` most recently updated (`capped`).
   * `stopped`: the signal aborted it. `rate-limited`: it stopped for the rate limit, and goes on
   * from where `onRateLimited` was told.
   */
  status: "done" | "stopped" | "rate-limited";
  capped: boolean;
  /** `pulls`: issues are switched off (GitHub answered 410), so only pull requests were read. */
  listing: "issues" | "pulls";
  read: number;
  stored: number;
  skipped: SkippedItem[];
}

/** Where a catch-up stopped for a rate limit goes on from; only its caller keeps it. */
export interface CatchUpState extends Omit<CatchUpResult, "status"> {
  /**
   * The pass under way: the first (0) reads what was updated since `since`, each next one what
   * was updated since the one before it began (see catchUpRepository).
   */
  pass: number;
  /** What the pass reads: items updated at or after this time. */
  since: string;
  /** When the pass began (ms since the epoch). */
  startedAt: number;
  /** The pass's next page, and the items it read (at most `max`). */
  page: number;
  taken: number;
  /** The numbers of the items read so far, by any pass: none is read twice. */
  seen: number[];
  /** The numbers of the items the pass's pages listed, up to the last item read. */
  listed: number[];
  /** The page's failed tries so far, and its refusals for a rate limit, in a row. */
  failures: number;
  rateLimited: number;
}

const PER_PAGE = 100;
/**
 * Passes after the first, at most: each reads what was updated while the one before ran, which
 * is a page or none unless the one before ran long (a rate limit's wait, say).
 */
const FOLLOW_UPS = 3;

/**
 * The two listings, most recently updated first, of the items updated at or after `since`. The
 * issues listing, which holds the pull requests too, takes `since`; the pulls listing, read when
 * issues are switched off, does not, and ends at its first item updated before.
 */
function listingsOf({ octokit, repo }: CatchUpOptions, since: string) {
  const query = {
    ...repo,
    state: "all",
    sort: "updated",
    direction: "desc",
    per_page: PER_PAGE,
  } as const;
  return {
    issues: {
      list: async (page: number): Promise<ListedPage<ListedItem>> => {
        const { data, headers } = await octokit.rest.issues.listForRepo({ ...query, since, page });
        return { data, headers, more: hasNextPage(headers, data.length) };
      },
      toIssueInfo,
    },
    pulls: {
      list: async (page: number): Promise<ListedPage<ListedItem>> => {
        const { data, headers } = await octokit.rest.pulls.list({ ...query, page });
        const items = data.filter((pull) => Date.parse(pull.updated_at) >= Date.parse(since));
        return {
          data: items,
          headers,
          more: hasNextPage(headers, data.length) && items.length === data.length,
        };
      },
      // This listing's items lack the `pull_request` field that marks them in the issues one.
      toIssueInfo: (item: ListedItem) => ({ ...toIssueInfo(item), isPullRequest: true }),
    },
  } as const;
}

/**
 * Brings a repository's memory up to date with the issues and pull requests GitHub changed since
 * `since`: opened, edited, closed or reopened while no delivery reached Talos, longer ago than a
 * redelivery can reach (GitHub keeps deliveries 3 days). Reads the issues listing by last update,
 * newest first (https://docs.github.com/en/rest/issues/issues#list-repository-issues), a page at
 * a time, and stores each page as a backfill does: an older copy never overwrites a newer one,
 * and a text already in memory is not embedded again, so a run repeated costs reads only. It is
 * done when GitHub links no next page (a page shorter than 100 is not the end while one is
 * linked: GitHub leaves out items it hides after paging), as the backfill is.
 *
 * Pages are numbered with `since` fixed, and they move between two reads:
 * - An item deleted, transferred or hidden (spam) pulls the items after it one place back, one
 *   not read yet onto a page read already. So each page after the first is followed by a read of
 *   the page before it again, as the backfill's are (readListingPage); what it read is known by
 *   number, so nothing is read twice.
 * - An item updated while this reads moves to the first page: read already, it pushes the rest
 *   along, and one is listed twice; not read yet, it is passed over, and its update came by
 *   webhook, but not what changed before it while Talos was down (an issue edited then and only
 *   commented on now keeps its old text). So a listing of more than one page is followed by one
 *   of what was updated since it began (less CLOCK_SKEW_MS, GitHub's clock and ours may differ),
 *   its items not read yet; and that one by another while it too takes more than one page, up to
 *   FOLLOW_UPS. A single page is one answer: nothing moves in it.
 *
 * Deleted and transferred issues are not listed: they stay until their own event, as their
 * removal cannot be seen here, or until they are about to be named as similar issues, which reads
 * them first (`keepExistingIssues`).
 */
export async function catchUpRepository(options: CatchUpOptions): Promise<CatchUpResult> {
  const { repo, memory, max, clock, log, signal, onRateLimited } = options;
  const retry = options.retry ?? DEFAULT_BACKFILL_RETRY;
  const fullName = `${repo.owner}/${repo.repo}`;
  const from = options.resume;
  const state: CatchUpState = from
    ? { ...from, skipped: [...from.skipped] }
    : {
        capped: false,
        listing: "issues",
        read: 0,
        stored: 0,
        skipped: [],
        pass: 0,
        since: options.since,
        startedAt: clock.now(),
        page: 1,
        taken: 0,
        seen: [],
        listed: [],
        failures: 0,
        rateLimited: 0,
      };
  const seen = new Set(state.seen);
  let listed = new Set(state.listed);
  const resultOf = (status: CatchUpResult["status"]): CatchUpResult => {
    const { capped, listing, read, stored, skipped } = state;
    return { status, capped, listing, read, stored, skipped };
  };
  const stopFor = (resumeAt: number): CatchUpResult => {
    onRateLimited!(resumeAt, {
      ...state,
      skipped: [...state.skipped],
      seen: [...seen],
      listed: [...listed],
    });
    return resultOf("rate-limited");
  };
  /** The pass has ended: false when the catch-up is done, else the next pass is set up. */
  const nextPass = (): boolean => {
    if (state.page === 1) return false;
    if (state.pass >= FOLLOW_UPS) {
      log.warn(
        { repo: fullName, passes: state.pass + 1 },
        "catch-up: items updated while it read may be left out (they went on changing)",
      );
      return false;
    }
    const since = Math.max(Date.parse(state.since), state.startedAt - CLOCK_SKEW_MS);
    Object.assign(state, {
      pass: state.pass + 1,
      since: new Date(since).toISOString(),
      startedAt: clock.now(),
      page: 1,
      taken: 0,
    });
    listed = new Set();
    return true;
  };
  // Reading none: capped at once, without a request.
  if (max <= 0) return { ...resultOf("done"), capped: true };
  for (;;) {
    if (signal?.aborted) return resultOf("stopped");
    const listing = listingsOf(options, state.since)[state.listing];
    let page;
    try {
      page = await readListingPage(listing.list, state.page, {
        started: listed.size > 0,
        listedBefore: (item) => listed.has(item.number),
        read: (item) => seen.has(item.number),
        // Known by number, what is read is never passed over: what the pages before list after
        // the page's last item is taken now rather than left to the next page.
        listedBy: () => true,
      });
    } catch (error) {
      // Issues switched off: their listing, which holds the pull requests too, cannot be read.
      // The pull requests' own listing is read from its start, wherever the issues' stopped
      // (switched off between two of its pages, the first pages of pull requests were skipped).
      if (statusOf(error) === 410 && state.listing === "issues") {
        Object.assign(state, {
          listing: "pulls",
          page: 1,
          startedAt: clock.now(),
          failures: 0,
          rateLimited: 0,
        });
        listed = new Set();
        continue;
      }
      // GitHub refused the page for the installation's rate limit: no failure of the page's.
      const failure = afterPageFailure(
        error,
        { failed: state.failures, rateLimited: state.rateLimited },
        { retry, now: clock.now(), canDefer: onRateLimited !== undefined },
      );
      state.failures = failure.tries.failed;
      state.rateLimited = failure.tries.rateLimited;
      if (failure.next === "defer") {
        log.warn(
          {
            err: error,
            repo: fullName,
            page: state.page,
            waitSeconds: Math.round(failure.waitMs / 1000),
          },
          "catch-up page refused for a rate limit: stopped until GitHub takes requests again",
        );
        return stopFor(clock.now() + failure.waitMs);
      }
      if (failure.next === "give up")
        throw new Error(
          `${fullName}: catching up stopped at page ${state.page}: ${failure.refused ? `${failure.reason}; last: ` : ""}${describeError(error)}`,
          { cause: error },
        );
      const { waitMs } = failure;
      log.warn(
        { err: error, repo: fullName, page: state.page, attempt: state.failures, waitMs },
        "catch-up page failed; trying again",
      );
      if (!(await pauseFor(clock, waitMs, signal))) return resultOf("stopped");
      continue;
    }
    state.failures = 0;
    state.rateLimited = 0;
    const items = page.unread.slice(0, Math.max(0, max - state.taken));
    const { stored, skipped } = await storeListedItems(
      memory,
      fullName,
      items,
      listing,
      log,
      "catch-up",
    );
    for (const item of items) seen.add(item.number);
    for (const item of page.listed) listed.add(item.number);
    state.read += items.length;
    state.stored += stored;
    state.skipped.push(...skipped);
    state.taken += items.length;
    let ended = true;
    // The cap cut this page, or left none for the next: what it left out was updated since,
    // unread (the last page too).
    if (items.length < page.unread.length || (page.more && state.taken >= max)) state.capped = true;
    // GitHub lists no page past it by number: what is older is left out, as by the cap.
    else if (page.more && page.number >= LAST_LISTED_PAGE) state.capped = true;
    else if (page.more) {
      state.page++;
      ended = false;
    }
    if (ended && !nextPass()) return resultOf("done");
    const resumeAt = lowRateLimitResetAt(page.headers, clock);
    if (resumeAt === undefined) continue;
    if (onRateLimited) {
      log.warn(
        { repo: fullName, waitSeconds: Math.round((resumeAt - clock.now()) / 1000) },
        "catch-up stopped until the rate limit resets",
      );
      return stopFor(resumeAt);
    }
    await pauseForRateLimit(page.headers, clock, log, signal);
  }
}

import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { toIssueInfo } from "../github/create-repo-client.js";
import {
  describeError,
  rateLimitWaitMs,
  statusOf,
  type Octokit,
  type RepoRef,
} from "../github/octokit.js";
import {
  DEFAULT_BACKFILL_RETRY,
  isRetryable,
  LAST_LISTED_PAGE,
  pauseFor,
  pauseForRateLimit,
  storeListedItems,
  type BackfillRetry,
  type ListedItem,
  type SkippedItem,
} from "./backfill-repository.js";
import type { MemoryStore } from "./memory-store.js";

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
}

export interface CatchUpResult {
  /**
   * `done`: every item updated since was read, or the `max` most recently updated (`capped`).
   * `stopped`: the signal aborted it.
   */
  status: "done" | "stopped";
  capped: boolean;
  /** `pulls`: issues are switched off (GitHub answered 410), so only pull requests were read. */
  listing: "issues" | "pulls";
  read: number;
  stored: number;
  skipped: SkippedItem[];
}

const PER_PAGE = 100;

/** A page of items updated since `since`, and whether the listing has more of them. */
interface Page {
  items: ListedItem[];
  more: boolean;
  headers: Record<string, unknown>;
}

/**
 * The two listings, most recently updated first. The issues listing, which holds the pull
 * requests too, takes `since`; the pulls listing, read when issues are switched off, does not,
 * and ends at its first item updated before.
 */
function listingsOf({ octokit, repo, since }: CatchUpOptions) {
  const query = {
    ...repo,
    state: "all",
    sort: "updated",
    direction: "desc",
    per_page: PER_PAGE,
  } as const;
  return {
    issues: {
      read: async (page: number): Promise<Page> => {
        const { data, headers } = await octokit.rest.issues.listForRepo({ ...query, since, page });
        return { items: data, more: data.length === PER_PAGE, headers };
      },
      toIssueInfo,
    },
    pulls: {
      read: async (page: number): Promise<Page> => {
        const { data, headers } = await octokit.rest.pulls.list({ ...query, page });
        const items = data.filter((pull) => Date.parse(pull.updated_at) >= Date.parse(since));
        return { items, more: data.length === PER_PAGE && items.length === data.length, headers };
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
 * and a text already in memory is not embedded again, so a run repeated costs reads only.
 *
 * Pages are numbered with `since` fixed: an item updated while this reads moves to the first page
 * and pushes the rest one place down, so one is read twice and none is left out (the update that
 * moved it came by webhook anyway). Deleted and transferred issues are not listed: they stay
 * until their own event, as their removal cannot be seen here, or until they are about to be
 * named as similar issues, which reads them first (`keepExistingIssues`).
 */
export async function catchUpRepository(options: CatchUpOptions): Promise<CatchUpResult> {
  const { repo, memory, max, clock, log, signal } = options;
  const retry = options.retry ?? DEFAULT_BACKFILL_RETRY;
  const fullName = `${repo.owner}/${repo.repo}`;
  const listings = listingsOf(options);
  const result: CatchUpResult = {
    status: "done",
    capped: false,
    listing: "issues",
    read: 0,
    stored: 0,
    skipped: [],
  };
  let page = 1;
  let failures = 0;
  while (result.read < max) {
    if (signal?.aborted) return { ...result, status: "stopped" };
    const listing = listings[result.listing];
    let response: Page;
    try {
      response = await listing.read(page);
    } catch (error) {
      // Issues switched off: their listing, which holds the pull requests too, cannot be read.
      // The pull requests' own listing is read from its start, wherever the issues' stopped
      // (switched off between two of its pages, the first pages of pull requests were skipped).
      if (statusOf(error) === 410 && result.listing === "issues") {
        result.listing = "pulls";
        page = 1;
        continue;
      }
      failures++;
      const limitedMs = rateLimitWaitMs(error, clock.now());
      if ((!isRetryable(error) && limitedMs === undefined) || failures >= retry.attempts)
        throw new Error(
          `${fullName}: catching up stopped at page ${page}: ${describeError(error)}`,
          { cause: error },
        );
      const waitMs = limitedMs ?? Math.min(retry.maxMs, retry.baseMs * 2 ** (failures - 1));
      log.warn(
        { err: error, repo: fullName, page, attempt: failures, waitMs },
        "catch-up page failed; trying again",
      );
      if (!(await pauseFor(clock, waitMs, signal))) return { ...result, status: "stopped" };
      continue;
    }
    failures = 0;
    const items = response.items.slice(0, max - result.read);
    const { stored, skipped } = await storeListedItems(
      memory,
      fullName,
      items,
      listing,
      log,
      "catch-up",
    );
    result.read += items.length;
    result.stored += stored;
    result.skipped.push(...skipped);
    // The cap cut this page: what it left out was updated since, unread (the last page too).
    if (items.length < response.items.length) return { ...result, capped: true };
    if (!response.more) return result;
    // GitHub lists no page past it by number: what is older is left out, as by the cap.
    if (page >= LAST_LISTED_PAGE) return { ...result, capped: true };
    page++;
    await pauseForRateLimit(response.headers, clock, log, signal);
  }
  return { ...result, capped: true };
}

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import {
  describeError,
  rateLimitWaitMs,
  statusOf,
  type Octokit,
  type RepoRef,
} from "../github/octokit.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import { toIssueInfo, type IssueData, type IssueInfo } from "../github/create-repo-client.js";
import { toIssueMemory } from "./memory-inputs.js";
import { MemoryLockedError } from "./directory-lock.js";
import {
  InvalidMemoryError,
  MemoryDeletedError,
  type MemoryInput,
  type MemoryStore,
} from "./memory-store.js";

/** Where a backfill keeps its progress (a repository's memory keeps it in its directory). */
export interface BackfillProgress {
  readBackfillState(): Promise<BackfillState | undefined>;
  saveBackfillState(state: BackfillState): Promise<void>;
}

/**
 * The right to run a backfill, which its caller holds when it starts it: instances sharing a
 * database run each backfill once, and a holder that dies lets it go when its lease lapses.
 */
export interface BackfillClaim {
  /** How often to renew it while waiting: well within its lease, so that a slow page fits too. */
  readonly renewEveryMs: number;
  /** Renews it; false when another holder has it now (this one's lease lapsed meanwhile). */
  renew(): Promise<boolean>;
}

/** Another holder took a backfill over: this one stopped, and saved no progress after. */
export class BackfillTakenOverError extends Error {
  override name = "BackfillTakenOverError";
}

export interface BackfillRetry {
  /** Tries of one page, the first included, before the backfill gives up. */
  attempts: number;
  /** The wait after the first failure; it doubles after each next one. */
  baseMs: number;
  maxMs: number;
}

export interface BackfillOptions {
  octokit: Octokit;
  repo: RepoRef;
  memory: Pick<MemoryStore, "add" | "addMany">;
  /** Where progress is kept, so a restart resumes rather than starts over. */
  progress: BackfillProgress;
  /** The most issues and pull requests to index. */
  max: number;
  clock: Clock;
  log: Logger;
  onProgress?: (indexed: number, max: number) => void;
  /** Stops between pages (on shutdown); the saved progress lets the next start resume. */
  signal?: AbortSignal | undefined;
  /** How a page that fails (GitHub 5xx, the network, an embedding outage) is tried again. */
  retry?: BackfillRetry | undefined;
  /**
   * The caller's claim, renewed before each save and during every wait (a rate limit's may last
   * an hour, far beyond the lease). Without one (a file outside any registry), nothing is claimed.
   */
  claim?: BackfillClaim | undefined;
  /**
   * Told, once a page is saved and the installation's rate limit has run low, or once GitHub
   * refused to list a page for a rate limit (a 403 or 429 that says so), when to go on (ms since
   * the epoch): the backfill then returns, `running`, for the caller to run again from its
   * progress after that, rather than wait here (up to an hour) holding a queue that other
   * installations, each with a limit of its own, share. A refusal uses up none of the page's
   * tries, and those it used keep counting after (`retries`). Without it, it waits here, and a
   * refusal is one of the page's tries, as any failure is.
   */
  onRateLimited?: ((resumeAt: number) => void) | undefined;
}

export interface SkippedItem {
  number: number;
  reason: string;
}

export interface BackfillState {
  /**
   * `failed`: it gave up (see `error`); the next start tries again from `page`. `done` with
   * `issuesDisabledAt`: the pull requests are read, and the issues cannot be.
   */
  status: "running" | "done" | "failed";
  /** `owner/repo` as GitHub spelled it. */
  repo?: string;
  /**
   * The listing read: `GET /repos/{owner}/{repo}/issues` (absent), which holds the pull requests
   * too, or `pulls`, `GET /repos/{owner}/{repo}/pulls`, read instead while issues are switched
   * off. `page`, `last`, `indexed` and the skipped items are the listing's.
   */
  listing?: "pulls" | undefined;
  /** The next page of the listing to read. */
  page: number;
  /**
   * The last item read, newest first: what sorts at or before it is skipped. The pages move
   * between two reads (a stop and the resume, or any two pages): issues opened meanwhile push
   * them along (page numbers alone read items twice, and counted them twice towards `max`), and
   * issues deleted or transferred meanwhile pull them back (items move to pages already read).
   * So a page that does not start with an item read already is followed by a read of the page
   * before it, further back while a page starts with an item not read yet (see readPage).
   */
  last?: { number: number; createdAt: string } | undefined;
  /**
   * When GitHub last answered that the repository has issues switched off: 410 Gone to the
   * issues listing. Its pull requests are read from their own listing then; once that is done,
   * backfill-runner.ts checks the issues again a day later (or at once when an issue is opened).
   */
  issuesDisabledAt?: string;
  /** Issues and pull requests stored by the listing. */
  indexed: number;
  /** Items that could not be stored (the embedder refused the text, say), left out. */
  skipped?: number;
  /** The last few of them, and why. */
  skippedItems?: SkippedItem[];
  /**
   * Kept while it waits for a rate limit GitHub refused the page at `page` for (see
   * `onRateLimited`): that page's tries that failed so far, and its refusals for a rate limit,
   * in a row. The run after the wait goes on counting from them.
   */
  retries?: PageTries | undefined;
  /** Why it gave up. */
  error?: string;
  failedAt?: string;
}

/** A backfill gave up on a page; `backfill.json` says so. */
export class BackfillFailedError extends Error {
  override name = "BackfillFailedError";
}

const PER_PAGE = 100;
/**
 * Longer than any `link` header GitHub sends (four links, some 500 characters): one longer is
 * not GitHub's, and is left unread rather than scanned.
 */
const MAX_LINK_HEADER = 4_096;
/**
 * The last page GitHub lists by number: it answers page 100 of 100 (the 9,901st item on)
 * `422 Pagination with the page parameter is not supported for large datasets`, every time.
 */
export const LAST_LISTED_PAGE = 99;
// Leave the installation this share of its hourly requests for the webhooks it must answer.
const RESERVE = 0.1;
const KEPT_SKIPPED_ITEMS = 20;
// About two minutes of retries: 5 s, 10 s, 20 s, 40 s, 60 s.
export const DEFAULT_BACKFILL_RETRY: BackfillRetry = { attempts: 6, baseMs: 5_000, maxMs: 60_000 };
/**
 * Refusals of one page for a rate limit in a row, each waited out of the queue (`onRateLimited`),
 * before it fails as a page whose tries are spent: as the job runner's bound on a job's runs
 * GitHub refuses for a rate limit (MAX_RATE_LIMITED_RUNS), at least 50 minutes of waits.
 */
export const MAX_RATE_LIMITED_TRIES = 50;
const NO_TRIES: PageTries = { failed: 0, rateLimited: 0 };
// A status an embedding API answers for one input it refuses (too long, say): the item is bad,
// not the service.
const ITEM_REJECTED = new Set([400, 413, 422]);

export const backfillStateFile = (directory: string) => join(directory, "backfill.json");

export async function readBackfillState(directory: string): Promise<BackfillState | undefined> {
  try {
    return JSON.parse(await readFile(backfillStateFile(directory), "utf8")) as BackfillState;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new Error(`${backfillStateFile(directory)} is damaged: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Backfill progress in a directory's `backfill.json`, outside any memory registry. */
export function backfillProgressIn(directory: string): BackfillProgress {
  return {
    readBackfillState: () => readBackfillState(directory),
    saveBackfillState: (state) =>
      writeFileAtomically(backfillStateFile(directory), `${JSON.stringify(state)}\n`),
  };
}

/**
 * Indexes a repository's existing issues and pull requests, newest first, up to `max`: a page of
 * 100 at a time, each page one embedding batch and one durable write. Progress is saved after
 * every page, so a restart resumes where it stopped.
 *
 * - An item that cannot be stored (the embedder refuses its text) is left out, counted and
 *   logged; the rest of its page is stored.
 * - A page that fails (GitHub or the embedder unavailable) is tried again after a wait that
 *   doubles, up to `retry.attempts` tries; then the backfill gives up, and says so in its
 *   progress (`status: "failed"`), from which the next start resumes.
 * - When the installation's rate limit runs low, it waits for the reset instead of spending
 *   what webhooks need; or, with `onRateLimited`, returns for its caller to run it again then.
 * - It is done when GitHub links no next page: a page shorter than 100 is not the end while one
 *   is linked (GitHub leaves out items it hides, a spam account's, after paging). See
 *   https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
 * - A repository with issues switched off (GitHub answers 410 Gone to listing them) has its pull
 *   requests read from their own listing instead, in the same way. Once they are read, a run
 *   asked for again checks whether the issues still are off, asking only for their first page:
 *   the pull requests opened since came by webhook. Switched on again, the issues listing, which
 *   holds the pull requests too, is read from its start.
 * - Texts already in memory are not embedded again, so running it twice costs reads only.
 * - The claim is kept while it runs; once another holder has it, this stops with
 *   BackfillTakenOverError before saving anything more, so the two never overwrite each
 *   other's progress.
 */
export async function backfillRepository(options: BackfillOptions): Promise<BackfillState> {
  const { repo, max, clock, log, progress } = options;
  const retry = options.retry ?? DEFAULT_BACKFILL_RETRY;
  const fullName = `${repo.owner}/${repo.repo}`;
  const claim = keepClaim(options.claim, fullName, clock, log);
  // Progress is saved only while the claim is this backfill's: a holder that lost it would
  // otherwise set back (or mark failed) the backfill the new holder is running.
  const save = async (state: BackfillState) => {
    await claim.confirm();
    await progress.saveBackfillState(state);
  };
  const saved = await progress.readBackfillState();
  if (saved?.status === "done" && !saved.issuesDisabledAt) {
    log.info({ repo: fullName, indexed: saved.indexed }, "backfill already done");
    return saved;
  }
  // A check of a repository whose pull requests were all read with issues off: the issues'
  // first page says whether they are on again. Reading the pull requests again would cost a
  // request per 100 of them every day, for what their webhooks brought meanwhile. Until a page is
  // read, what was saved stands.
  let checking = saved?.status === "done" && saved.listing === "pulls" ? saved : undefined;
  let state: BackfillState = checking
    ? { status: "running", repo: fullName, page: 1, indexed: 0 }
    : resumedState(saved, fullName);
  // Failures in a row of the page at `state.page`, and GitHub's refusals of it for a rate limit
  // (waited out of the queue: see onRateLimited), counted on from before such a wait.
  let tries: PageTries = state.retries ?? NO_TRIES;
  while (processed(state) < max && !options.signal?.aborted) {
    let page: PageOutcome;
    // Whether the listing (GitHub) failed, rather than the storing (the embedder, the memory).
    let listing = true;
    try {
      const read = await readPage(listingOf(options, state), state);
      listing = false;
      page = await storePage(options, state, read);
    } catch (error) {
      // The memory is gone, or another process has it: nothing to record, nothing to retry.
      if (error instanceof MemoryDeletedError || error instanceof MemoryLockedError) throw error;
      // Issues switched off: GitHub answers so until someone switches them on again. The pull
      // requests, which the issues listing held, have a listing of their own.
      if (statusOf(error) === 410 && state.listing !== "pulls") {
        const issuesDisabledAt = new Date(clock.now()).toISOString();
        state = checking
          ? { ...checking, issuesDisabledAt }
          : {
              status: "running",
              repo: fullName,
              listing: "pulls",
              page: 1,
              indexed: 0,
              issuesDisabledAt,
            };
        await save(state);
        log.info(
          { repo: fullName, pullRequests: checking ? "read before" : "reading them" },
          "backfill: issues are disabled",
        );
        if (checking) return state;
        tries = NO_TRIES;
        continue;
      }
      // GitHub refused the page for the installation's rate limit: it is asked again after the
      // wait, out of the queue, from the progress saved here.
      const failure = afterPageFailure(error, tries, {
        retry,
        now: clock.now(),
        canDefer: listing && options.onRateLimited !== undefined,
      });
      tries = failure.tries;
      if (failure.next === "defer") {
        // A check saves nothing: it is made again after the wait.
        if (!checking) {
          state = { ...state, retries: tries };
          await save(state);
        }
        log.warn(
          {
            err: error,
            repo: fullName,
            page: state.page,
            waitSeconds: Math.round(failure.waitMs / 1000),
          },
          "backfill page refused for a rate limit: stopped until GitHub takes requests again",
        );
        options.onRateLimited!(clock.now() + failure.waitMs);
        return checking ?? state;
      }
      if (failure.next === "give up") {
        // A check that fails leaves what was saved, and the next start checks again.
        if (checking) throw error;
        state = {
          ...withoutRetries(state),
          status: "failed",
          error: `page ${state.page} ${failure.reason}; last: ${describeError(error)}`,
          failedAt: new Date(clock.now()).toISOString(),
        };
        // The caller reports the error; backfill.json keeps it for whoever looks later.
        await save(state);
        throw error;
      }
      const { waitMs } = failure;
      log.warn(
        { err: error, repo: fullName, page: state.page, attempt: tries.failed, waitMs },
        "backfill page failed; trying again",
      );
      if (!(await wait(clock, waitMs, options.signal, claim))) return checking ?? state;
      continue;
    }
    tries = NO_TRIES;
    checking = undefined;
    const last =
      !page.more || processed(state) + page.taken >= max || page.number >= LAST_LISTED_PAGE;
    if (last && page.more && page.number >= LAST_LISTED_PAGE)
      log.warn(
        { repo: fullName, listing: state.listing ?? "issues", page: page.number },
        "backfill: GitHub lists no page past this one by number; the older items are left out",
      );
    state = {
      ...withoutRetries(state),
      status: last ? "done" : "running",
      page: page.number + 1,
      last: page.last ?? state.last,
      indexed: state.indexed + page.stored,
      ...(page.skipped.length > 0
        ? {
            skipped: (state.skipped ?? 0) + page.skipped.length,
            skippedItems: [...(state.skippedItems ?? []), ...page.skipped].slice(
              -KEPT_SKIPPED_ITEMS,
            ),
          }
        : {}),
    };
    await save(state);
    log.info(
      { repo: fullName, indexed: state.indexed, skipped: state.skipped, max },
      "backfill progress",
    );
    options.onProgress?.(state.indexed, max);
    if (last) break;
    const resumeAt = lowRateLimitResetAt(page.headers, clock);
    if (resumeAt === undefined) continue;
    if (options.onRateLimited) {
      log.warn(
        { repo: fullName, waitSeconds: Math.round((resumeAt - clock.now()) / 1000) },
        "backfill stopped until the rate limit resets",
      );
      options.onRateLimited(resumeAt);
      return state;
    }
    await waitUntilReset(resumeAt, clock, log, options.signal, claim);
  }
  // Resumed at or past `max` (lowered since it stopped): done at the cap, as when a page reaches
  // it. Left running, every start and every `talos backfill` resumed it, read nothing, and said
  // to run it again.
  if (!checking && state.status === "running" && max > 0 && processed(state) >= max) {
    state = { ...state, status: "done" };
    await save(state);
  }
  return checking ?? state;
}

/**
 * Where a run resumes: where it stopped, or where it gave up before. Progress from before pull
 * requests had a listing of their own may say issues are off with no `listing`: the issues
 * listing is resumed, and a 410 turns to the pull requests.
 */
function resumedState(saved: BackfillState | undefined, repo: string): BackfillState {
  const state: BackfillState = { page: 1, indexed: 0, ...saved, status: "running", repo };
  delete state.error;
  delete state.failedAt;
  // The tries of a page that failed for good are spent: the next run tries it afresh.
  if (saved?.status !== "running") delete state.retries;
  if (state.listing !== "pulls") delete state.issuesDisabledAt;
  return state;
}

/** `state` without the tries a rate limit's wait kept (the page they were of is read, or failed). */
function withoutRetries(state: BackfillState): BackfillState {
  const rest = { ...state };
  delete rest.retries;
  return rest;
}

/** An item of either listing: enough of an issue or a pull request to remember it. */
export type ListedItem = IssueData & { created_at: string };

/** A listing the backfill reads, newest first, a page at a time. */
export interface Listing {
  list(page: number): Promise<{ data: ListedItem[]; headers: Record<string, unknown> }>;
  toIssueInfo(item: ListedItem): IssueInfo;
}

/**
 * The listing `state` reads. Both sort by creation, newest first, so `last` and `readBefore`
 * mean the same in each (https://docs.github.com/en/rest/issues/issues#list-repository-issues,
 * https://docs.github.com/en/rest/pulls/pulls#list-pull-requests).
 */
function listingOf(options: BackfillOptions, state: BackfillState): Listing {
  const { octokit, repo } = options;
  const query = {
    ...repo,
    state: "all",
    sort: "created",
    direction: "desc",
    per_page: PER_PAGE,
  } as const;
  if (state.listing === "pulls") {
    return {
      list: (page) => octokit.rest.pulls.list({ ...query, page }),
      // This listing's items lack the `pull_request` field that marks them in the issues one.
      toIssueInfo: (item) => ({ ...toIssueInfo(item), isPullRequest: true }),
    };
  }
  return {
    list: (page) => octokit.rest.issues.listForRepo({ ...query, page }),
    toIssueInfo,
  };
}

interface PageOutcome {
  /** The page read. */
  number: number;
  /** Whether GitHub lists a page after it. */
  more: boolean;
  /** Items within `max`, not read before. */
  taken: number;
  /** The last of those. */
  last: BackfillState["last"];
  stored: number;
  skipped: SkippedItem[];
  headers: Record<string, unknown>;
}

const processed = (state: BackfillState) => state.indexed + (state.skipped ?? 0);

/** A page read: stored in one batch, or item by item when the batch had a bad item. */
async function storePage(
  options: BackfillOptions,
  state: BackfillState,
  read: ReadPage<ListedItem>,
): Promise<PageOutcome> {
  const { memory, max, log, repo } = options;
  const fullName = `${repo.owner}/${repo.repo}`;
  const items = read.unread.slice(0, Math.max(0, max - processed(state)));
  const { stored, skipped } = await storeListedItems(
    memory,
    fullName,
    items,
    listingOf(options, state),
    log,
    "backfill",
  );
  const lastItem = items.at(-1);
  return {
    number: read.number,
    more: read.more,
    taken: items.length,
    last: lastItem && { number: lastItem.number, createdAt: lastItem.created_at },
    stored,
    skipped,
    headers: read.headers,
  };
}

/**
 * Stores listed items in one batch, or item by item when the batch held a bad item (the
 * embedder refused its text, say): that item is left out, and why is returned and logged.
 */
export async function storeListedItems(
  memory: Pick<MemoryStore, "add" | "addMany">,
  fullName: string,
  items: ListedItem[],
  listing: Pick<Listing, "toIssueInfo">,
  log: Logger,
  work: "backfill" | "catch-up",
): Promise<{ stored: number; skipped: SkippedItem[] }> {
  const skipped: SkippedItem[] = [];
  const skip = (number: number, error: unknown) => {
    skipped.push({ number, reason: describeError(error) });
    log.warn({ err: error, repo: fullName, number }, `${work} left out an item it cannot store`);
  };
  const inputs: Array<{ number: number; input: MemoryInput }> = [];
  for (const item of items) {
    try {
      inputs.push({
        number: item.number,
        input: toIssueMemory(fullName, listing.toIssueInfo(item)),
      });
    } catch (error) {
      skip(item.number, error);
    }
  }
  let stored = inputs.length;
  if (inputs.length > 0) {
    try {
      await memory.addMany(inputs.map((i) => i.input));
    } catch (error) {
      if (!isItemError(error)) throw error;
      // Some item was refused: find it, and keep the others.
      stored = 0;
      let refusedByService: unknown;
      for (const { number, input } of inputs) {
        try {
          await memory.add(input);
          stored++;
        } catch (itemError) {
          if (!isItemError(itemError)) throw itemError;
          if (!(itemError instanceof InvalidMemoryError)) refusedByService = itemError;
          skip(number, itemError);
        }
      }
      // Every item of several refused by the embedding model is the model's setup, not the
      // items (a model name it does not serve, say): the page fails, to be tried again. Each
      // skipped, the backfill had ended `done` with nothing stored, and never ran again.
      if (stored === 0 && inputs.length > 1 && refusedByService !== undefined)
        throw refusedByService;
    }
  }
  return { stored, skipped };
}

/** A page of a listing as GitHub answered it. */
export interface ListedPage<T> {
  data: T[];
  headers: Record<string, unknown>;
  /** Whether GitHub lists a page after it (see hasNextPage). */
  more: boolean;
}

/** What a listing read so far, for readListingPage. */
export interface ReadSoFar<T> {
  /** Whether any page of the listing was read before (else nothing can have moved onto one). */
  started: boolean;
  /**
   * Whether the listing listed `item` on a page read before, no later than the last item read:
   * a page that starts with one was pushed along, and nothing unread is on the pages before it.
   */
  listedBefore(item: T): boolean;
  /** Whether `item` was read before, not to be read again (by default, `listedBefore`). */
  read?: ((item: T) => boolean) | undefined;
  /**
   * Whether the listing lists `item` no later than `bound`, an item of the page asked for: of
   * the pages before it read again, what is listed after its last item is left to the next page.
   */
  listedBy(item: T, bound: T): boolean;
}

/** A page of a listing with the items not read yet that were pulled back onto the pages before. */
export interface ReadPage<T> {
  /** The page asked for. */
  number: number;
  /** Whether GitHub lists a page after it. */
  more: boolean;
  /** The latest answer's: the rate limit as it is now. */
  headers: Record<string, unknown>;
  /** Its items and those pulled back, not read before, in the listing's order, each once. */
  unread: T[];
  /** Every item of the page and of those pulled back (read before or not). */
  listed: T[];
}

/**
 * The page `page` of a listing (newest first, by whatever it sorts) and its items not read yet,
 * with those that items deleted or transferred since the page before was read pulled back onto
 * the pages before it: read again from the one before, further back while a page starts with an
 * item not read yet (more were deleted than a page holds; a page with nothing on it is past the
 * end now). That look back follows the page, so a deletion while the page was asked for is seen
 * too; one after it is seen by the next page's. It is skipped when the page starts with an item
 * listed before (items added meanwhile pushed it along): nothing unread can be before it then.
 *
 * The cost: each page after the first is two listing requests rather than one. GitHub pages
 * by offset alone (no cursor for these listings), so no cheaper read can tell. The backfill
 * (by creation) and the catch-up (by last update) read their listings so.
 */
export async function readListingPage<T extends { number: number }>(
  list: (page: number) => Promise<ListedPage<T>>,
  page: number,
  before: ReadSoFar<T>,
): Promise<ReadPage<T>> {
  const read = before.read ?? before.listedBefore;
  const response = await list(page);
  const answered = { number: page, more: response.more, headers: response.headers };
  const first = response.data[0];
  if (!before.started || page === 1 || (first && before.listedBefore(first)))
    return {
      ...answered,
      unread: response.data.filter((item) => !read(item)),
      listed: response.data,
    };
  const back = await readPagesBefore(list, page, before.listedBefore);
  // What is listed after this page's last item is left to the next page's read: taking it (more
  // than a page deleted between the two reads) would pass over those between.
  const bound = response.data.at(-1);
  const pulledBack = back.items.filter((item) => !bound || before.listedBy(item, bound));
  const listed = [...pulledBack, ...response.data];
  // An item can be on two of the pages read, moved between their reads.
  const unread = new Map(listed.filter((item) => !read(item)).map((item) => [item.number, item]));
  return {
    ...answered,
    headers: back.headers ?? answered.headers,
    unread: [...unread.values()],
    listed,
  };
}

/**
 * The items of the pages before `page`, in the listing's order: from the page before it, back
 * while a page starts with an item not listed before, or to the first page.
 */
async function readPagesBefore<T>(
  list: (page: number) => Promise<ListedPage<T>>,
  page: number,
  listedBefore: (item: T) => boolean,
) {
  const pages: T[][] = [];
  let headers: Record<string, unknown> | undefined;
  for (let number = page - 1; number >= 1; number--) {
    const response = await list(number);
    headers = response.headers;
    pages.unshift(response.data);
    const first = response.data[0];
    if (first && listedBefore(first)) break;
  }
  return { items: pages.flat(), headers };
}

/**
 * The page at `state.page` of the backfill's listing, by creation (readListingPage). Until the
 * look back followed every page, a page was read again only after a stop or a rate-limit wait,
 * and an issue deleted between two pages left one unread issue out for good.
 */
function readPage(listing: Listing, state: BackfillState): Promise<ReadPage<ListedItem>> {
  const { last } = state;
  return readListingPage(
    async (page) => {
      const response = await listing.list(page);
      return { ...response, more: hasNextPage(response.headers, response.data.length) };
    },
    state.page,
    {
      started: last !== undefined,
      listedBefore: (item) => readBefore(item, last),
      listedBy: (item, bound) =>
        readBefore(item, { number: bound.number, createdAt: bound.created_at }),
    },
  );
}

/**
 * Whether GitHub lists a page after the one answered with `headers`: its `link` header names
 * one `rel="next"`. A single page has no `link` header at all; only then does the page's
 * count say it (a full page may have a next). The header is scanned once, left to right.
 */
export function hasNextPage(headers: Record<string, unknown>, received: number): boolean {
  const link = headers["link"];
  if (typeof link !== "string" || link === "" || link.length > MAX_LINK_HEADER)
    return received >= PER_PAGE;
  // `<url>; rel="next", <url>; rel="last"` (RFC 8288): a link's parameters run from its `>`
  // to the next link's `<`. A URL holds no `<` or `>` (RFC 3986).
  for (let at = link.indexOf("<"); at >= 0;) {
    const close = link.indexOf(">", at);
    if (close < 0) return false;
    const next = link.indexOf("<", close);
    const params = link.slice(close + 1, next < 0 ? link.length : next);
    if (params.split(";").some(isRelNext)) return true;
    at = next;
  }
  return false;
}

/** A link parameter `rel="next"` (or `rel=next`, or `next` among several space-separated). */
function isRelNext(param: string): boolean {
  const [name = "", value = ""] = param.split("=", 2);
  if (name.trim().toLowerCase() !== "rel") return false;
  const rels = value.trim().replace(/,$/, "").replaceAll('"', "").toLowerCase().split(" ");
  return rels.includes("next");
}

/**
 * Whether `item` sorts at or before `last` in the listing (newest first; of two opened the same
 * second, the higher number first): read already.
 */
function readBefore(item: { number: number; created_at: string }, last: BackfillState["last"]) {
  if (!last) return false;
  const created = Date.parse(item.created_at);
  const lastCreated = Date.parse(last.createdAt);
  return created > lastCreated || (created === lastCreated && item.number >= last.number);
}

/** Refused for what it is, not for a failure of the service: tried again, it fails again. */
function isItemError(error: unknown): boolean {
  return (
    error instanceof InvalidMemoryError ||
    ITEM_REJECTED.has(statusOf(error) ?? 0) ||
    isDataException(error)
  );
}

/**
 * PostgreSQL's refusal of a value (SQLSTATE class 22: text its JSON or a timestamp cannot hold):
 * one item's data, which failed the whole page's batch at every try.
 */
function isDataException(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && /^22[0-9A-Z]{3}$/.test(code);
}

/** A listing page's tries in a row: those that failed, and GitHub's refusals for a rate limit. */
export interface PageTries {
  failed: number;
  rateLimited: number;
}

/**
 * What comes of a page that failed with `error`, the backfill's and the catch-up's alike, and its
 * tries counted on: `defer`, GitHub refused it for the installation's rate limit (only where
 * `canDefer`, the caller waiting out of the queue), which uses up none of its tries, for
 * MAX_RATE_LIMITED_TRIES in a row; `retry` after `waitMs`, backing off (a rate limit as long as
 * GitHub says: trying sooner only fails again); or `give up`, its tries spent or the error one
 * a retry cannot fix, `reason` saying which.
 */
export function afterPageFailure(
  error: unknown,
  tries: PageTries,
  { retry, now, canDefer }: { retry: BackfillRetry; now: number; canDefer: boolean },
): (
  | { next: "defer"; waitMs: number }
  | { next: "retry"; waitMs: number }
  | { next: "give up"; refused: boolean; reason: string }
) & { tries: PageTries } {
  const limitedMs = rateLimitWaitMs(error, now);
  if (canDefer && limitedMs !== undefined) {
    const counted = { ...tries, rateLimited: tries.rateLimited + 1 };
    return counted.rateLimited < MAX_RATE_LIMITED_TRIES
      ? { next: "defer", waitMs: limitedMs, tries: counted }
      : {
          next: "give up",
          refused: true,
          reason: `refused for a rate limit ${counted.rateLimited} times in a row`,
          tries: counted,
        };
  }
  const counted = { ...tries, failed: tries.failed + 1 };
  const { failed } = counted;
  if ((!isRetryable(error) && limitedMs === undefined) || failed >= retry.attempts)
    return {
      next: "give up",
      refused: false,
      reason: `failed ${failed === 1 ? "once" : `${failed} times`}`,
      tries: counted,
    };
  const waitMs = limitedMs ?? Math.min(retry.maxMs, retry.baseMs * 2 ** (failed - 1));
  return { next: "retry", waitMs, tries: counted };
}

/** A failure a later try may not meet: a server error, a rate limit, the network. */
export function isRetryable(error: unknown): boolean {
  const status = statusOf(error);
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

/** Waits `ms`, or until `signal` aborts (then false), for work that holds no claim. */
export const pauseFor = (clock: Clock, ms: number, signal: AbortSignal | undefined) =>
  wait(clock, ms, signal, NO_CLAIM);

/** Waits for the reset when the rate limit runs low, for work that holds no claim. */
export async function pauseForRateLimit(
  headers: Record<string, unknown>,
  clock: Clock,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const resumeAt = lowRateLimitResetAt(headers, clock);
  if (resumeAt === undefined) return false;
  await waitUntilReset(resumeAt, clock, log, signal, NO_CLAIM);
  return true;
}

interface ClaimKeeper {
  /** Renews the claim now; throws BackfillTakenOverError when another holder has it. */
  confirm(): Promise<void>;
  /** Renews it if a renewal is due, as confirm() does. */
  keepIfDue(): Promise<void>;
  /** Milliseconds until the next renewal is due. */
  dueIn(): number;
}

const NO_CLAIM: ClaimKeeper = {
  confirm: async () => undefined,
  keepIfDue: async () => undefined,
  dueIn: () => Infinity,
};

/** Renewals of a backfill's claim, timed by `clock`; without a claim, none. */
function keepClaim(
  claim: BackfillClaim | undefined,
  fullName: string,
  clock: Clock,
  log: Logger,
): ClaimKeeper {
  if (!claim) return NO_CLAIM;
  // The caller claimed it just before starting the backfill.
  let dueAt = clock.now() + claim.renewEveryMs;
  const confirm = async () => {
    const held = await claim.renew();
    dueAt = clock.now() + claim.renewEveryMs;
    if (!held)
      throw new BackfillTakenOverError(
        `${fullName}: another holder took the backfill over; this one stopped, saving nothing more`,
      );
  };
  return {
    confirm,
    keepIfDue: async () => {
      if (clock.now() < dueAt) return;
      try {
        await confirm();
      } catch (error) {
        if (error instanceof BackfillTakenOverError) throw error;
        // The database may be back by the next renewal, within the lease; the save that
        // follows the wait renews strictly.
        dueAt = clock.now() + claim.renewEveryMs;
        log.warn({ err: error, repo: fullName }, "backfill claim not renewed; trying again later");
      }
    },
    dueIn: () => dueAt - clock.now(),
  };
}

/**
 * Resolves true after `ms`, or false at once when `signal` aborts; renews the claim as it
 * waits, so that a wait longer than the lease does not let another holder take the backfill.
 */
async function wait(
  clock: Clock,
  ms: number,
  signal: AbortSignal | undefined,
  claim: ClaimKeeper,
): Promise<boolean> {
  const end = clock.now() + ms;
  for (let left = ms; left > 0; left = end - clock.now()) {
    await claim.keepIfDue();
    if (!(await sleep(clock, Math.min(left, Math.max(1, claim.dueIn())), signal))) return false;
  }
  return true;
}

/** Resolves true after `ms`, or false at once when `signal` aborts. */
function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal?.addEventListener("abort", onAbort, { once: true });
    void clock.sleep(ms).then(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    });
  });
}

/**
 * When the installation's rate limit, as `headers` give it, runs below its reserve: when to go
 * on (a second after the reset); undefined while enough is left.
 */
export function lowRateLimitResetAt(
  headers: Record<string, unknown>,
  clock: Clock,
): number | undefined {
  const limit = Number(headers["x-ratelimit-limit"]);
  const remaining = Number(headers["x-ratelimit-remaining"]);
  const reset = Number(headers["x-ratelimit-reset"]);
  if (!Number.isFinite(limit) || !Number.isFinite(remaining) || remaining >= limit * RESERVE)
    return undefined;
  // No reset said: nothing to wait for (as before, when the wait came out as no wait).
  if (!Number.isFinite(reset)) return undefined;
  return Math.max(clock.now(), reset * 1000) + 1_000;
}

/** Waits until `resumeAt` (a rate limit's reset), or until `signal` aborts. */
async function waitUntilReset(
  resumeAt: number,
  clock: Clock,
  log: Logger,
  signal: AbortSignal | undefined,
  claim: ClaimKeeper,
): Promise<void> {
  const waitMs = resumeAt - clock.now();
  log.warn(
    { waitSeconds: Math.round(waitMs / 1000) },
    "backfill paused until the rate limit resets",
  );
  await wait(clock, waitMs, signal, claim);
}

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Octokit, RepoRef } from "../github/octokit.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import { toIssueInfo } from "../github/create-repo-client.js";
import { toIssueMemory } from "./memory-inputs.js";
import type { MemoryStore } from "./memory-store.js";

export interface BackfillOptions {
  octokit: Octokit;
  repo: RepoRef;
  memory: MemoryStore;
  /** Where progress is kept, so a restart resumes rather than starts over. */
  directory: string;
  /** The most issues and pull requests to index. */
  max: number;
  clock: Clock;
  log: Logger;
  onProgress?: (indexed: number, max: number) => void;
  /** Stops between pages (on shutdown); the saved progress lets the next start resume. */
  signal?: AbortSignal;
}

export interface BackfillState {
  status: "running" | "done";
  /** `owner/repo` as GitHub spells it (the directory name is lower-case). */
  repo?: string;
  /** The next page of `GET /repos/{owner}/{repo}/issues` to read. */
  page: number;
  indexed: number;
}

const PER_PAGE = 100;
// Leave the installation this share of its hourly requests for the webhooks it must answer.
const RESERVE = 0.1;

export const backfillStateFile = (directory: string) => join(directory, "backfill.json");

export async function readBackfillState(directory: string): Promise<BackfillState | undefined> {
  try {
    return JSON.parse(await readFile(backfillStateFile(directory), "utf8")) as BackfillState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${backfillStateFile(directory)} is damaged: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Indexes a repository's existing issues and pull requests, newest first, up to `max`: a page of
 * 100 at a time, each page one embedding batch and one durable write. Progress is saved after
 * every page, so a restart resumes where it stopped. When the installation's rate limit runs
 * low, it waits for the reset instead of spending what webhooks need. Texts already in memory
 * are not embedded again, so running it twice costs reads only.
 */
export async function backfillRepository(options: BackfillOptions): Promise<BackfillState> {
  const { octokit, repo, memory, directory, max, clock, log } = options;
  const fullName = `${repo.owner}/${repo.repo}`;
  let state: BackfillState = (await readBackfillState(directory)) ?? {
    status: "running",
    page: 1,
    indexed: 0,
  };
  if (state.status === "done") {
    log.info({ repo: fullName, indexed: state.indexed }, "backfill already done");
    return state;
  }
  while (state.indexed < max && !options.signal?.aborted) {
    const response = await octokit.rest.issues.listForRepo({
      ...repo,
      state: "all",
      sort: "created",
      direction: "desc",
      per_page: PER_PAGE,
      page: state.page,
    });
    const items = response.data.slice(0, max - state.indexed);
    if (items.length > 0) {
      await memory.addMany(items.map((item) => toIssueMemory(fullName, toIssueInfo(item))));
    }
    const last = response.data.length < PER_PAGE || state.indexed + items.length >= max;
    state = {
      status: last ? "done" : "running",
      repo: fullName,
      page: state.page + 1,
      indexed: state.indexed + items.length,
    };
    await writeFileAtomically(backfillStateFile(directory), JSON.stringify(state));
    log.info({ repo: fullName, indexed: state.indexed, max }, "backfill progress");
    options.onProgress?.(state.indexed, max);
    if (last) break;
    await waitForRateLimit(response.headers, clock, log, options.signal);
  }
  return state;
}

async function waitForRateLimit(
  headers: Record<string, unknown>,
  clock: Clock,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<void> {
  const limit = Number(headers["x-ratelimit-limit"]);
  const remaining = Number(headers["x-ratelimit-remaining"]);
  const reset = Number(headers["x-ratelimit-reset"]);
  if (!Number.isFinite(limit) || !Number.isFinite(remaining) || remaining >= limit * RESERVE)
    return;
  const waitMs = Math.max(0, reset * 1000 - clock.now()) + 1_000;
  log.warn(
    { remaining, limit, waitSeconds: Math.round(waitMs / 1000) },
    "backfill paused until the rate limit resets",
  );
  await new Promise<void>((resolve) => {
    signal?.addEventListener("abort", () => resolve(), { once: true });
    void clock.sleep(waitMs).then(resolve);
  });
}

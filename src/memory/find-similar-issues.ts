import type { Logger } from "pino";
import { escapeMarkdown } from "../markdown/safe-text.js";
import { NotInRepoError, type IssueInfo, type RepoClient } from "../github/create-repo-client.js";
import { statusOf } from "../github/octokit.js";
import { issueMemoryId, issueMemoryText } from "./memory-inputs.js";
import type { MemoryStore, SearchHit, SearchOptions } from "./memory-store.js";

/** A similar issue kept, with the issue as GitHub has it now when it was read. */
export interface ExistingHit extends SearchHit {
  /** Absent for a pull request (not read), and for an issue kept without a read. */
  issue?: IssueInfo;
}

export interface SimilarSettings {
  max: number;
  /** Defaults to the store's embedder's own notion of related. */
  threshold?: number | undefined;
}

/** Issues and pull requests in this repository's memory that resemble `issue`, best first. */
export function findSimilarIssues(
  memory: MemoryStore,
  issue: IssueInfo,
  settings: SimilarSettings,
): Promise<SearchHit[]> {
  return memory.search(
    issueMemoryText(issue),
    similarSearchOptions(issue.number, settings, memory.relatedScore),
  );
}

/** The search `findSimilarIssues` makes for issue `number` (the similar bench replays it). */
export function similarSearchOptions(
  number: number,
  settings: SimilarSettings,
  relatedScore: number,
): SearchOptions {
  return {
    k: settings.max,
    kinds: ["issue", "pull_request"],
    // Issues and pull requests share numbers: neither is its own match.
    excludeIds: [issueMemoryId(number, false), issueMemoryId(number, true)],
    minScore: similarityThreshold({ relatedScore }, settings),
    // A short issue ("Typo in docs") is still an issue's text: its keyword hits had been named
    // below the threshold, even at 1, the fallback that promises identical text only.
    shortQueryKeywords: false,
  };
}

/**
 * The hits GitHub still has in this repository, read through the cached client, in their order.
 * Memory misses a deletion or a transfer made while Talos was down longer than a redelivery
 * reaches: the catch-up after an outage lists only what exists. An issue GitHub says was deleted
 * (410), or whose read it redirected to another repository, by id (transferred), is forgotten as
 * its own event would have done, and left out. A read redirected to this very repository is of
 * its old name (renamed, or moved to another owner, since the event): the issue is kept. Any
 * other 404 or 410, or a redirect whose repository is not known, only leaves it out of this
 * answer: a token that cannot see it, or issues switched off in the repository (410 too), may
 * come back. Any other failure keeps the hit, so an outage hides nothing. Pull requests are
 * neither deleted nor transferred: they are not read. A hit comes with the issue read, whose
 * title is named: memory's may be older (an edit made while memory was off is not followed).
 */
export async function keepExistingIssues(
  hits: SearchHit[],
  {
    github,
    memory,
    log,
  }: {
    github: Pick<RepoClient, "getIssue" | "getRepository">;
    memory: Pick<MemoryStore, "forgetThread">;
    log: Logger;
  },
): Promise<ExistingHit[]> {
  const kept = await Promise.all(
    hits.map(async (hit): Promise<ExistingHit | undefined> => {
      const { kind, number } = hit.record;
      if (kind !== "issue" || number === undefined) return hit;
      try {
        return { ...hit, issue: await github.getIssue(number) };
      } catch (error) {
        const status = statusOf(error);
        const moved =
          error instanceof NotInRepoError ? await whereMoved(error, github, log) : undefined;
        if (moved === "here") return hit;
        if (isDeleted(error) || moved === "elsewhere") {
          // Left out either way: a memory that cannot write now forgets it the next time.
          await memory.forgetThread(number).then(
            (removed) =>
              log.info({ number, status, removed }, "similar issue gone from GitHub: forgotten"),
            (failure: unknown) =>
              log.warn({ err: failure, number }, "similar issue gone from GitHub, not forgotten"),
          );
          return undefined;
        }
        if (status === 404 || status === 410) {
          log.warn({ number, status }, "similar issue not found on GitHub: left out");
          return undefined;
        }
        log.warn({ err: error, number }, "similar issue not checked on GitHub: kept");
        return hit;
      }
    }),
  );
  return kept.filter((hit) => hit !== undefined);
}

/**
 * Where the issue GitHub redirected a read of is: "here" when the redirect went to this very
 * repository, "elsewhere" when to another one (transferred away), undefined when that is not
 * known. The repository's name cannot tell: GitHub redirects a read under its old name (a
 * redelivery, a job journaled or replayed from before a rename) to the same repository by id, and
 * its issues carry the new name. Forgetting refuses every later write of the number for good, so
 * only ids, which no rename changes, decide it; one read of the repository, and only then.
 */
async function whereMoved(
  error: NotInRepoError,
  github: Pick<RepoClient, "getRepository">,
  log: Logger,
): Promise<"here" | "elsewhere" | undefined> {
  if (error.movedTo === undefined) return undefined;
  try {
    return (await github.getRepository()).id === error.movedTo ? "here" : "elsewhere";
  } catch (failure) {
    log.warn({ err: failure }, "repository not read: a redirected similar issue is not forgotten");
    return undefined;
  }
}

/**
 * GitHub's 410 for a deleted issue ("This issue was deleted"), not its 410 for issues switched
 * off in the repository ("Issues are disabled for this repo").
 */
function isDeleted(error: unknown): boolean {
  return (
    statusOf(error) === 410 &&
    error instanceof Error &&
    /\bwas deleted\b/i.test(error.message.slice(0, 200))
  );
}

/**
 * A cosine similarity of embeddings, as before the hybrid search: its order is the hybrid's
 * (near-exact duplicates, then vectors and BM25 fused), but a hit must still reach this, except
 * a near-exact duplicate (the same error line, panic message or trace), which is shown below it.
 * An issue's text shares some word with almost any other, so keyword hits alone are no gate.
 */
export function similarityThreshold(
  memory: Pick<MemoryStore, "relatedScore">,
  settings: SimilarSettings,
): number {
  return settings.threshold ?? memory.relatedScore;
}

/**
 * `#12 (Crash on save), #34 (…)`. The title is the one GitHub shows, when the issue was read; else
 * memory's, the first line of its text. Titles are issue authors' text: cut, then escaped so that
 * they read as the plain text they are (the reply as a whole goes through `toSafeMarkdown` too).
 */
export function renderSimilarIssues(hits: ExistingHit[]): string {
  return hits
    .map(({ record, issue }) => {
      const text = issue?.title ?? record.text;
      const title = text.slice(0, 400).split("\n")[0]!.trim();
      const cut = title.length > 120 ? `${title.slice(0, 119)}…` : title;
      return `#${record.number} (${escapeMarkdown(cut)})`;
    })
    .join(", ");
}

import { escapeMarkdown } from "../markdown/safe-text.js";
import type { IssueInfo } from "../github/create-repo-client.js";
import { issueMemoryId, issueMemoryText } from "./memory-inputs.js";
import type { MemoryStore, SearchHit } from "./memory-store.js";

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
  return memory.search(issueMemoryText(issue), {
    k: settings.max,
    kinds: ["issue", "pull_request"],
    // Issues and pull requests share numbers: neither is its own match.
    excludeIds: [issueMemoryId(issue.number, false), issueMemoryId(issue.number, true)],
    minScore: similarityThreshold(memory, settings),
  });
}

/**
 * A cosine similarity of embeddings, as before the hybrid search: its order is the hybrid's
 * (near-exact duplicates, then vectors and BM25 fused), but a hit must still reach this, except
 * a near-exact duplicate (the same error line, panic message or trace), which is shown below it.
 * An issue's text shares some word with almost any other, so keyword hits alone are no gate.
 */
export function similarityThreshold(memory: MemoryStore, settings: SimilarSettings): number {
  return settings.threshold ?? memory.relatedScore;
}

/**
 * `#12 (Crash on save), #34 (…)`. Titles are issue authors' text: cut, then escaped so that they
 * read as the plain text they are (the reply as a whole goes through `toSafeMarkdown` too).
 */
export function renderSimilarIssues(hits: SearchHit[]): string {
  return hits
    .map(({ record }) => {
      const title = record.text.slice(0, 400).split("\n")[0]!.trim();
      const cut = title.length > 120 ? `${title.slice(0, 119)}…` : title;
      return `#${record.number} (${escapeMarkdown(cut)})`;
    })
    .join(", ");
}

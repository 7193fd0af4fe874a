import { describe, expect, it } from "vitest";
import { BudgetExceededError, TokenBudgets } from "../../src/agent/token-budgets.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { loadPullRequestChanges } from "../../src/pulls/load-pull-request-changes.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs } from "../helpers/test-app.js";

/** An added file of `lines` lines (about 50 bytes each). */
function addedFile(filename: string, lines: number) {
  const added = Array.from(
    { length: lines },
    (_, i) => `+const value${i} = compute(${i}, "some text here");`,
  );
  return {
    filename,
    status: "added",
    additions: lines,
    deletions: 0,
    changes: lines,
    patch: `@@ -0,0 +1,${lines} @@\n${added.join("\n")}`,
  };
}

/** A pull request of added files (one of `lines` lines by default), read within budgets. */
async function load(options: {
  jobTokens: number;
  dailyTokens: number;
  maxTokens: number;
  lines?: number;
  files?: Array<ReturnType<typeof addedFile>>;
}) {
  const logs = await captureLogs("warn");
  const budgets = await TokenBudgets.open({
    dailyTokens: options.dailyTokens,
    jobTokens: options.jobTokens,
    clock: createFakeClock(),
    log: logs.log,
    metrics: createMetrics(),
  });
  const account = await budgets.account({ installation: 1, repository: 10 });
  const files = options.files ?? [addedFile("src/big.ts", options.lines ?? 0)];
  const notFound = Object.assign(new Error("Not Found"), { status: 404 });
  return loadPullRequestChanges({
    github: { getFile: () => Promise.reject(notFound) } as never,
    pulls: { listFiles: async () => ({ files, unlisted: 0 }) } as never,
    pull: {
      number: 2,
      headSha: "h",
      baseSha: "b",
      baseRef: "main",
      changedFiles: files.length,
    } as never,
    settings: { max_tokens: options.maxTokens, ignore: [] } as never,
    assistant: {
      limits: { maxTokens: options.jobTokens, maxOutputTokens: 1_500 } as never,
      account,
      scrub: (text: string) => text,
    } as never,
  });
}

describe("a pull request's diff within the token budgets", () => {
  it("is refused as over budget when spending, not the settings, left room for no file", async () => {
    // A 1,000-token day: the review's prompt and answer do not fit, let alone the file.
    await expect(
      load({ jobTokens: 60_000, dailyTokens: 1_000, maxTokens: 20_000, lines: 100 }),
    ).rejects.toBeInstanceOf(BudgetExceededError);
  });

  it("is refused as over budget when spending, not the settings, left out some of the files", async () => {
    // 6,500 tokens are reserved (prompt and answer); the day leaves about 7,000 for the diff,
    // where `review.max_tokens` has room for both files (about 5,400 each). Read in part, the
    // other file was listed as over `review.max_tokens`, and the review (or summary) of the rest
    // stood as the head's: the next push's run started after it, and that file was never read.
    const files = [addedFile("src/a.ts", 100), addedFile("src/b.ts", 100)];
    await expect(
      load({ jobTokens: 60_000, dailyTokens: 13_500, maxTokens: 20_000, files }),
    ).rejects.toBeInstanceOf(BudgetExceededError);
    // With the day's room for both, both are read.
    const changes = await load({
      jobTokens: 60_000,
      dailyTokens: 20_000,
      maxTokens: 20_000,
      files,
    });
    expect(changes.selection.reviewed.map((r) => r.file.filename)).toEqual([
      "src/a.ts",
      "src/b.ts",
    ]);
  });

  it.each([
    // About 16,000 bytes of diff: over the 13,500 tokens a 20,000-token run leaves, under
    // `review.max_tokens`.
    ["TALOS_AGENT_MAX_TOKENS is 20000", { jobTokens: 20_000, maxTokens: 20_000, lines: 300 }],
    [
      "`review.max_tokens` is over TALOS_AGENT_MAX_TOKENS",
      { jobTokens: 60_000, maxTokens: 100_000, lines: 1_200 },
    ],
  ])(
    "lists a file too big for a run as not fitting, on a fresh day, when %s",
    async (_case, options) => {
      // Refused as over budget at every try and every day, a run-sized limit had read as a spent
      // day, and automatic summaries of such a pull request were skipped for good (found by a
      // review of the refusal).
      const changes = await load({ ...options, dailyTokens: 2_000_000 });
      expect(changes.selection.reviewed).toEqual([]);
      expect(changes.selection.skipped).toEqual([
        expect.objectContaining({ path: "src/big.ts", reason: "over-budget" }),
      ]);
    },
  );
});

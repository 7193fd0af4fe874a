import { describe, expect, it } from "vitest";
import { runGitHubBench } from "../bench/github-bench.js";
import { runPromptsBench } from "../bench/prompts-bench.js";

// The benchmarks run here so that a change cannot break them unnoticed. Their figures are for
// people to read: nothing here is about speed.
describe("the benchmarks", () => {
  it("prompts: the cached library reads no file per event", async () => {
    const result = await runPromptsBench({ json: true });
    expect(result.cached.readsPerEvent).toBe(0);
    expect(result.naive.readsPerEvent).toBeGreaterThan(0);
  });

  it("github: the cache answers most config, repository and label reads", async () => {
    const result = await runGitHubBench({ json: true });
    expect(result.cacheOn.requests).toBeLessThan(result.cacheOff.requests);
    expect(result.cacheOn.notModified).toBeGreaterThan(0);
    expect(Object.keys(result.cacheOn.hitRatio).sort()).toEqual(["config", "labels", "repo"]);
  }, 120_000);
});

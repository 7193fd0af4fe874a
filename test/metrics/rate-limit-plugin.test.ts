import { describe, expect, it } from "vitest";
import { githubScope, mockInstallationToken } from "../helpers/github-mocks.js";
import { createTestApp } from "../helpers/test-app.js";

describe("the rate-limit plugin", () => {
  // A proxy or a GitHub Enterprise Server may send the counts without the reset time: the
  // bookkeeping must not turn the answer into a failure.
  it("lets a low-remaining response without a usable x-ratelimit-reset through, and warns", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    for (const [issue, reset] of [
      [1, undefined],
      [2, "1e20"],
    ] as const) {
      const headers: Record<string, string> = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "10",
        "x-ratelimit-resource": reset === undefined ? "core" : "search",
      };
      if (reset !== undefined) headers["x-ratelimit-reset"] = reset;
      scope.get(`/repos/Codertocat/Hello-World/issues/${issue}/comments`).reply(200, [], headers);
    }
    const octokit = await app.probot.auth(2);

    for (const issue of [1, 2]) {
      const { data } = await octokit.rest.issues.listComments({
        owner: "Codertocat",
        repo: "Hello-World",
        issue_number: issue,
      });
      expect(data).toEqual([]);
    }

    expect(scope.pendingMocks()).toEqual([]);
    const warnings = app.logs
      .lines()
      .filter((l) => l.msg === "GitHub rate limit below 10% of the limit");
    expect(warnings).toEqual([
      expect.objectContaining({ resource: "core", remaining: 10 }),
      expect.objectContaining({ resource: "search", remaining: 10 }),
    ]);
    // No reset time is better than a made-up one.
    expect(warnings.map((w) => "reset" in w)).toEqual([false, false]);
    const gauge = await app.talos.metrics.githubRateLimitRemaining.get();
    expect(gauge.values.map((v) => v.value)).toEqual([10, 10]);
  });
});

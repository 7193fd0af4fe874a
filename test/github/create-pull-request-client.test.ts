// The pull-request client over GitHub's REST answers (nock), as the reviews use it.
import { ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { createPullRequestClient } from "../../src/github/create-pull-request-client.js";
import { githubScope } from "../helpers/github-mocks.js";
import { BOT } from "../helpers/run-review.js";

const HEAD = "a".repeat(40);
const others = (n: number, from = 1) =>
  Array.from({ length: n }, (_, i) => ({
    id: from + i,
    user: { login: `person${i}` },
    body: `LGTM ${i}`,
    commit_id: "b".repeat(40),
    html_url: `https://github.com/o/r/pull/2#pullrequestreview-${from + i}`,
  }));

describe("createPullRequestClient", () => {
  it("lists every page of a pull request's reviews (more than 100), so an earlier one of Talos's is found", async () => {
    const scope = githubScope();
    const next = `<https://api.github.com/repos/o/r/pulls/2/reviews?per_page=100&page=2>; rel="next", <https://api.github.com/repos/o/r/pulls/2/reviews?per_page=100&page=2>; rel="last"`;
    scope
      .get("/repos/o/r/pulls/2/reviews")
      .query({ per_page: "100" })
      .reply(200, others(100), { link: next });
    scope
      .get("/repos/o/r/pulls/2/reviews")
      .query({ per_page: "100", page: "2" })
      .reply(200, [
        ...others(20, 101),
        {
          id: 500,
          user: { login: BOT },
          body: `Review.\n\n<!-- talos:review:${HEAD}:1 -->`,
          commit_id: HEAD,
          html_url: "https://github.com/o/r/pull/2#pullrequestreview-500",
        },
      ]);
    const octokit = new ProbotOctokit({
      auth: { token: "ghs_test" },
      retry: { enabled: false },
      throttle: { enabled: false },
    });
    const reviews = await createPullRequestClient(octokit, { owner: "o", repo: "r" }).listReviews(
      2,
    );
    expect(reviews).toHaveLength(121);
    expect(reviews.at(-1)?.author).toBe(BOT);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

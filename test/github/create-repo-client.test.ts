import { ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { createRepoClient, stripSearchQualifiers } from "../../src/github/create-repo-client.js";
import { searchIssuesTool } from "../../src/tools/search-issues.js";
import { githubScope } from "../helpers/github-mocks.js";
import { expectLinearTime } from "../helpers/hostile-input.js";
import { captureLogs } from "../helpers/test-app.js";

describe("stripSearchQualifiers", () => {
  it.each([
    ["crash repo:other/secret", "crash"],
    ["crash REPO:other/secret on save", "crash on save"],
    ["-repo:acme/widgets crash", "crash"],
    ['crash repo:"other/secret" label:bug', "crash label:bug"],
    ['crash repo:"unclosed quote and more', "crash"],
    ["crash org:acme user:octocat owner:someone", "crash"],
    ["crash repo: other/secret", "crash"],
    ["crash repo :other/secret", "crash"],
    ["crash repo : other/secret", "crash"],
    ["the repo is slow", "the repo is slow"],
    ["reporter:me label:bug is:open", "reporter:me label:bug is:open"],
    ['"exact phrase" in:title', '"exact phrase" in:title'],
    // In parentheses (GitHub's issue search groups with them), and with boolean operators:
    // `a OR repo:x` would match `a` in any repository, whatever `repo:` comes after it.
    ["(repo:other/secret) crash", "crash"],
    ["crash (org:other)", "crash"],
    ["crash OR (user:someone)", "crash"],
    ["crash or save AND NOT load", "crash save load"],
    ['"a (phrase) OR b"', '"a (phrase) OR b"'],
    // A quote left open would make the `repo:` appended after the query part of a phrase, and a
    // backslash escapes a quote.
    ['crash "on save', "crash on save"],
    ['crash "on save\\" now', 'crash "on save" now'],
    [`${"x".repeat(195)} "quoted phrase"`, `${"x".repeat(195)} quo`],
  ])("%j → %j", (query, expected) => {
    expect(stripSearchQualifiers(query)).toBe(expected);
  });

  it("takes linear time on hostile input", async () => {
    await expectLinearTime(stripSearchQualifiers);
  }, 120_000);
});

/** The client of acme/widgets, over an Octokit that neither retries nor throttles. */
function widgetsClient() {
  const octokit = new ProbotOctokit({
    auth: { token: "ghs_test" },
    retry: { enabled: false },
    throttle: { enabled: false },
  });
  return createRepoClient(octokit, { owner: "acme", repo: "widgets" });
}

describe("search_issues", () => {
  it("searches this repository only, whatever the model writes", async () => {
    const github = widgetsClient();
    const scope = githubScope();
    scope
      .get("/search/issues")
      .query({ q: "crash repo:acme/widgets state:open", per_page: "5" })
      .reply(200, {
        total_count: 2,
        items: [
          {
            number: 7,
            title: "Crash on save",
            state: "open",
            html_url: "https://github.com/acme/widgets/issues/7",
            repository_url: "https://api.github.com/repos/acme/widgets",
          },
          // GitHub ORs `repo:` qualifiers: a result from elsewhere is dropped all the same.
          {
            number: 9,
            title: "Secret",
            state: "open",
            html_url: "https://github.com/other/secret/issues/9",
            repository_url: "https://api.github.com/repos/other/secret",
          },
        ],
      });
    const { log } = await captureLogs("warn");

    const result = await searchIssuesTool.execute(
      { query: 'crash repo:other/secret org:other -repo:"x/y"', state: "open", limit: 5 },
      { github, log },
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(result).toBe("#7 [open] Crash on save");
    expect([...github.retrieved]).toEqual([7]);
  });

  it("keeps the repository scope outside a phrase the model left open", async () => {
    const github = widgetsClient();
    const scope = githubScope();
    scope
      .get("/search/issues")
      .query({ q: "crash on save repo:acme/widgets", per_page: "5" })
      .reply(200, { total_count: 0, items: [] });

    await github.searchIssues('crash "on save', { limit: 5 });

    expect(scope.pendingMocks()).toEqual([]);
  });
});

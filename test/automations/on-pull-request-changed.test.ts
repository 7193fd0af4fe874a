import { describe, expect, it } from "vitest";
import {
  skipReason,
  type PullRequestEvent,
} from "../../src/automations/on-pull-request-changed.js";
import { RepoConfigSchema } from "../../src/config.js";
import { parseRepoConfig } from "../../src/parse-repo-config.js";

function event(changes: Partial<PullRequestEvent> & { title?: string; author?: string } = {}) {
  const { title = "Add a dark theme", author = "octocat", ...rest } = changes;
  return {
    action: "opened",
    installation: 2,
    repository: 186853002,
    issue: {
      number: 2,
      title,
      body: "",
      state: "open",
      author,
      labels: [],
      isPullRequest: true,
      url: "https://github.com/o/r/pull/2",
      createdAt: "",
    },
    draft: false,
    authorIsBot: false,
    automatic: true,
    baseChanged: false,
    ...rest,
  } satisfies PullRequestEvent;
}

describe("skipReason", () => {
  const defaults = RepoConfigSchema.parse({});

  it("lets a ready pull request by a person through", () => {
    expect(skipReason(event(), defaults)).toBeUndefined();
  });

  it.each([
    ["WIP: dark theme", "its title matches pull_requests.ignore_title"],
    ["[wip] dark theme", "its title matches pull_requests.ignore_title"],
    ["Skip Talos: bump", "its title matches pull_requests.ignore_title"],
  ])("skips the title %j by default", (title, reason) => {
    expect(skipReason(event({ title }), defaults)).toBe(reason);
  });

  it("does not take a word that starts with wip for a WIP marker", () => {
    expect(skipReason(event({ title: "Wipe the cache on logout" }), defaults)).toBeUndefined();
  });

  it("skips drafts, closed pull requests, bots (Apps and the dependency bots' user accounts) and bot senders", () => {
    expect(skipReason(event({ draft: true }), defaults)).toBe("the pull request is a draft");
    const closed = event();
    closed.issue.state = "closed";
    expect(skipReason(closed, defaults)).toBe("the pull request is closed");
    for (const author of ["dependabot[bot]", "renovate[bot]", "renovate-bot", "Dependabot"])
      expect(skipReason(event({ author }), defaults)).toBe("a bot opened the pull request");
    expect(skipReason(event({ authorIsBot: true }), defaults)).toBe(
      "a bot opened the pull request",
    );
    expect(skipReason(event({ automatic: false }), defaults)).toBe("a bot sent the event");
  });

  it("lets a retarget through, and no other edit; a bot's retarget runs nothing either", () => {
    expect(skipReason(event({ action: "edited", baseChanged: true }), defaults)).toBeUndefined();
    expect(skipReason(event({ action: "edited" }), defaults)).toBe(
      "the edit did not change the base",
    );
    expect(
      skipReason(event({ action: "edited", baseChanged: true, automatic: false }), defaults),
    ).toBe("a bot sent the event");
  });

  it("honours ignore_authors (any case) and a custom title pattern, and skips everything when the pattern is broken", () => {
    const config = parseRepoConfig({
      pull_requests: { ignore_authors: ["OctoCat"], ignore_title: "^release:" },
    }).config;
    expect(skipReason(event(), config)).toBe("its author is in pull_requests.ignore_authors");
    expect(skipReason(event({ author: "hubot", title: "Release: 2.0" }), config)).toBe(
      "its title matches pull_requests.ignore_title",
    );
    expect(
      skipReason(event({ author: "hubot", title: "WIP but not ignored here" }), config),
    ).toBeUndefined();
    const broken = parseRepoConfig({ pull_requests: { ignore_title: "(x)\\1" } }).config;
    expect(skipReason(event(), broken)).toBe("its title matches pull_requests.ignore_title");
  });

  it("runs a catastrophic pattern in linear time (RE2): (a+)+$ over a hostile title", () => {
    const config = parseRepoConfig({ pull_requests: { ignore_title: "(a+)+$" } }).config;
    const time = (n: number) => {
      const title = `${"a".repeat(n)}!`;
      const runs: number[] = [];
      for (let i = 0; i < 7; i++) {
        const started = performance.now();
        skipReason(event({ title }), config);
        runs.push(performance.now() - started);
      }
      return runs.sort((a, b) => a - b)[3]!;
    };
    time(64);
    // The title is capped at GitHub's 256 characters; within it, time grows at most linearly.
    expect(time(256) / Math.max(time(64), 0.01)).toBeLessThan(16);
    expect(skipReason(event({ title: "ab".repeat(5_000) }), config)).toBeUndefined();
  });
});

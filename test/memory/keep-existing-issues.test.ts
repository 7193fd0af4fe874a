import { RequestError } from "@octokit/request-error";
import { ProbotOctokit } from "probot";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createRepoClient } from "../../src/github/create-repo-client.js";
import { keepExistingIssues } from "../../src/memory/find-similar-issues.js";
import type { SearchHit } from "../../src/memory/memory-store.js";
import { githubScope, INSTALLATION_TOKEN } from "../helpers/github-mocks.js";

const hit = (kind: "issue" | "pull_request", number: number) =>
  ({
    record: {
      id: `${kind}-${number}`,
      kind,
      repo: "acme/widgets",
      number,
      text: `${kind} ${number}`,
      createdAt: "2026-11-01T10:00:00.000Z",
    },
    score: 0.9,
    keyword: false,
  }) as SearchHit;

const deleted = () =>
  new RequestError("This issue was deleted", 410, {
    request: { method: "GET", url: "/repos/acme/widgets/issues/1", headers: {} },
    response: {
      status: 410,
      url: "/repos/acme/widgets/issues/1",
      headers: {},
      data: { message: "This issue was deleted" },
    },
  });

describe("keeping the similar issues GitHub still has", () => {
  it("leaves out a deleted issue even when memory cannot forget it, and reads no pull request", async () => {
    const lines: Array<{ msg: string; number?: number }> = [];
    const log = pino({}, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const read: number[] = [];
    const kept = await keepExistingIssues([hit("issue", 1), hit("pull_request", 2)], {
      github: {
        getIssue: (number) => {
          read.push(number);
          return Promise.reject(deleted());
        },
        getRepository: () => Promise.reject(new Error("a deletion needs no repository read")),
      },
      memory: { forgetThread: () => Promise.reject(new Error("memory of acme/widgets is closed")) },
      log,
    });
    expect(kept.map((h) => h.record.id)).toEqual(["pull_request-2"]);
    expect(read).toEqual([1]);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "similar issue gone from GitHub, not forgotten", number: 1 }),
    );
  });
});

// A job whose payload still names the repository as it was before a rename (a redelivery, a job
// journaled before the rename, the outage catch-up's replay): GitHub answers the old name's
// issue read with a 301 to the same repository by id, and the issue carries the new name.
describe("similar issues read under the repository's old name", () => {
  const REPOSITORY_ID = 4242;

  function client() {
    const octokit = new ProbotOctokit({
      auth: { token: INSTALLATION_TOKEN },
      retry: { enabled: false },
      throttle: { enabled: false },
    });
    return createRepoClient(octokit, { owner: "acme", repo: "widgets" });
  }

  /** Issue 12 of acme/widgets redirected to issue `number` of the repository with id `to`. */
  function redirectedIssue(to: number, number: number, fullName: string) {
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/issues/12")
      .reply(301, "", { location: `https://api.github.com/repositories/${to}/issues/${number}` })
      .get(`/repositories/${to}/issues/${number}`)
      .reply(200, {
        number,
        title: `Crash on save ${number}`,
        body: "",
        state: "open",
        user: { login: "someone" },
        labels: [],
        html_url: `https://github.com/${fullName}/issues/${number}`,
        repository_url: `https://api.github.com/repos/${fullName}`,
        created_at: "2026-11-01T10:00:00Z",
        updated_at: "2026-11-01T10:00:00Z",
      })
      // The repository, read under the same old name: redirected to it by id, with its new name.
      .get("/repos/acme/widgets")
      .reply(301, "", { location: `https://api.github.com/repositories/${REPOSITORY_ID}` })
      .get(`/repositories/${REPOSITORY_ID}`)
      .reply(200, {
        id: REPOSITORY_ID,
        full_name: "acme/gadgets",
        default_branch: "main",
        private: false,
        visibility: "public",
        archived: false,
        description: null,
      });
    return scope;
  }

  async function keep() {
    const forgotten: number[] = [];
    const kept = await keepExistingIssues([hit("issue", 12)], {
      github: client(),
      memory: {
        forgetThread: (number) => {
          forgotten.push(number);
          return Promise.resolve(1);
        },
      },
      log: pino({ level: "silent" }),
    });
    return { kept: kept.map((h) => h.record.number), forgotten };
  }

  it("keeps, and never forgets, an issue still in the repository renamed since the event", async () => {
    // Same repository (same id), its new name.
    const scope = redirectedIssue(REPOSITORY_ID, 12, "acme/gadgets");
    const { kept, forgotten } = await keep();
    expect(scope.pendingMocks()).toEqual([]);
    // forgetThread refuses every later write of #12 for good (edits, backfill): an issue that
    // still exists must never be forgotten because the event spelt its repository's old name.
    expect(forgotten).toEqual([]);
    expect(kept).toEqual([12]);
  });

  it("forgets an issue transferred to another repository, renamed or not", async () => {
    const scope = redirectedIssue(999, 7, "acme/secret");
    const { kept, forgotten } = await keep();
    expect(scope.pendingMocks()).toEqual([]);
    expect(forgotten).toEqual([12]);
    expect(kept).toEqual([]);
  });

  it("leaves out, without forgetting, a redirected issue when the repository cannot be read", async () => {
    const scope = githubScope();
    scope
      .get("/repos/acme/widgets/issues/12")
      .reply(301, "", { location: "https://api.github.com/repositories/999/issues/7" })
      .get("/repositories/999/issues/7")
      .reply(200, {
        number: 7,
        title: "Crash on save 7",
        state: "open",
        html_url: "https://github.com/acme/secret/issues/7",
        repository_url: "https://api.github.com/repos/acme/secret",
      })
      .get("/repos/acme/widgets")
      .reply(502, { message: "Server Error" });
    const { kept, forgotten } = await keep();
    expect(scope.pendingMocks()).toEqual([]);
    expect(forgotten).toEqual([]);
    expect(kept).toEqual([]);
  });
});

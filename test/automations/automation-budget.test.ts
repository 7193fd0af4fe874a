import { describe, expect, it } from "vitest";
import {
  githubScope,
  mockInstallationToken,
  mockIssueNow,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const ONE_RUN_AN_HOUR = "similar:\n  enabled: true\nautomation:\n  max_runs_per_hour: 1\n";

function opened(number: number, title: string, repo: { owner: string; name: string }) {
  const payload = webhookExample("issues", "opened");
  Object.assign(payload.issue, {
    number,
    title,
    body: "The editor crashes on save.",
    html_url: `https://github.com/${repo.owner}/${repo.name}/issues/${number}`,
  });
  Object.assign(payload.repository, { name: repo.name, full_name: `${repo.owner}/${repo.name}` });
  return payload;
}

function receive(app: TestApp, id: string, payload: unknown) {
  return app.probot.receive({ id, name: "issues", payload } as never);
}

describe("the hourly automation budget", () => {
  it("is the repository's, by id: renaming it does not give it a new hour", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: ONE_RUN_AN_HOUR });
    const first = opened(12, "Crash when saving a file on Windows", {
      owner: "Codertocat",
      name: "Hello-World",
    });
    mockIssueNow(scope, first.issue);
    await receive(app, "first", first);
    expect(scope.pendingMocks()).toEqual([]);

    // The same repository (same id) renamed: its config is read under the new name, and the
    // issue, which resembles #12, is remembered but gets no "possibly related" comment (no
    // comment is mocked: one would fail the job).
    const renamed = { owner: "Codertocat", name: "Hello-Mars" };
    mockRepoConfig(scope, {
      ...{ owner: renamed.owner, repo: renamed.name },
      yaml: ONE_RUN_AN_HOUR,
    });
    const second = opened(14, "Crash when saving a file on Windows 11", renamed);
    mockIssueNow(scope, second.issue, {}, "Codertocat/Hello-Mars");
    await receive(app, "second", second);

    expect(scope.pendingMocks()).toEqual([]);
    const lines = app.logs.lines();
    const said = (msg: string) => lines.filter((l) => l.msg === msg).map((l) => l.repository);
    expect(said("automatic work skipped: this hour's automation budget is spent")).toEqual([
      "Codertocat/Hello-Mars",
    ]);
    // Only the first issue was looked up in memory; both jobs finished.
    expect(said("similar issues")).toEqual(["Codertocat/Hello-World"]);
    expect(lines.filter((l) => l.msg === "job finished")).toHaveLength(2);
    const memory = await app.talos.memory.open({
      installation: 2,
      repository: 186853002,
      name: "Codertocat/Hello-Mars",
    });
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-12", "issue-14"]);
  });
});

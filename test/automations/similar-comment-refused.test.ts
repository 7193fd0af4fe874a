import { describe, expect, it } from "vitest";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockIssueNow,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "/repos/Codertocat/Hello-World";
const HELLO_WORLD = 186853002;

function opened(number: number, title: string, body: string) {
  const payload = webhookExample("issues", "opened");
  Object.assign(payload.issue, {
    number,
    title,
    body,
    comments: 0,
    html_url: `https://github.com/Codertocat/Hello-World/issues/${number}`,
    created_at: `2026-11-${String(number).padStart(2, "0")}T10:00:00Z`,
  });
  return payload;
}

function memoryOf(app: TestApp) {
  return app.talos.memory.open({
    installation: 2,
    repository: HELLO_WORLD,
    name: "Codertocat/Hello-World",
  });
}

describe("a new issue whose 'Possibly related' comment GitHub refuses", () => {
  it("is remembered all the same: the comment's failure does not cost the issue its memory", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "similar:\n  enabled: true\n" });
    const first = opened(12, "Crash when saving a file on Windows", "The editor crashes on save.");
    mockIssueNow(scope, first.issue);
    await app.probot.receive({ id: "opened-12", name: "issues", payload: first } as never);
    expect(scope.pendingMocks()).toEqual([]);

    // Issue 14 resembles 12 (named from the cache its job's read filled); GitHub refuses the
    // comment for good (a 4xx: the issue was locked just after it was read, say, or the
    // installation's permissions were narrowed), which parks the job.
    const second = opened(
      14,
      "Crash when saving a file on Windows 11",
      "The editor crashes on save.",
    );
    mockIssueNow(scope, second.issue);
    mockAppIdentity(scope);
    scope.get(`${REPO}/issues/14/comments`).query({ per_page: "100" }).reply(200, []);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/14/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(403, { message: "Unable to create comment because issue is locked." });
    await app.probot.receive({ id: "opened-14", name: "issues", payload: second } as never);

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("**Possibly related**: #12");
    // The job fails for good (a 4xx is parked), and says why.
    const parked = app.logs.lines().filter((l) => String(l.msg).startsWith("job failed; parked"));
    expect(parked.map((l) => (l.err as { message?: string }).message)).toEqual([
      expect.stringContaining("issue is locked"),
    ]);
    // Memory is not the comment: issue 14 is remembered, so a later issue can find it.
    const memory = await memoryOf(app);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-12", "issue-14"]);
  });
});

import { describe, expect, it } from "vitest";
import { mockIssueNow } from "../helpers/github-mocks.js";
import { startTriageApp } from "../helpers/start-triage-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const HELLO_WORLD = 186853002;

describe("an issue transferred in from another repository", () => {
  // GitHub sends it to its new repository as `issues.opened`, with `changes.old_issue`: not a
  // new report but one a maintainer moved (they can write to both), conversation and all.
  // GitHub's schema allows `old_issue: null` beside the old repository; a shape not foreseen
  // must not park the issue (it was remembered before `changes` was read at all).
  it.each([
    ["as GitHub's example sends it", (_: Record<string, unknown>) => undefined],
    [
      "its old issue null, its old repository named",
      (c: Record<string, unknown>) => void (c.old_issue = null),
    ],
    [
      "its old issue in a shape not foreseen (a number)",
      (c: Record<string, unknown>) => void (c.old_issue = 1),
    ],
  ])(
    "%s: is remembered, and neither triaged nor given a similar-issues comment",
    async (_, change) => {
      const { model, app, scope } = await startTriageApp();
      const payload = webhookExample("issues", "opened", 2, (e) => "changes" in e);
      expect(payload.changes.old_repository.full_name).toBe("octo-org/octo-repo");
      change(payload.changes);

      // No GitHub request but the token and the config is mocked: a label read, an identity
      // read or a comment would fail the job.
      await app.probot.receive({ id: "transferred-in", name: "issues", payload } as never);

      expect(scope.pendingMocks()).toEqual([]);
      expect(model.calls).toHaveLength(0);
      const lines = app.logs.lines();
      expect(lines.map((l) => l.msg)).toContain("no automatic work: it was transferred in");
      expect(lines.filter((l) => String(l.msg).startsWith("job ")).map((l) => l.msg)).toEqual([
        "job started",
        "job finished",
      ]);
      const memory = await app.talos.memory.open({
        installation: 2,
        repository: HELLO_WORLD,
        name: "Codertocat/Hello-World",
      });
      expect((await memory.get("issue-1"))?.text).toContain("Spelling error in the README file");
    },
  );

  it("the same issue opened in the repository (no changes.old_issue) is triaged, as a control", async () => {
    const payload = webhookExample("issues", "opened", 2, (e) => "changes" in e);
    delete payload.changes;
    const { app, scope } = await startTriageApp();
    // Read again before the automatic work; then triage's first step reads the app's identity:
    // refused here, it fails the job, which shows that the automatic work began.
    mockIssueNow(scope, payload.issue);
    scope.get("/app").reply(500, { message: "Server Error" });

    await app.probot.receive({ id: "opened-here", name: "issues", payload } as never);

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.lines().filter((l) => String(l.msg).startsWith("no automatic work"))).toEqual(
      [],
    );
    expect(app.logs.lines().map((l) => l.msg)).toContain("job failed; will retry");
  });
});

import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockIssueNow,
  mockRepoConfig,
  recordUnmatchedRequests,
} from "../helpers/github-mocks.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "/repos/Codertocat/Hello-World";
const ALL_ON =
  "triage:\n  enabled: true\n  apply_labels: true\n  comment: true\nsimilar:\n  enabled: true\n";

function opened(number: number, title: string, body: string) {
  const payload = webhookExample("issues", "opened");
  Object.assign(payload.issue, {
    number,
    title,
    body,
    comments: 0,
    html_url: `https://github.com/Codertocat/Hello-World/issues/${number}`,
    created_at: `2026-11-${String(number).padStart(2, "0")}T10:00:00Z`,
    updated_at: `2026-11-${String(number).padStart(2, "0")}T10:00:00Z`,
  });
  return payload;
}

function receive(app: TestApp, id: string, payload: unknown) {
  return app.probot.receive({ id, name: "issues", payload } as never);
}

function messages(app: TestApp) {
  return app.logs.lines().map((l) => String(l.msg));
}

async function remembered(app: TestApp, id: string) {
  const memory = await app.talos.memory.open({
    installation: 2,
    repository: 186853002,
    name: "Codertocat/Hello-World",
  });
  return memory.get(id);
}

// A job runs after its issue changed whenever it waited: a backlog in the issue's thread, a
// retry, a redelivery at start (TALOS_REDELIVER_HOURS, up to 72 hours later).
describe("a new issue read again before its automatic work", () => {
  it.each([
    ["closed meanwhile (as spam)", { state: "closed", state_reason: "not_planned" }, "closed"],
    ["locked meanwhile", { state: "open", locked: true, active_lock_reason: "spam" }, "locked"],
  ])(
    "%s: is remembered, and neither triaged, labelled nor given a similar-issues comment",
    async (_, now, why) => {
      const model = scriptedModel();
      const app = await createTestApp({ model });
      const scope = githubScope();
      mockInstallationToken(scope);
      mockRepoConfig(scope, { yaml: ALL_ON });
      const payload = opened(14, "Crash on save", "It crashes.");
      // Only the read is mocked: a label read, a search's read or a comment would fail the job.
      mockIssueNow(scope, payload.issue, now);

      await receive(app, `changed-${why}`, payload);

      expect(scope.pendingMocks()).toEqual([]);
      expect(model.callCount).toBe(0);
      expect(app.logs.lines().find((l) => l.reason === `the issue is ${why}`)).toMatchObject({
        msg: "no automatic work: the issue changed since",
      });
      expect(messages(app)).toContain("job finished");
      expect(await remembered(app, "issue-14")).toMatchObject({ state: now.state });
    },
  );

  it("edited meanwhile: triages the text GitHub shows now, not the payload's first version", async () => {
    const model = scriptedModel()
      .respondWithTools([{ name: "propose_labels", args: { labels: [], reason: "?" } }])
      .respond(new AIMessage("Nothing fits."));
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "triage:\n  enabled: true\n" });
    const payload = opened(14, "Crash on save", "ORIGINAL-TEXT-9c1, since edited away.");
    mockIssueNow(scope, payload.issue, {
      title: "Crash on save (edited)",
      body: "EDITED-TEXT-7f3: the real report.",
      updated_at: "2026-11-20T10:00:00Z",
    });
    mockAppIdentity(scope);
    scope
      .get(`${REPO}/labels`)
      .query(true)
      .reply(200, [{ name: "bug", description: "Something is broken" }]);
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });

    await receive(app, "edited-before-run", payload);

    expect(scope.pendingMocks()).toEqual([]);
    const prompt = String(model.calls[0]!.messages[1]!.content);
    expect(prompt).not.toContain("ORIGINAL-TEXT-9c1");
    expect(prompt).toContain("Crash on save (edited)");
    expect(prompt).toContain("EDITED-TEXT-7f3");
    expect((await remembered(app, "issue-14"))?.text).toContain("EDITED-TEXT-7f3");
  });

  it("deleted meanwhile (410): the job is dropped, and nothing is written", async () => {
    const app = await createTestApp({ model: scriptedModel() });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: ALL_ON });
    scope
      .get(`${REPO}/issues/14`)
      .reply(410, { message: "This issue was deleted", documentation_url: "https://docs" });

    await receive(app, "deleted-before-run", opened(14, "Crash on save", "It crashes."));

    expect(scope.pendingMocks()).toEqual([]);
    expect(messages(app)).toContain("job dropped: what it was about is gone from GitHub");
    expect(await remembered(app, "issue-14")).toBeUndefined();
  });

  it("is not read when no automatic work is on: the event costs no request", async () => {
    const app = await createTestApp({ model: scriptedModel() });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "similar:\n  enabled: false\ntriage:\n  enabled: false\n" });
    const unmatched = recordUnmatchedRequests();

    await receive(app, "nothing-on", opened(14, "Crash on save", "It crashes."));

    expect(scope.pendingMocks()).toEqual([]);
    expect(unmatched).toEqual([]);
    expect(messages(app)).toContain("job finished");
    expect(await remembered(app, "issue-14")).toBeDefined();
  });
});

describe("a new issue's job retried after its 'Possibly related' comment was posted", () => {
  it("neither searches again nor posts the comment again, which a maintainer deleted meanwhile", async () => {
    const clock = createManualClock();
    const crash = () =>
      [{ name: "propose_labels", args: { labels: ["bug"], reason: "crash" } }] as const;
    const model = scriptedModel()
      // Issue 12's triage: no label fits (so it writes nothing).
      .respondWithTools([{ name: "propose_labels", args: { labels: [], reason: "?" } }])
      .respond(new AIMessage("Nothing fits."))
      // Issue 14's triage, and its retry's (the label was not applied).
      .respondWithTools([...crash()])
      .respond(new AIMessage("A crash."))
      .respondWithTools([...crash()])
      .respond(new AIMessage("A crash."));
    const app = await createTestApp({ model, clock, env: { TALOS_GITHUB_MAX_RETRIES: "0" } });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, {
      yaml: "similar:\n  enabled: true\ntriage:\n  enabled: true\n  apply_labels: true\n",
    });

    // Issue 12 is remembered. Its triage is not what this test is about: no label fits.
    const first = opened(12, "Crash when saving a file on Windows", "The editor crashes on save.");
    mockIssueNow(scope, first.issue);
    mockAppIdentity(scope);
    scope.get(`${REPO}/issues/12/events`).query(true).reply(200, []);
    scope
      .get(`${REPO}/labels`)
      .query(true)
      .reply(200, [{ name: "bug", description: null }]);
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    await receive(app, "remember-12", first);
    expect(scope.pendingMocks()).toEqual([]);

    // Issue 14 resembles it. First run: the comment is posted (#12 named from the cache its own
    // job's read filled), then applying the label fails (a 502): the job fails, to be retried.
    const payload = opened(14, "Crash when saving a file on Windows 11", "The editor crashes.");
    mockIssueNow(scope, payload.issue);
    scope.get(`${REPO}/issues/14/comments`).query(true).reply(200, []);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/14/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(201, { id: 900 });
    scope.get(`${REPO}/issues/14/events`).query(true).reply(200, []);
    scope.post(`${REPO}/issues/14/labels`).reply(502, { message: "Bad Gateway" });
    await receive(app, "similar-then-retry", payload);
    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toEqual([
      "**Possibly related**: #12 (Crash when saving a file on Windows).\n\n<!-- talos:similar:14 -->",
    ]);
    expect(messages(app)).toContain("job failed; will retry");

    // A maintainer deletes the comment ("not related"). The retry reads the issue again, and
    // triages it (the label goes on this time); it neither searches again nor comments.
    mockIssueNow(scope, payload.issue);
    scope.get(`${REPO}/issues/14/events`).query(true).reply(200, []);
    // The labels come from the cache: the failed write named only a label the list holds, so
    // it cannot have created one.
    scope.post(`${REPO}/issues/14/labels`, { labels: ["bug"] }).reply(200, [{ name: "bug" }]);
    const unmatched = recordUnmatchedRequests();
    await clock.advance(30_000);
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(unmatched).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(messages(app)).toContain(
      "similar issues skipped: an earlier run of this job looked for them",
    );
    expect(messages(app).filter((m) => m === "job finished")).toHaveLength(2);
  });
});

import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import {
  APP_SLUG,
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
const BOT_LOGIN = `${APP_SLUG}[bot]`;
type Scope = ReturnType<typeof githubScope>;

/** An embedder that fails while `down` is set, as an embeddings endpoint in an outage does. */
function flakyEmbedder() {
  const local = createLocalEmbedder();
  const state = { down: true };
  const embedder: Embedder = {
    ...local,
    embed: async (texts) => {
      if (state.down) throw new Error("embeddings endpoint: 503 Service Unavailable");
      return local.embed(texts);
    },
  };
  return { embedder, state };
}

/** A model that triages twice, differently: a second run would label the issue again. */
function twoTriages() {
  return scriptedModel()
    .respondWithTools([{ name: "propose_labels", args: { labels: ["bug"], reason: "crash" } }])
    .respond(new AIMessage("A crash."))
    .respondWithTools([{ name: "propose_labels", args: { labels: ["question"], reason: "?" } }])
    .respond(new AIMessage("A question."));
}

function mockTriageReads(scope: Scope, yaml: string) {
  mockInstallationToken(scope);
  mockRepoConfig(scope, { yaml });
  mockIssueNow(scope, opened().issue);
  mockAppIdentity(scope);
  scope
    .get(`${REPO}/labels`)
    .query(true)
    .reply(200, [
      { name: "bug", description: null },
      { name: "question", description: null },
    ]);
  scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
}

/**
 * Another instance (a data directory of its own, which never ran the job) for GitHub's
 * redelivery, and its reads up to the triage's look for an earlier run's trace.
 */
async function redeliveryTo(model: ReturnType<typeof scriptedModel>, yaml: string) {
  const again = await createTestApp({ model });
  const redelivered = githubScope();
  mockInstallationToken(redelivered);
  mockRepoConfig(redelivered, { yaml });
  mockIssueNow(redelivered, opened().issue);
  mockAppIdentity(redelivered);
  return { again, redelivered };
}

/**
 * An app whose embeddings are down until `state.down` is cleared, labelling new issues (found
 * similar ones too), and the first run's reads: no earlier triage, no label Talos applied.
 */
async function withEmbeddingsDown(model: ReturnType<typeof scriptedModel>) {
  const clock = createManualClock();
  const { embedder, state } = flakyEmbedder();
  const app = await createTestApp({ model, embedder, clock });
  const first = githubScope();
  mockTriageReads(
    first,
    "similar:\n  enabled: true\ntriage:\n  enabled: true\n  apply_labels: true\n",
  );
  first.get(`${REPO}/issues/14/events`).query(true).reply(200, []);
  return { app, clock, state, first };
}

/** Issue 14 is in Hello-World's memory. */
async function expectRemembered(app: TestApp) {
  const memory = await app.talos.memory.open({
    installation: 2,
    repository: 186853002,
    name: "Codertocat/Hello-World",
  });
  expect((await memory.get("issue-14"))?.text).toContain("Crash on save");
}

/** The retry skipped its triage, as recorded with the job, and the job was not dropped. */
function expectTriageSkippedOnce(app: TestApp) {
  const messages = app.logs.lines().map((l) => String(l.msg));
  expect(
    messages.filter((m) => m === "triage skipped: an earlier run of this job triaged the issue"),
  ).toHaveLength(1);
  expect(messages.filter((m) => m.startsWith("job dropped"))).toEqual([]);
}

function opened() {
  const payload = webhookExample("issues", "opened");
  Object.assign(payload.issue, { number: 14, title: "Crash on save", body: "It crashes." });
  return payload;
}

describe("triage of a new issue whose job runs again", () => {
  it("a retry after memory trouble does not triage again: no second model run, no other label", async () => {
    const model = twoTriages();
    const { app, clock, state, first } = await withEmbeddingsDown(model);
    const labelled: unknown[] = [];
    first
      .post(`${REPO}/issues/14/labels`, (body) => Boolean(labelled.push(body)))
      .reply(200, [{ name: "bug" }]);

    await app.probot.receive({ id: "triage-retry", name: "issues", payload: opened() } as never);
    expect(first.pendingMocks()).toEqual([]);
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(true);

    // The embeddings are back; the retry reads the issue again and remembers it. Its triage is
    // recorded with the job as done: GitHub is not asked for the issue's events.
    state.down = false;
    mockIssueNow(first, opened().issue);
    const unmatched = recordUnmatchedRequests();
    await clock.advance(30_000);
    await app.talos.services.jobs.idle();

    expect(first.pendingMocks()).toEqual([]);
    expect(unmatched).toEqual([]);
    expect(labelled).toEqual([{ labels: ["bug"] }]);
    expect(model.callCount).toBe(2);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expectTriageSkippedOnce(app);
    await expectRemembered(app);

    // GitHub's redelivery, to an instance that never ran the job (another data directory): it
    // finds the label Talos applied.
    const { again, redelivered } = await redeliveryTo(
      model,
      "similar:\n  enabled: false\ntriage:\n  enabled: true\n  apply_labels: true\n",
    );
    redelivered
      .get(`${REPO}/issues/14/events`)
      .query(true)
      .reply(200, [
        {
          id: 1,
          event: "labeled",
          actor: { login: BOT_LOGIN, type: "Bot" },
          label: { name: "bug" },
        },
      ]);
    await again.probot.receive({ id: "triage-retry", name: "issues", payload: opened() } as never);
    expect(redelivered.pendingMocks()).toEqual([]);
    expect(model.callCount).toBe(2);
    expect(labelled).toEqual([{ labels: ["bug"] }]);
    expect(
      again.logs.lines().some((l) => String(l.msg).includes("an earlier run triaged the issue")),
    ).toBe(true);
  });

  it("a retry after memory trouble does not triage again when the first found no label to apply, which leaves no trace", async () => {
    // The first triage finds no label fits; a second would label the issue.
    const model = scriptedModel()
      .respondWithTools([{ name: "propose_labels", args: { labels: [], reason: "unclear" } }])
      .respond(new AIMessage("Nothing fits."))
      .respondWithTools([{ name: "propose_labels", args: { labels: ["question"], reason: "?" } }])
      .respond(new AIMessage("A question."));
    const { app, clock, state, first } = await withEmbeddingsDown(model);
    await app.probot.receive({ id: "triage-none", name: "issues", payload: opened() } as never);
    expect(first.pendingMocks()).toEqual([]);
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(true);
    expect(app.talos.services.journal!.list()).toMatchObject([
      { id: "triage-none", stepsDone: ["triage"] },
    ]);

    // The retry remembers the issue and asks GitHub nothing but the issue as it is now: the
    // model is not run again, and no label is applied.
    state.down = false;
    mockIssueNow(first, opened().issue);
    const unmatched = recordUnmatchedRequests();
    await clock.advance(30_000);
    await app.talos.services.jobs.idle();

    expect(first.pendingMocks()).toEqual([]);
    expect(unmatched).toEqual([]);
    expect(model.callCount).toBe(2);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expectTriageSkippedOnce(app);
    await expectRemembered(app);
  });

  it("a redelivery after the triage comment is up does not triage again", async () => {
    const model = twoTriages();
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockTriageReads(scope, "triage:\n  enabled: true\n  apply_labels: true\n  comment: true\n");
    // The comments are listed once: for an earlier triage comment, and then for the reply.
    scope.get(`${REPO}/issues/14/comments`).query(true).reply(200, []);
    scope.get(`${REPO}/issues/14/events`).query(true).reply(200, []);
    scope.post(`${REPO}/issues/14/labels`, { labels: ["bug"] }).reply(200, [{ name: "bug" }]);
    const posted: Array<{ body: string }> = [];
    scope
      .post(`${REPO}/issues/14/comments`, (body: { body: string }) => Boolean(posted.push(body)))
      .reply(201, { id: 700 });
    await app.probot.receive({ id: "triage-once", name: "issues", payload: opened() } as never);
    expect(scope.pendingMocks()).toEqual([]);
    expect(posted.map((p) => p.body)).toEqual([
      "**Triage**: labelled `bug`.\n\nA crash.\n\n<!-- talos:triage:14 -->",
    ]);

    // GitHub's redelivery of the same event, once the delivery has left the ledger (a restart
    // with another data directory stands for that): the comment says the issue is triaged.
    const { again, redelivered } = await redeliveryTo(
      model,
      "triage:\n  enabled: true\n  apply_labels: true\n  comment: true\n",
    );
    redelivered
      .get(`${REPO}/issues/14/comments`)
      .query(true)
      .reply(200, [{ id: 700, body: posted[0]!.body, user: { login: BOT_LOGIN, type: "Bot" } }]);
    await again.probot.receive({ id: "triage-once", name: "issues", payload: opened() } as never);

    expect(redelivered.pendingMocks()).toEqual([]);
    expect(model.callCount).toBe(2);
    expect(
      again.logs.lines().some((l) => String(l.msg).includes("an earlier run triaged the issue")),
    ).toBe(true);
  });
});

describe("triage whose comment failed after its labels were applied", () => {
  it("posts the triage comment on the retry, naming the labels applied, without triaging again", async () => {
    const clock = createManualClock();
    const model = twoTriages();
    // No retries within the request: the 502 on the comment fails the job, which is retried.
    const app = await createTestApp({ model, clock, env: { TALOS_GITHUB_MAX_RETRIES: "0" } });
    // One automatic run an hour: the retry is the run its first try took, not a second one.
    const yaml =
      "triage:\n  enabled: true\n  apply_labels: true\n  comment: true\n" +
      "automation:\n  max_runs_per_hour: 1\n";
    const first = githubScope();
    mockTriageReads(first, yaml);
    first.get(`${REPO}/issues/14/comments`).query(true).reply(200, []);
    first.get(`${REPO}/issues/14/events`).query(true).reply(200, []);
    first.post(`${REPO}/issues/14/labels`, { labels: ["bug"] }).reply(200, [{ name: "bug" }]);
    first.post(`${REPO}/issues/14/comments`).reply(502, { message: "Bad Gateway" });
    await app.probot.receive({ id: "triage-half", name: "issues", payload: opened() } as never);
    expect(first.pendingMocks()).toEqual([]);
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(true);

    // The retry: no triage comment in the thread, the label Talos applied in its events.
    const retry = githubScope();
    mockIssueNow(retry, opened().issue);
    retry.get(`${REPO}/issues/14/comments`).query(true).reply(200, []);
    retry
      .get(`${REPO}/issues/14/events`)
      .query(true)
      .reply(200, [
        {
          id: 1,
          event: "labeled",
          actor: { login: BOT_LOGIN, type: "Bot" },
          label: { name: "bug" },
        },
      ]);
    const posted: string[] = [];
    retry
      .post(`${REPO}/issues/14/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(201, { id: 700 });
    await clock.advance(30_000);
    await app.talos.services.jobs.idle();

    expect(retry.pendingMocks()).toEqual([]);
    expect(model.callCount).toBe(2);
    expect(posted).toEqual(["**Triage**: labelled `bug`.\n\n<!-- talos:triage:14 -->"]);
  });
});

describe("triage run again after a maintainer took off labels Talos applied", () => {
  // A run that cannot know its job triaged the issue (a crash before the step was recorded,
  // GitHub's redelivery to another instance) finds Talos's labels in the issue's events, and no
  // triage comment: the maintainer deleted it.
  const YAML = "triage:\n  enabled: true\n  apply_labels: true\n  comment: true\n";
  const event = (id: number, event: string, login: string, label: string) => ({
    id,
    event,
    actor: { login, type: login === BOT_LOGIN ? "Bot" : "User" },
    label: { name: label },
  });

  async function runAgain(events: unknown[]) {
    const model = scriptedModel();
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: YAML });
    mockIssueNow(scope, opened().issue);
    mockAppIdentity(scope);
    scope.get(`${REPO}/issues/14/comments`).query(true).reply(200, []);
    scope.get(`${REPO}/issues/14/events`).query(true).reply(200, events);
    return { model, app, scope };
  }

  it("names in its comment only the labels the issue still has", async () => {
    const { model, app, scope } = await runAgain([
      event(1, "labeled", BOT_LOGIN, "bug"),
      event(2, "labeled", BOT_LOGIN, "crash"),
      event(3, "unlabeled", "maintainer", "bug"),
    ]);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/14/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(201, { id: 700 });

    await app.probot.receive({ id: "triage-again", name: "issues", payload: opened() } as never);

    expect(scope.pendingMocks()).toEqual([]);
    expect(model.callCount).toBe(0);
    expect(posted).toEqual(["**Triage**: labelled `crash`.\n\n<!-- talos:triage:14 -->"]);
  });

  it("posts no comment once none is left, and still does not triage again", async () => {
    // Taken off, put back by Talos (a second label run), then taken off again, whatever its case.
    const { model, app, scope } = await runAgain([
      event(1, "labeled", BOT_LOGIN, "bug"),
      event(2, "unlabeled", "maintainer", "bug"),
      event(3, "labeled", BOT_LOGIN, "Bug"),
      event(4, "unlabeled", "maintainer", "Bug"),
    ]);

    // No comment is mocked: posting one would fail the job.
    await app.probot.receive({ id: "triage-again", name: "issues", payload: opened() } as never);

    expect(scope.pendingMocks()).toEqual([]);
    expect(model.callCount).toBe(0);
    const messages = app.logs.lines().map((l) => l.msg);
    expect(messages).toContain("no triage comment: the issue has none of the labels Talos applied");
    expect(messages).toContain("job finished");
  });
});

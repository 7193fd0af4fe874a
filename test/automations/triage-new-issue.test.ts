import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp } from "../helpers/test-app.js";
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

function opened() {
  const payload = webhookExample("issues", "opened");
  Object.assign(payload.issue, { number: 14, title: "Crash on save", body: "It crashes." });
  return payload;
}

describe("triage of a new issue whose job runs again", () => {
  it("a retry after memory trouble does not triage again: no second model run, no other label", async () => {
    const clock = createManualClock();
    const { embedder, state } = flakyEmbedder();
    const model = twoTriages();
    const app = await createTestApp({ model, embedder, clock });
    const first = githubScope();
    mockTriageReads(
      first,
      "similar:\n  enabled: true\ntriage:\n  enabled: true\n  apply_labels: true\n",
    );
    // No earlier triage: the issue has no label Talos applied.
    first.get(`${REPO}/issues/14/events`).query(true).reply(200, []);
    const labelled: unknown[] = [];
    first
      .post(`${REPO}/issues/14/labels`, (body) => Boolean(labelled.push(body)))
      .reply(200, [{ name: "bug" }]);

    await app.probot.receive({ id: "triage-retry", name: "issues", payload: opened() } as never);
    expect(first.pendingMocks()).toEqual([]);
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(true);

    // The embeddings are back; the retry remembers the issue, and finds the label it applied.
    state.down = false;
    const retry = githubScope();
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
    await clock.advance(30_000);
    await app.talos.services.jobs.idle();

    expect(retry.pendingMocks()).toEqual([]);
    expect(labelled).toEqual([{ labels: ["bug"] }]);
    expect(model.callCount).toBe(2);
    expect(app.talos.services.journal!.list()).toEqual([]);
    const memory = await app.talos.memory.open({
      installation: 2,
      repository: 186853002,
      name: "Codertocat/Hello-World",
    });
    expect((await memory.get("issue-14"))?.text).toContain("Crash on save");
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
    const again = await createTestApp({ model });
    const redelivered = githubScope();
    mockInstallationToken(redelivered);
    mockRepoConfig(redelivered, {
      yaml: "triage:\n  enabled: true\n  apply_labels: true\n  comment: true\n",
    });
    mockAppIdentity(redelivered);
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

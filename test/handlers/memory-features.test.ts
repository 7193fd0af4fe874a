import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockIssueNow,
  mockIssueRead,
  mockRepoConfig,
  mockRepositoryRead,
} from "../helpers/github-mocks.js";
import { createFakeClock, createManualClock } from "../helpers/fake-clock.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, makeDataDir, type TestApp } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";
import { toIssueInfo } from "../../src/github/create-repo-client.js";
import { toIssueMemory } from "../../src/memory/memory-inputs.js";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "/repos/Codertocat/Hello-World";
const COMMENT_ID = 492700400;
const SIMILAR_ON = "similar:\n  enabled: true\n";
type Scope = ReturnType<typeof githubScope>;

function receive(app: TestApp, name: string, payload: unknown, id = `d-${Math.random()}`) {
  return app.probot.receive({ id, name, payload } as never);
}

function openedIssue(number: number, title: string, body: string, installation = 2) {
  const payload = webhookExample("issues", "opened", installation);
  Object.assign(payload.issue, {
    number,
    title,
    body,
    html_url: `https://github.com/Codertocat/Hello-World/issues/${number}`,
    created_at: `2026-11-${String(number % 28 || 1).padStart(2, "0")}T10:00:00Z`,
  });
  return payload;
}

/** A new issue whose automatic work is on: it is read again before that work runs. */
function openedNow(scope: Scope, number: number, title: string, body: string, installation = 2) {
  const payload = openedIssue(number, title, body, installation);
  mockIssueNow(scope, payload.issue);
  return payload;
}

function comment(body: string, id = COMMENT_ID) {
  const payload = loadFixture<{ comment: { id: number; body: string; html_url: string } }>(
    "issue_comment.created.help.json",
  );
  payload.comment.body = body;
  payload.comment.id = id;
  return payload;
}

/** Codertocat/Hello-World's id in the example payloads and fixtures. */
const HELLO_WORLD = 186853002;

function memoryOf(app: TestApp, installation = 2) {
  return app.talos.memory.open({
    installation,
    repository: HELLO_WORLD,
    name: "Codertocat/Hello-World",
  });
}

/** A posted comment's body, captured; the path is asserted by nock. */
function capturePost(scope: Scope, path: string, id = 9001) {
  const posted: { body?: string } = {};
  scope
    .post(path, (body: { body: string }) => Boolean((posted.body = body.body)))
    .reply(201, { id });
  return posted;
}

/** The reads of an accepted command, up to its 👀 reaction. */
function mockCommandStart(scope: Scope, { yaml, id = COMMENT_ID }: { yaml?: string; id?: number }) {
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope, yaml === undefined ? {} : { yaml });
  scope.post(`${REPO}/issues/comments/${id}/reactions`, { content: "eyes" }).reply(201, {});
}

function mockNoReplyYet(scope: Scope) {
  scope
    .get(`${REPO}/issues/1/comments`)
    .query({ per_page: "100", since: "2019-05-15T15:20:21Z" })
    .reply(200, []);
}

describe("similar issues on a new issue", () => {
  it("comments once, naming the remembered issue it resembles and nothing from another installation", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope, 2);
    mockInstallationToken(scope, 3);
    // Read once per installation: the cache keeps it for the rest of the burst.
    mockRepoConfig(scope, { yaml: SIMILAR_ON });
    mockRepoConfig(scope, { yaml: SIMILAR_ON });

    // Installation 3 has a repository of the same name with the closest issue of all.
    await receive(
      app,
      "issues",
      openedNow(
        scope,
        40,
        "Saving a file crashes on Windows",
        "Saving a file on Windows crashes.",
        3,
      ),
    );
    await receive(
      app,
      "issues",
      openedNow(scope, 12, "Crash when saving a file on Windows", "The editor crashes on save."),
    );
    await receive(
      app,
      "issues",
      openedNow(scope, 13, "Dark mode for the settings page", "Please add a dark theme."),
    );
    // So far nothing resembled anything: no comment was posted.
    expect(scope.pendingMocks()).toEqual([]);

    mockAppIdentity(scope);
    // #12 is not read again to be named: the cache keeps it from its own job's read.
    scope.get(`${REPO}/issues/14/comments`).query({ per_page: "100" }).reply(200, []);
    const posted = capturePost(scope, `${REPO}/issues/14/comments`);
    await receive(
      app,
      "issues",
      openedNow(scope, 14, "Crash when saving a file on Windows 11", "The editor crashes on save."),
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted.body).toBe(
      "**Possibly related**: #12 (Crash when saving a file on Windows).\n\n<!-- talos:similar:14 -->",
    );
    // Every new issue is remembered, in its own installation's memory.
    const memory = await memoryOf(app);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual([
      "issue-12",
      "issue-13",
      "issue-14",
    ]);
    expect(await memory.get("issue-14")).toMatchObject({
      kind: "issue",
      number: 14,
      author: "Codertocat",
      state: "open",
      createdAt: "2026-11-14T10:00:00.000Z",
    });
    expect((await (await memoryOf(app, 3)).list()).map((r) => r.id)).toEqual(["issue-40"]);
  });

  it("names an issue by the title GitHub shows now, not by one edited away while memory was off", async () => {
    // The config is read again at each event: memory off for the edit, on for the new issue.
    const app = await createTestApp({ env: { TALOS_CACHE_TTL_MS: "1" } });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    const leaked = "Crash on save with DB_PASSWORD Violet-Harbor-Passphrase";
    const title = "Crash on save with the staging database";
    const body = "Saving a file in the editor crashes the editor on the staging database.";
    await receive(app, "issues", openedIssue(12, leaked, body));
    // memory.enabled: false keeps the memory, and does not follow the edit that takes it out.
    mockRepoConfig(scope, { yaml: "memory:\n  enabled: false\n" });
    const edited = webhookExample("issues", "edited");
    Object.assign(edited.issue, { number: 12, title, body, updated_at: "2026-11-12T10:05:00Z" });
    await receive(app, "issues", edited);
    expect((await (await memoryOf(app)).get("issue-12"))?.text).toContain(leaked);

    mockRepoConfig(scope, { yaml: SIMILAR_ON });
    mockAppIdentity(scope);
    mockIssueRead(scope, 12, { title });
    scope.get(`${REPO}/issues/14/comments`).query({ per_page: "100" }).reply(200, []);
    const posted = capturePost(scope, `${REPO}/issues/14/comments`);
    await receive(app, "issues", openedNow(scope, 14, "Crash on save", body));

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted.body).toBe(`**Possibly related**: #12 (${title}).\n\n<!-- talos:similar:14 -->`);
  });

  it("is off by default: the issue is remembered, and nothing is posted", async () => {
    const app = await createTestApp();
    const memory = await memoryOf(app);
    await memory.add({
      id: "issue-12",
      kind: "issue",
      text: "Crash when saving a file on Windows\n\nThe editor crashes on save.",
      repo: "codertocat/hello-world",
      number: 12,
      createdAt: "2026-11-12T10:00:00Z",
    });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);

    await receive(
      app,
      "issues",
      openedIssue(14, "Crash when saving a file on Windows", "The editor crashes on save."),
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect((await memory.get("issue-14"))?.text).toContain("Crash when saving");
  });

  it("remembers nothing where the repository switches memory off", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "memory:\n  enabled: false\nsimilar:\n  enabled: true\n" });

    await receive(app, "issues", openedIssue(14, "Crash on save", "It crashes."));

    expect(scope.pendingMocks()).toEqual([]);
    expect(await (await memoryOf(app)).list()).toEqual([]);
  });

  it("still triages when embedding fails, then fails the job so that it is retried", async () => {
    const failing: Embedder = {
      ...createLocalEmbedder(),
      embed: async () => {
        throw new Error("embeddings endpoint: 503 Service Unavailable");
      },
    };
    const model = scriptedModel()
      .respondWithTools([{ name: "propose_labels", args: { labels: ["bug"], reason: "crash" } }])
      .respond(new AIMessage("A crash."));
    const app = await createTestApp({ model, embedder: failing });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, {
      yaml: `${SIMILAR_ON}triage:\n  enabled: true\n  apply_labels: true\n`,
    });
    scope
      .get(`${REPO}/labels`)
      .query(true)
      .reply(200, [{ name: "bug", description: null }]);
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    mockAppIdentity(scope);
    scope.get(`${REPO}/issues/14/events`).query({ per_page: "100" }).reply(200, []);
    scope.post(`${REPO}/issues/14/labels`, { labels: ["bug"] }).reply(200, []);

    await receive(app, "issues", openedNow(scope, 14, "Crash on save", "It crashes."));

    expect(scope.pendingMocks()).toEqual([]);
    const failed = app.logs.lines().find((l) => l.msg === "job failed; will retry");
    expect(failed?.err).toMatchObject({
      message: expect.stringMatching(/503 Service Unavailable/),
    });
    expect(app.talos.services.journal!.list()).toMatchObject([
      { attempts: 1, event: "issues.opened" },
    ]);
  });
});

describe("/talos similar", () => {
  async function seed(app: TestApp) {
    const memory = await memoryOf(app);
    await memory.addMany([
      {
        id: "issue-12",
        kind: "issue",
        text: "Spelling mistake in the README file\n\nThe README has a typo.",
        repo: "codertocat/hello-world",
        number: 12,
        createdAt: "2026-11-12T10:00:00Z",
      },
      {
        id: "issue-13",
        kind: "issue",
        text: "Dark mode for the settings page\n\nPlease add a dark theme.",
        repo: "codertocat/hello-world",
        number: 13,
        createdAt: "2026-11-13T10:00:00Z",
      },
    ]);
  }

  it("lists the remembered issues that resemble this one, with their similarity", async () => {
    const app = await createTestApp();
    await seed(app);
    const scope = githubScope();
    mockCommandStart(scope, {});
    // Retitled since memory read it: named as GitHub shows it now.
    mockIssueRead(scope, 12, { title: "Spelling mistake in README.md" });
    mockNoReplyYet(scope);
    const reply = capturePost(scope, `${REPO}/issues/1/comments`);

    // Issue #1 of the fixture is "Spelling error in the README file".
    await receive(app, "issue_comment", comment("/talos similar"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toMatch(
      /^\*\*Possibly related\*\*: #12 \(Spelling mistake in README\.md\)\.\n\nSimilarity: 0\.\d\d \(at least 0\.4 counts\)\.\n\n<!-- talos:reply:492700400 -->$/,
    );
  });

  it("leaves out, and forgets, a remembered issue deleted or transferred while Talos did not hear of it", async () => {
    const app = await createTestApp();
    const memory = await memoryOf(app);
    const readme = (number: number, text: string) => ({
      id: `issue-${number}`,
      kind: "issue" as const,
      text,
      repo: "codertocat/hello-world",
      number,
      createdAt: "2026-11-12T10:00:00Z",
    });
    await memory.addMany([
      readme(12, "Spelling mistake in the README file\n\nThe README has a typo."),
      readme(15, "Spelling error in the README\n\nA typo in the README file."),
      readme(16, "Spelling mistakes in the README file\n\nTypos in the README."),
      readme(17, "A spelling error in the README file\n\nThe README file has typos."),
      readme(18, "Spelling errors in the README file\n\nA typo in the README."),
    ]);
    const scope = githubScope();
    mockCommandStart(scope, { yaml: "similar:\n  max: 5\n" });
    // Deleted, transferred to another repository, out of the token's sight, and still here.
    mockIssueRead(scope, 12, { status: 410 });
    mockIssueRead(scope, 15, { movedTo: "Codertocat/Elsewhere" });
    // Read once the redirect is seen: its id, not the issue's repository name, tells a transfer
    // from a rename since the event.
    mockRepositoryRead(scope, "Codertocat/Hello-World", HELLO_WORLD);
    mockIssueRead(scope, 16, { status: 404 });
    mockIssueRead(scope, 17, { title: "A spelling error in the README file" });
    // Issues switched off in the repository: GitHub's 410 for that is no deletion.
    mockIssueRead(scope, 18, { status: 410, message: "Issues are disabled for this repo" });
    mockNoReplyYet(scope);
    const reply = capturePost(scope, `${REPO}/issues/1/comments`);

    await receive(app, "issue_comment", comment("/talos similar"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toMatch(
      /^\*\*Possibly related\*\*: #17 \(A spelling error in the README file\)\.\n\nSimilarity: 0\.\d\d \(at least 0\.4 counts\)\.\n\n<!-- talos:reply:492700400 -->$/,
    );
    // The deleted and the transferred issue are forgotten, as their own events would have done;
    // those GitHub did not show are only left out of this answer.
    expect(await memory.get("issue-12")).toBeUndefined();
    expect(await memory.get("issue-15")).toBeUndefined();
    expect(await memory.get("issue-16")).toMatchObject({ number: 16 });
    expect(await memory.get("issue-18")).toMatchObject({ number: 18 });
    expect(await memory.get("issue-17")).toMatchObject({ number: 17 });
    expect(
      app.logs.lines().filter((l) => l.msg === "similar issue gone from GitHub: forgotten"),
    ).toHaveLength(2);
  });

  it("names a similar issue it could not check, when GitHub fails", async () => {
    const app = await createTestApp();
    await seed(app);
    const scope = githubScope();
    mockCommandStart(scope, {});
    // The test app's client does not retry: this is the answer it gives up on.
    scope.get(`${REPO}/issues/12`).reply(500, { message: "Server Error" });
    mockNoReplyYet(scope);
    const reply = capturePost(scope, `${REPO}/issues/1/comments`);

    await receive(app, "issue_comment", comment("/talos similar"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toMatch(/^\*\*Possibly related\*\*: #12 \(Spelling mistake/);
    expect(await (await memoryOf(app)).get("issue-12")).toMatchObject({ number: 12 });
    expect(
      app.logs.lines().find((l) => l.msg === "similar issue not checked on GitHub: kept"),
    ).toBeDefined();
  });

  it("says so when nothing resembles this issue closely enough", async () => {
    const app = await createTestApp();
    await seed(app);
    const scope = githubScope();
    mockCommandStart(scope, { yaml: "similar:\n  threshold: 0.99\n" });
    mockNoReplyYet(scope);
    const reply = capturePost(scope, `${REPO}/issues/1/comments`);

    await receive(app, "issue_comment", comment("/talos similar"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toContain(
      "Nothing in Talos's memory of this repository resembles this issue closely enough (similarity of at least 0.99).",
    );
  });
});

describe("/talos remember, forget and ask", () => {
  it("stores a maintainer's note that ask then uses, and forgets it on request", async () => {
    const model = scriptedModel()
      .respond(new AIMessage("Releases happen on Tuesdays."))
      .respond(new AIMessage("I do not know when releases happen."));
    const app = await createTestApp({ model });

    const remember = githubScope();
    mockCommandStart(remember, {});
    mockNoReplyYet(remember);
    const stored = capturePost(remember, `${REPO}/issues/1/comments`);
    await receive(app, "issue_comment", comment("/talos remember releases happen on Tuesdays"));
    expect(remember.pendingMocks()).toEqual([]);
    expect(stored.body).toBe(
      "Remembered as `note-492700400`. `/talos forget note-492700400` removes it.\n\n<!-- talos:reply:492700400 -->",
    );
    expect(await (await memoryOf(app)).get("note-492700400")).toMatchObject({
      kind: "note",
      text: "releases happen on Tuesdays",
      author: "Codertocat",
      number: 1,
    });

    const ask = githubScope();
    ask.post(`${REPO}/issues/comments/501/reactions`, { content: "eyes" }).reply(201, {});
    ask.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    ask.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    const answered = capturePost(ask, `${REPO}/issues/1/comments`, 9002);
    await receive(app, "issue_comment", comment("/talos ask when do releases happen?", 501));
    expect(ask.pendingMocks()).toEqual([]);
    expect(answered.body).toContain("Releases happen on Tuesdays.");
    const prompt = String(model.calls[0]!.messages.at(-1)!.content);
    expect(prompt).toContain("note note-492700400");
    expect(prompt).toContain("releases happen on Tuesdays");
    // The answer itself is remembered, under the asking comment.
    expect(await (await memoryOf(app)).get("answer-501")).toMatchObject({
      kind: "answer",
      text: "Question: when do releases happen?\n\nAnswer: Releases happen on Tuesdays.",
      author: `${APP_SLUG}[bot]`,
    });

    const forget = githubScope();
    forget.post(`${REPO}/issues/comments/502/reactions`, { content: "eyes" }).reply(201, {});
    forget
      .get(`${REPO}/issues/1/comments`)
      .query({ per_page: "100", since: "2019-05-15T15:20:21Z" })
      .reply(200, []);
    const forgot = capturePost(forget, `${REPO}/issues/1/comments`, 9003);
    await receive(app, "issue_comment", comment("/talos forget note-492700400", 502));
    expect(forget.pendingMocks()).toEqual([]);
    expect(forgot.body).toContain("Forgot `note-492700400`.");
    expect(await (await memoryOf(app)).get("note-492700400")).toBeUndefined();
  });

  it("does not remember an answer a limit cut short, though it is posted with a note", async () => {
    // Cut at the output's length here; at the steps or the budget, the text may be a tool
    // call's preamble ("Let me check a.ts."): no answer for a later question to recall.
    const model = scriptedModel().respond(
      new AIMessage({
        content: "Releases happen on",
        response_metadata: { finish_reason: "length" },
      }),
    );
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockCommandStart(scope, { id: 501 });
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    const answered = capturePost(scope, `${REPO}/issues/1/comments`, 9002);
    await receive(app, "issue_comment", comment("/talos ask when do releases happen?", 501));
    expect(scope.pendingMocks()).toEqual([]);
    expect(answered.body).toMatch(/^Releases happen on/);
    expect(answered.body).not.toBe("Releases happen on\n\n<!-- talos:reply:501 -->");
    expect(await (await memoryOf(app)).get("answer-501")).toBeUndefined();
  });

  it("recalls an earlier answer in a later question, fenced as untrusted text", async () => {
    const model = scriptedModel().respond(new AIMessage("As before: use --force."));
    const app = await createTestApp({ model });
    await (
      await memoryOf(app)
    ).add({
      id: "answer-77",
      kind: "answer",
      text: "Question: how do I overwrite a release asset?\n\nAnswer: Upload it with --force.",
      repo: "codertocat/hello-world",
      number: 3,
      createdAt: "2026-11-01T10:00:00Z",
    });
    const scope = githubScope();
    mockCommandStart(scope, {});
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    capturePost(scope, `${REPO}/issues/1/comments`);

    await receive(app, "issue_comment", comment("/talos ask how can I overwrite a release asset?"));

    expect(scope.pendingMocks()).toEqual([]);
    const prompt = String(model.calls[0]!.messages.at(-1)!.content);
    expect(prompt).toMatch(/<untrusted-[0-9a-f]+ source="answer answer-77 from 2026-11-01">/);
    expect(prompt).toContain("Upload it with --force.");
  });

  it("refuses to forget an issue, which comes back from GitHub", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockCommandStart(scope, {});
    mockNoReplyYet(scope);
    const reply = capturePost(scope, `${REPO}/issues/1/comments`);

    await receive(app, "issue_comment", comment("/talos forget issue-12"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toContain("Issues and pull requests are remembered from GitHub");
  });
});

const NOT_REMEMBERED = "the reply is posted but was not remembered: a later ask will not recall it";

/** An embedder that fails (an endpoint answering 503) for the texts `down` picks. */
function outage(down: (text: string) => boolean): Embedder {
  const local = createLocalEmbedder();
  return {
    ...local,
    embed: async (texts) => {
      if (texts.some(down)) throw new Error("embeddings endpoint: 503 Service Unavailable");
      return local.embed(texts);
    },
  };
}

/**
 * What a retry of the command would read and write, optional (not pending when unused): it finds
 * the posted reply (`posted`) by its marker and edits it. Returns the edits' bodies.
 */
function mockRetry(scope: Scope, id: number, posted: { body?: string }) {
  scope
    .post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`)
    .times(4)
    .optionally()
    .reply(201, {});
  scope
    .get(REPO)
    .times(4)
    .optionally()
    .reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
  scope
    .get(`${REPO}/issues/1/comments`)
    .query(true)
    .times(4)
    .optionally()
    .reply(200, () => [
      {
        id,
        body: posted.body,
        user: { login: `${APP_SLUG}[bot]`, type: "Bot" },
        created_at: "2026-11-24T12:00:00Z",
      },
    ]);
  const edited: string[] = [];
  scope
    .patch(`${REPO}/issues/comments/${id}`, (body: { body: string }) =>
      Boolean(edited.push(body.body)),
    )
    .times(4)
    .optionally()
    .reply(200, { id });
  return edited;
}

describe("an answer posted while memory cannot store it (an embeddings outage)", () => {
  it("/talos summarize: keeps the posted summary, logs what was not remembered, and ends the job without a retry", async () => {
    const clock = createManualClock();
    const model = scriptedModel()
      .respond(new AIMessage("First summary: the README has a typo."))
      .respond(new AIMessage("A different summary, paid for a second time."));
    const app = await createTestApp({ model, clock, embedder: outage(() => true) });
    const scope = githubScope();
    mockCommandStart(scope, {});
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    const posted = capturePost(scope, `${REPO}/issues/1/comments`, 7001);
    const edited = mockRetry(scope, 7001, posted);

    await receive(app, "issue_comment", comment("/talos summarize"), "summarize-outage");
    // A retry's time: a retry would run the model again and edit the summary maintainers read.
    await clock.advance(60_000);
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted.body).toContain("First summary: the README has a typo.");
    expect(model.calls).toHaveLength(1);
    expect(edited).toEqual([]);
    const lines = app.logs.lines();
    expect(lines.find((l) => l.msg === NOT_REMEMBERED)).toMatchObject({
      level: 50,
      memory: "summary-1",
      err: { message: expect.stringMatching(/503 Service Unavailable/) },
    });
    expect(lines.some((l) => l.msg === "job finished")).toBe(true);
    expect(lines.some((l) => l.msg === "job failed; will retry")).toBe(false);
    expect(app.talos.services.journal!.list()).toEqual([]);
  });

  it("/talos ask: keeps the posted answer, logs what was not remembered, and ends the job without a retry", async () => {
    const clock = createManualClock();
    const model = scriptedModel()
      .respond(new AIMessage("Releases happen on Tuesdays."))
      .respond(new AIMessage("Releases happen on Fridays."));
    // The question embeds (recall); the answer does not: the outage began during the model run.
    const embedder = outage((text) => text.startsWith("Question:"));
    const app = await createTestApp({ model, clock, embedder });
    const scope = githubScope();
    mockCommandStart(scope, {});
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    const posted = capturePost(scope, `${REPO}/issues/1/comments`, 7002);
    const edited = mockRetry(scope, 7002, posted);

    await receive(
      app,
      "issue_comment",
      comment("/talos ask when do releases happen?"),
      "ask-outage",
    );
    await clock.advance(60_000);
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted.body).toContain("Releases happen on Tuesdays.");
    expect(model.calls).toHaveLength(1);
    expect(edited).toEqual([]);
    expect(app.logs.lines().find((l) => l.msg === NOT_REMEMBERED)).toMatchObject({
      level: 50,
      memory: `answer-${COMMENT_ID}`,
    });
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(false);
    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(await (await memoryOf(app)).get(`answer-${COMMENT_ID}`)).toBeUndefined();
  });

  it("/talos ask: an outage of the question's recall answers without memory, and says so", async () => {
    const model = scriptedModel().respond(new AIMessage("Releases happen on Tuesdays."));
    const app = await createTestApp({ model, embedder: outage(() => true) });
    const scope = githubScope();
    mockCommandStart(scope, {});
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    const posted = capturePost(scope, `${REPO}/issues/1/comments`);

    await receive(app, "issue_comment", comment("/talos ask when do releases happen?"));

    expect(scope.pendingMocks()).toEqual([]);
    // The chat model is fine: it answers, without recall, and the maintainer is told.
    expect(model.calls).toHaveLength(1);
    expect(posted.body).toContain("Releases happen on Tuesdays.");
    expect(posted.body).toContain("Talos could not search its memory this time");
    expect(posted.body).not.toContain("Sorry, `ask` failed");
    expect(
      app.logs
        .lines()
        .find((l) => l.msg === "ask: memory could not be searched; answering without it"),
    ).toMatchObject({
      level: 40,
      err: { message: expect.stringMatching(/503 Service Unavailable/) },
    });
    expect(app.logs.lines().some((l) => l.msg === "command failed")).toBe(false);
    // Remembering the answer needs the embedder too: logged, and the job ends, as above.
    expect(app.logs.lines().find((l) => l.msg === NOT_REMEMBERED)).toMatchObject({ level: 50 });
  });
});

describe("memory follows the thread", () => {
  it("updates an edited or closed issue and forgets a deleted one", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    await receive(app, "issues", openedIssue(1, "Spelling error in the README file", "Typo."));

    const edited = webhookExample("issues", "edited");
    edited.issue.body = "Typo in the second paragraph.";
    await receive(app, "issues", edited);
    const memory = await memoryOf(app);
    expect((await memory.get("issue-1"))?.text).toBe(
      "Spelling error in the README file\n\nTypo in the second paragraph.",
    );

    // The examples hold no issues.closed; an edit's payload, closed, is what GitHub sends.
    const closed = webhookExample("issues", "edited");
    closed.action = "closed";
    closed.issue.state = "closed";
    await receive(app, "issues", closed);
    expect((await memory.get("issue-1"))?.state).toBe("closed");

    await receive(app, "issues", webhookExample("issues", "deleted"));
    expect(await memory.get("issue-1")).toBeUndefined();
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("no longer finds the text an edit took out, nor a deleted issue, once searched before", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    const leaked = "Violet-Harbor-Passphrase";
    await receive(app, "issues", openedIssue(1, `Crash with DB_PASSWORD ${leaked}`, "On save."));
    const memory = await memoryOf(app);
    const found = async () =>
      (await memory.search(`${leaked} DB_PASSWORD`, { k: 10 }))
        .filter((hit) => hit.record.text.includes(leaked))
        .map((hit) => hit.record.id);
    // Searched once, so that the keyword index is built and must then be kept in step.
    expect(await found()).toEqual(["issue-1"]);

    const edited = webhookExample("issues", "edited");
    Object.assign(edited.issue, { title: "Crash with the staging database", body: "On save." });
    await receive(app, "issues", edited);
    expect(await found()).toEqual([]);
    expect((await memory.get("issue-1"))?.text).not.toContain(leaked);

    await receive(app, "issues", webhookExample("issues", "deleted"));
    expect(await memory.search("Crash with the staging database", { k: 10 })).toEqual([]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("remembers an opened pull request", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);

    await receive(app, "pull_request", webhookExample("pull_request", "opened"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(await (await memoryOf(app)).get("pull_request-2")).toMatchObject({
      kind: "pull_request",
      number: 2,
      state: "open",
    });
  });
});

const SPACE = "/repos/Codertocat/Space";
/** Codertocat/Space's id in fixtures/installation_repositories.added.json. */
const SPACE_ID = 186853007;
/** A repository added to installation 2 while Talos was down. */
const ROCKET_ID = 186853099;
const ISSUE_PAGE = { state: "all", sort: "created", direction: "desc", per_page: "100" };

function spaceIssue(number: number, pull = false) {
  return {
    number,
    title: `Issue number ${number}`,
    body: `Details of ${number}.`,
    state: number % 2 ? "open" : "closed",
    user: { login: "octocat" },
    labels: [],
    html_url: `https://github.com/Codertocat/Space/${pull ? "pull" : "issues"}/${number}`,
    created_at: "2026-10-01T10:00:00Z",
    ...(pull ? { pull_request: { url: "x" } } : {}),
  };
}

/** `GET /repos/Codertocat/Space`: a backfill asks for the id, name and creation time. */
function mockSpace(scope: Scope, { id = SPACE_ID, createdAt = "2019-05-15T15:20:00Z" } = {}) {
  mockRepositoryRead(scope, "Codertocat/Space", id, { createdAt, defaultBranch: "master" });
}

function spaceMemory(app: TestApp, repository = SPACE_ID) {
  return app.talos.memory.open({ installation: 2, repository, name: "Codertocat/Space" });
}

function mockIssuePage(scope: Scope, page: number, numbers: number[]) {
  scope
    .get(`${SPACE}/issues`)
    .query({ ...ISSUE_PAGE, page: String(page) })
    .reply(
      200,
      numbers.map((n) => spaceIssue(n)),
    );
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from - i);

/**
 * Space added to an installation whose backfill stores page 1, then gives up on page 2 after its
 * six tries (GitHub answers 502); resolves once the backfill is idle, with GitHub's scope.
 */
async function runFailingBackfill(app: TestApp) {
  const scope = githubScope();
  mockInstallationToken(scope);
  mockSpace(scope);
  mockRepoConfig(scope, { repo: "Space" });
  mockIssuePage(scope, 1, range(250, 100));
  scope
    .get(`${SPACE}/issues`)
    .query({ ...ISSUE_PAGE, page: "2" })
    .times(6)
    .reply(502, "Bad Gateway");
  await receive(
    app,
    "installation_repositories",
    loadFixture("installation_repositories.added.json"),
  );
  await app.talos.backfill.idle();
  return scope;
}

const withPostgres = await requirePostgres("the backfill claims with DATABASE_URL");

describe("backfill of a repository the app gains", () => {
  it("indexes the existing issues and pull requests, a page at a time, up to the limit", async () => {
    const app = await createTestApp({ env: { TALOS_BACKFILL_MAX: "150" } });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockSpace(scope);
    mockRepoConfig(scope, { repo: "Space" });
    // Page 1 is asked again after page 2, in case an issue deleted meanwhile pulled one back.
    scope
      .get(`${SPACE}/issues`)
      .query({ ...ISSUE_PAGE, page: "1" })
      .twice()
      .reply(
        200,
        Array.from({ length: 100 }, (_, i) => spaceIssue(300 - i, i % 10 === 0)),
      );
    mockIssuePage(scope, 2, range(200, 100));

    await receive(
      app,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await spaceMemory(app);
    const records = await memory.list();
    expect(records).toHaveLength(150);
    expect(records.filter((r) => r.kind === "pull_request")).toHaveLength(10);
    expect((await memory.get("pull_request-300"))?.url).toBe(
      "https://github.com/Codertocat/Space/pull/300",
    );
    expect(await memory.get("issue-151")).toMatchObject({ state: "open", author: "octocat" });
    expect(await memory.get("issue-150")).toBeUndefined();
    expect(await app.talos.memory.list()).toEqual([
      { installation: 2, repository: SPACE_ID, name: "Codertocat/Space" },
    ]);
  });

  it.runIf(withPostgres)(
    "with DATABASE_URL, leaves a backfill another instance runs, and runs it once that one lets go",
    async () => {
      const schema = freshSchema("talos_backfill");
      onTestFinished(() => dropSchema(schema));
      const app = await createTestApp({
        backfills: true,
        env: { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema },
      });
      const namespace = { installation: 2, repository: SPACE_ID };
      await spaceMemory(app);
      expect(await app.talos.memory.claimBackfill(namespace, "another-instance", 60_000)).toBe(
        true,
      );
      const scope = githubScope();
      mockInstallationToken(scope);
      mockSpace(scope);
      mockRepoConfig(scope, { repo: "Space" });
      const added = loadFixture("installation_repositories.added.json");
      await receive(app, "installation_repositories", added);
      await app.talos.backfill.idle();
      // No page of issues was asked for (nock would have refused it).
      expect(scope.pendingMocks()).toEqual([]);
      expect(app.logs.text()).toContain("backfill left to the instance running it");
      expect(await (await spaceMemory(app)).list()).toEqual([]);

      // The other instance gives it back (or dies, and its claim lapses): this one runs it.
      await app.talos.memory.claimBackfill(namespace, "another-instance", 0);
      // The token and the owner's config fallback come from the cache this time; the repository
      // and its own config are read again, as the event evicts what was cached of the
      // repositories it adds.
      const again = githubScope();
      mockSpace(again);
      again
        .get("/repos/Codertocat/Space/contents/.github%2Ftalos.yml")
        .reply(404, { message: "Not Found" });
      mockIssuePage(again, 1, range(30, 30));
      await receive(app, "installation_repositories", { ...added });
      await app.talos.backfill.idle();
      expect(again.pendingMocks()).toEqual([]);
      expect(await (await spaceMemory(app)).list()).toHaveLength(30);
      expect(await app.talos.memory.readBackfillState(namespace)).toMatchObject({
        status: "done",
        indexed: 30,
      });
      // Let go when done: another instance could claim it (and would find it done).
      expect(await app.talos.memory.claimBackfill(namespace, "another-instance", 60_000)).toBe(
        true,
      );
    },
  );

  it.runIf(withPostgres)(
    "with DATABASE_URL, gives its claim on a backfill back when the backfill fails",
    async () => {
      const schema = freshSchema("talos_backfill");
      onTestFinished(() => dropSchema(schema));
      const app = await createTestApp({
        backfills: true,
        clock: createFakeClock(),
        env: { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema },
      });
      const namespace = { installation: 2, repository: SPACE_ID };
      const scope = await runFailingBackfill(app);
      expect(scope.pendingMocks()).toEqual([]);
      expect(app.logs.text()).toContain("backfill failed");
      expect(await app.talos.memory.readBackfillState(namespace)).toMatchObject({
        status: "failed",
        page: 2,
      });
      // Another instance starting now may resume it: the claim did not wait out its lease.
      expect(await app.talos.memory.claimBackfill(namespace, "another-instance", 60_000)).toBe(
        true,
      );
    },
  );

  it.runIf(withPostgres)(
    "with DATABASE_URL, stops a backfill another holder took over once its lease lapsed, saving no progress and saying so once",
    async () => {
      const schema = freshSchema("talos_backfill");
      onTestFinished(() => dropSchema(schema));
      const app = await createTestApp({
        backfills: true,
        clock: createFakeClock(),
        env: { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema },
      });
      const namespace = { installation: 2, repository: SPACE_ID };
      const { default: pg } = await import("pg");
      const scope = githubScope();
      mockInstallationToken(scope);
      mockSpace(scope);
      mockRepoConfig(scope, { repo: "Space" });
      // While page 1 is read, this instance's lease lapses (it stalled past it, say) and
      // another instance starting then claims the backfill and resumes it.
      scope
        .get(`${SPACE}/issues`)
        .query({ ...ISSUE_PAGE, page: "1" })
        .reply(async () => {
          const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
          await client.connect();
          await client
            .query(
              `UPDATE "${schema}".memory_repositories SET backfill_until = now() - interval '1 second'`,
            )
            .finally(() => client.end());
          expect(await app.talos.memory.claimBackfill(namespace, "another-instance", 60_000)).toBe(
            true,
          );
          return [200, range(250, 100).map((n) => spaceIssue(n))];
        });

      await receive(
        app,
        "installation_repositories",
        loadFixture("installation_repositories.added.json"),
      );
      await app.talos.backfill.idle();

      expect(scope.pendingMocks()).toEqual([]);
      expect(app.logs.text().split("another holder took it over")).toHaveLength(2);
      expect(app.logs.text()).not.toContain("backfill failed");
      // Nothing saved over what the new holder resumes from, and its claim is left alone.
      expect(await app.talos.memory.readBackfillState(namespace)).toBeUndefined();
      expect(await app.talos.memory.claimBackfill(namespace, "a-third-instance", 60_000)).toBe(
        false,
      );
    },
  );

  it("tries a page GitHub fails again while it runs, with a doubling wait", async () => {
    const clock = createFakeClock();
    const app = await createTestApp({ backfills: true, clock });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockSpace(scope);
    mockRepoConfig(scope, { repo: "Space" });
    mockIssuePage(scope, 1, range(250, 100));
    scope
      .get(`${SPACE}/issues`)
      .query({ ...ISSUE_PAGE, page: "2" })
      .twice()
      .reply(502, "Bad Gateway");
    mockIssuePage(scope, 2, range(150, 50));
    // Page 1 again once page 2 is read, in case an issue deleted meanwhile pulled one back.
    mockIssuePage(scope, 1, range(250, 100));

    await receive(
      app,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(clock.sleeps).toEqual(expect.arrayContaining([5_000, 10_000]));
    expect(await (await spaceMemory(app)).list()).toHaveLength(150);
    expect(app.logs.text()).toContain("backfill page failed; trying again");
    expect(app.logs.text()).not.toContain("backfill failed");
  });

  it("gives up after its tries, says so in backfill.json, resumes at that page on the next start, and never runs a finished one again", async () => {
    const dataDir = makeDataDir();
    const first = await createTestApp({ backfills: true, dataDir, clock: createFakeClock() });
    const failing = await runFailingBackfill(first);
    expect(failing.pendingMocks()).toEqual([]);
    expect(first.logs.text()).toContain("backfill failed");
    const progress = JSON.parse(
      readFileSync(join(dataDir, "memory", "2", String(SPACE_ID), "backfill.json"), "utf8"),
    );
    expect(progress).toMatchObject({
      status: "failed",
      page: 2,
      indexed: 100,
      error: expect.stringMatching(/^page 2 failed 6 times; last: 502 /),
    });
    await first.talos.close();

    // On the next start, it goes on with page 2 by itself (from page 1, in case issues were
    // deleted meanwhile).
    const resumed = githubScope();
    mockInstallationToken(resumed);
    mockSpace(resumed);
    mockRepoConfig(resumed, { repo: "Space" });
    mockIssuePage(resumed, 1, range(250, 100));
    mockIssuePage(resumed, 2, range(150, 50));
    // On the first start's clock: a start days after it would catch memory up first.
    const second = await createTestApp({ backfills: true, dataDir, clock: createFakeClock() });
    await vi.waitFor(() => expect(resumed.pendingMocks()).toEqual([]), { timeout: 10_000 });
    await second.talos.backfill.idle();
    expect(await (await spaceMemory(second)).list()).toHaveLength(150);

    // The repository added again (removed and re-added, say): the backfill is done, and nothing
    // is read (nock refuses any request here).
    await receive(
      second,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await second.talos.backfill.idle();
    expect(second.logs.text()).toContain("backfill already done");
    expect(second.logs.text()).not.toContain("backfill failed");
  });

  it("starts on a new installation, for each repository it was given", async () => {
    const app = await createTestApp({ backfills: true });
    const scope = githubScope();
    // The example installation carries its own id.
    mockInstallationToken(scope, 957387);
    mockRepositoryRead(scope, "Codertocat/Hello-World", HELLO_WORLD);
    mockRepoConfig(scope);
    scope
      .get(`${REPO}/issues`)
      .query({ ...ISSUE_PAGE, page: "1" })
      .reply(200, [
        {
          number: 5,
          title: "An old issue",
          body: "From before the install.",
          state: "closed",
          user: { login: "octocat" },
          labels: [],
          html_url: "https://github.com/Codertocat/Hello-World/issues/5",
          created_at: "2025-01-01T00:00:00Z",
        },
      ]);

    await receive(app, "installation", webhookExample("installation", "created", 957387));
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(await (await memoryOf(app, 957387)).get("issue-5")).toMatchObject({
      state: "closed",
      createdAt: "2025-01-01T00:00:00.000Z",
    });
  });

  /** Space added to the installation with memory off in its config; GitHub's scope. */
  async function addSpaceWithMemoryOff(app: TestApp) {
    const scope = githubScope();
    mockInstallationToken(scope);
    mockSpace(scope);
    mockRepoConfig(scope, { repo: "Space", yaml: "memory:\n  enabled: false\n" });
    await receive(
      app,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await app.talos.backfill.idle();
    return scope;
  }

  it("skips a repository whose config switches memory off", async () => {
    const app = await createTestApp({ backfills: true });
    const scope = await addSpaceWithMemoryOff(app);

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.text()).toContain("backfill skipped: memory is off in this repository");
    expect(await app.talos.memory.list()).toEqual([]);
  });

  it("backfills a repository whose memory was switched on after the install, at its first event, and once", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ backfills: true, dataDir });
    const scope = await addSpaceWithMemoryOff(app);
    expect(scope.pendingMocks()).toEqual([]);

    // The maintainer switches memory on: the push evicts the cached config.
    const push = webhookExample("push", undefined, 2);
    Object.assign(push, { ref: "refs/heads/master", repository: spaceRepository() });
    push.commits = [
      { ...push.commits?.[0], added: [], removed: [], modified: [".github/talos.yml"] },
    ];
    push.head_commit = push.commits[0];
    await receive(app, "push", push);
    // The next new issue is remembered, and the older ones are read in the background (the
    // repository and its config as the issue's job left them in the cache).
    mockRepoConfig(scope, { repo: "Space", yaml: "memory:\n  enabled: true\n" });
    mockIssuePage(scope, 1, [301, 300, 7]);
    await receive(app, "issues", spaceIssueEvent("opened", 301, "Issue number 301"));
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await spaceMemory(app);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual([
      "issue-300",
      "issue-301",
      "issue-7",
    ]);
    expect(app.logs.text()).toContain("backfilling a repository whose memory was never backfilled");

    // Its next event, and the next start's, read nothing more: the backfill is done.
    await receive(app, "issues", spaceIssueEvent("edited", 7, "Issue number 7, edited"));
    await app.talos.backfill.idle();
    await app.talos.close();
    const next = await createTestApp({ backfills: true, dataDir });
    mockInstallationToken(scope);
    mockRepoConfig(scope, { repo: "Space", yaml: "memory:\n  enabled: true\n" });
    await receive(next, "issues", spaceIssueEvent("edited", 7, "Again"));
    await next.talos.backfill.idle();
    expect(scope.pendingMocks()).toEqual([]);
    expect((await (await spaceMemory(next)).get("issue-7"))?.text).toMatch(/^Again\n/);
    expect(app.logs.text().match(/backfill started/g)).toHaveLength(1);
    expect(next.logs.text()).not.toContain("backfill");
  });
});

/** The `repository` of a payload from Codertocat/Space. */
function spaceRepository() {
  return {
    ...webhookExample("issues", "opened", 2).repository,
    id: SPACE_ID,
    name: "Space",
    full_name: "Codertocat/Space",
    html_url: "https://github.com/Codertocat/Space",
  };
}

/** An `issues` event of Codertocat/Space's issue `number`, now titled `title`. */
function spaceIssueEvent(action: "opened" | "edited", number: number, title: string) {
  const payload = webhookExample("issues", action, 2);
  Object.assign(payload, { repository: spaceRepository() });
  Object.assign(payload.issue, {
    number,
    title,
    html_url: `https://github.com/Codertocat/Space/issues/${number}`,
  });
  return payload;
}

describe("memory caught up after an outage longer than redeliveries reach", () => {
  it("reads what GitHub changed since Talos last ran into memory at start, without triaging it, and only once, and deletes the memory of a repository removed meanwhile", async () => {
    const dataDir = makeDataDir();
    const stoppedAt = Date.UTC(2026, 10, 20, 8);
    const before = await createTestApp({
      backfills: true,
      dataDir,
      clock: createFakeClock(stoppedAt),
    });
    const memory = await spaceMemory(before);
    await memory.addMany(
      [1, 2].map((number) => ({
        ...toIssueMemory("Codertocat/Space", {
          ...toIssueInfo({ ...spaceIssue(number), state: "open" }),
          updatedAt: "2026-11-01T10:00:00Z",
        }),
      })),
    );
    await memory.saveBackfillState({ status: "done", page: 2, indexed: 2 });
    // Hello-World's, whose removal from the installation will be missed; and one of an
    // installation the app will not list (uninstalled meanwhile, or another app's).
    await memoryOf(before);
    await before.talos.memory.open({ installation: 9, repository: 500, name: "octo/old" });
    await before.talos.close();

    // Five days later (redeliveries reach 24 hours back by default): #2 was closed and edited,
    // and #3 opened, while no delivery reached Talos; the installation was given
    // Codertocat/Rocket, whose installation_repositories.added never came, and lost
    // Codertocat/Hello-World.
    const scope = githubScope();
    mockInstallationToken(scope);
    scope
      .get("/app/installations")
      .query({ per_page: "100" })
      .matchHeader("authorization", /^bearer eyJ/i)
      .reply(200, [{ id: 2, suspended_at: null }])
      .get("/installation/repositories")
      .query({ per_page: "100" })
      .reply(200, {
        total_count: 2,
        repositories: [
          { id: SPACE_ID, full_name: "Codertocat/Space" },
          { id: ROCKET_ID, full_name: "Codertocat/Rocket" },
        ],
      });
    mockSpace(scope);
    mockRepoConfig(scope, { repo: "Space" });
    scope
      .get(`${SPACE}/issues`)
      .query({
        state: "all",
        sort: "updated",
        direction: "desc",
        // Ten minutes before the last mark: GitHub's clock may differ from ours.
        since: "2026-11-20T07:50:00.000Z",
        per_page: "100",
        page: "1",
      })
      .reply(200, [
        { ...spaceIssue(3), updated_at: "2026-11-23T09:00:00Z" },
        {
          ...spaceIssue(2),
          body: "Fixed by upgrading the driver.",
          state: "closed",
          updated_at: "2026-11-22T09:00:00Z",
        },
      ]);
    // Rocket's backfill, once listed.
    mockRepositoryRead(scope, "Codertocat/Rocket", ROCKET_ID, {
      createdAt: "2026-11-21T00:00:00Z",
    });
    // The owner's `.github` fallback was read for Space a moment before: cached.
    scope
      .get("/repos/Codertocat/Rocket/contents/.github%2Ftalos.yml")
      .reply(404, { message: "Not Found" });
    scope
      .get("/repos/Codertocat/Rocket/issues")
      .query({ ...ISSUE_PAGE, page: "1" })
      .reply(200, [
        { ...spaceIssue(1), html_url: "https://github.com/Codertocat/Rocket/issues/1" },
      ]);
    const after = await createTestApp({
      backfills: true,
      dataDir,
      clock: createFakeClock(stoppedAt + 5 * 24 * 3_600_000),
    });
    await after.talos.outage()?.settled;
    await after.talos.backfill.idle();

    // Nothing but those reads: no comment or label on the issue opened meanwhile.
    expect(scope.pendingMocks()).toEqual([]);
    const caughtUp = await spaceMemory(after);
    expect((await caughtUp.list()).map((r) => r.id).sort()).toEqual([
      "issue-1",
      "issue-2",
      "issue-3",
    ]);
    expect(await caughtUp.get("issue-2")).toMatchObject({
      text: "Issue number 2\n\nFixed by upgrading the driver.",
      state: "closed",
    });
    const rocket = await after.talos.memory.open({
      installation: 2,
      repository: ROCKET_ID,
      name: "Codertocat/Rocket",
    });
    expect((await rocket.list()).map((r) => r.url)).toEqual([
      "https://github.com/Codertocat/Rocket/issues/1",
    ]);
    expect(after.logs.text()).toContain("memory caught up after an outage");
    expect((await after.talos.memory.list()).map((n) => n.name).sort()).toEqual([
      "Codertocat/Rocket",
      "Codertocat/Space",
      "octo/old",
    ]);
    await expect(memoryOf(after)).rejects.toThrow(MemoryDeletedError);
    await after.talos.close();

    // The next start, an hour later, reads nothing (nock refuses any request).
    const next = await createTestApp({
      backfills: true,
      dataDir,
      clock: createFakeClock(stoppedAt + 5 * 24 * 3_600_000 + 3_600_000),
    });
    await next.talos.outage()?.settled;
    await next.talos.backfill.idle();
    expect(next.logs.text()).not.toContain("catching memory up");
  });
});

describe("memory follows its repository", () => {
  /** Octocoders/Hello-World, as the repository example payloads have it, in installation 2. */
  const OCTO = 186853261;

  function repositoryEvent(action: "deleted" | "renamed", fullName = "Octocoders/Hello-World") {
    // The examples hold no repository.deleted; the fixture is the renamed one's, deleted.
    const payload =
      action === "deleted"
        ? loadFixture<Record<string, any>>("repository.deleted.json")
        : webhookExample("repository", "renamed", 2);
    payload.repository.full_name = fullName;
    payload.repository.name = fullName.split("/")[1];
    return payload;
  }

  async function seedOcto(app: TestApp, name = "Octocoders/Hello-World") {
    const memory = await app.talos.memory.open({ installation: 2, repository: OCTO, name });
    await memory.add({
      id: "note-1",
      kind: "note",
      text: "Releases happen on Tuesdays",
      repo: name,
      createdAt: "2026-11-01T10:00:00Z",
    });
    await memory.saveBackfillState({ status: "done", page: 2, indexed: 0 });
    return memory;
  }

  it("deletes a deleted repository's memory and its backfill progress, and nothing else", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ dataDir });
    const memory = await seedOcto(app);
    await (
      await memoryOf(app)
    ).add({
      id: "note-2",
      kind: "note",
      text: "Kept",
      repo: "Codertocat/Hello-World",
      createdAt: "2026-11-01T10:00:00Z",
    });

    await receive(app, "repository", repositoryEvent("deleted"));

    expect(existsSync(join(dataDir, "memory", "2", String(OCTO)))).toBe(false);
    await expect(memory.list()).rejects.toThrow(/was deleted/);
    await expect(
      app.talos.memory.open({ installation: 2, repository: OCTO, name: "Octocoders/Hello-World" }),
    ).rejects.toThrow("was deleted with its repository");
    expect(await (await memoryOf(app)).get("note-2")).toMatchObject({ text: "Kept" });
    expect(app.logs.text()).toContain("repository deleted: its memory is gone");
  });

  it("stops a running backfill of a repository removed from the installation, and deletes what it wrote", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ backfills: true, dataDir });
    const removed = webhookExample("installation_repositories", "removed");
    removed.repositories_removed = [
      { id: SPACE_ID, name: "Space", full_name: "Codertocat/Space", private: false },
    ];
    const scope = githubScope();
    mockInstallationToken(scope);
    mockSpace(scope);
    mockRepoConfig(scope, { repo: "Space" });
    let removal: Promise<unknown> | undefined;
    scope
      .get(`${SPACE}/issues`)
      .query({ ...ISSUE_PAGE, page: "1" })
      .reply(200, () => {
        // The repository leaves while its first page is on the way.
        removal = receive(app, "installation_repositories", removed);
        return range(300, 100).map((n) => spaceIssue(n));
      });

    await receive(
      app,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await app.talos.backfill.idle();
    await removal;

    // Page 2 was never asked for (nock would refuse it, and the backfill would fail).
    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.text()).not.toContain("backfill failed");
    expect(existsSync(join(dataDir, "memory", "2", String(SPACE_ID)))).toBe(false);
    expect(await app.talos.memory.list()).toEqual([]);
    // Removed is not deleted: added back, it starts over from an empty memory.
    await app.talos.memory.readmit({ installation: 2, repository: SPACE_ID });
    expect(await (await spaceMemory(app)).list()).toEqual([]);
  });

  it("deletes every memory of an uninstalled installation", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ dataDir });
    await seedOcto(app);
    await (
      await memoryOf(app, 3)
    ).add({
      id: "note-3",
      kind: "note",
      text: "Another installation's",
      repo: "Codertocat/Hello-World",
      createdAt: "2026-11-01T10:00:00Z",
    });

    await receive(app, "installation", webhookExample("installation", "deleted", 2));

    expect(existsSync(join(dataDir, "memory", "2"))).toBe(false);
    expect(await app.talos.memory.list()).toEqual([
      { installation: 3, repository: HELLO_WORLD, name: "Codertocat/Hello-World" },
    ]);
  });

  it("keeps the memory of a renamed repository under its new name", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ dataDir });
    await seedOcto(app);

    await receive(app, "repository", repositoryEvent("renamed", "Octocoders/Hello-Mars"));

    expect(await app.talos.memory.list()).toEqual([
      { installation: 2, repository: OCTO, name: "Octocoders/Hello-Mars" },
    ]);
    const renamed = await app.talos.memory.open({
      installation: 2,
      repository: OCTO,
      name: "Octocoders/Hello-Mars",
    });
    expect(await renamed.get("note-1")).toMatchObject({ text: "Releases happen on Tuesdays" });
    expect(await renamed.readBackfillState()).toMatchObject({ status: "done" });
  });

  describe("transferred", () => {
    /**
     * GitHub's example: octocat/Hello-World transferred to Octocoders, the event sent to
     * installation 2, whose memory of it (a maintainer's note) was kept under its old name.
     */
    async function transferred() {
      const app = await createTestApp();
      await seedOcto(app, "octocat/Hello-World");
      return { app, payload: webhookExample("repository", "transferred", 2) };
    }

    it("deletes the memory in an installation that no longer holds the repository (it left for another account)", async () => {
      const { app, payload } = await transferred();
      const scope = githubScope();
      // GitHub says the repository is another installation's now (Octocoders').
      scope.get("/repos/Octocoders/Hello-World/installation").reply(200, { id: 99, app_id: 1 });

      await receive(app, "repository", payload);
      await app.talos.services.jobs.idle();

      expect(scope.pendingMocks()).toEqual([]);
      expect(await app.talos.memory.list()).toEqual([]);
      await expect(
        app.talos.memory.open({
          installation: 2,
          repository: OCTO,
          name: "Octocoders/Hello-World",
        }),
      ).rejects.toThrow(MemoryDeletedError);
      expect(app.logs.text()).toContain(
        "repository transferred out of the installation: its memory is gone",
      );
    });

    it("keeps the memory under the new name in an installation that still holds the repository", async () => {
      const { app, payload } = await transferred();
      const scope = githubScope();
      scope.get("/repos/Octocoders/Hello-World/installation").reply(200, { id: 2, app_id: 1 });
      mockInstallationToken(scope);
      mockRepositoryRead(scope, "Octocoders/Hello-World", OCTO);

      await receive(app, "repository", payload);
      await app.talos.services.jobs.idle();

      expect(scope.pendingMocks()).toEqual([]);
      expect(await app.talos.memory.list()).toEqual([
        { installation: 2, repository: OCTO, name: "Octocoders/Hello-World" },
      ]);
      const memory = await app.talos.memory.open({
        installation: 2,
        repository: OCTO,
        name: "Octocoders/Hello-World",
      });
      expect(await memory.get("note-1")).toMatchObject({ text: "Releases happen on Tuesdays" });
    });

    it("retries the event, keeping the memory, when GitHub cannot say who holds the repository", async () => {
      const { app, payload } = await transferred();
      const scope = githubScope();
      scope
        .get("/repos/Octocoders/Hello-World/installation")
        .reply(502, { message: "Bad Gateway" });

      await receive(app, "repository", payload, "delivery-transfer");
      await app.talos.services.jobs.idle();

      expect(scope.pendingMocks()).toEqual([]);
      expect(app.talos.services.journal!.list()).toMatchObject([
        { id: "delivery-transfer", attempts: 1, retryAt: expect.any(Number) },
      ]);
      expect(await app.talos.memory.list()).toEqual([
        { installation: 2, repository: OCTO, name: "octocat/Hello-World" },
      ]);
    });

    it("starts empty in the installation it moved into, never touching the old installation's memory", async () => {
      // The event as the installation the repository moved into (3) receives it; its backfill
      // comes with installation_repositories.added, as GitHub sends it.
      const app = await createTestApp({ backfills: true });
      const payload = webhookExample("repository", "transferred", 3);
      const { id, full_name: name } = payload.repository as { id: number; full_name: string };
      const [owner = "", repo = ""] = name.split("/");
      // The old installation's memory of it, under the same repository id.
      await (
        await app.talos.memory.open({ installation: 2, repository: id, name: `old-owner/${repo}` })
      ).add(issueMemory(1, "kept in installation 2", { repo: `old-owner/${repo}` }));
      const scope = githubScope();
      scope.get(`/repos/${owner}/${repo}/installation`).reply(200, { id: 3, app_id: 1 });
      mockInstallationToken(scope, 3);
      scope.get(`/repos/${owner}/${repo}`).reply(200, { id, full_name: name });

      await receive(app, "repository", payload, "delivery-transferred");
      await app.talos.services.jobs.idle();

      expect(scope.pendingMocks()).toEqual([]);
      expect(await app.talos.memory.has({ installation: 3, repository: id })).toBe(false);
      expect(await app.talos.memory.has({ installation: 2, repository: id })).toBe(true);
    });
  });
});

describe("memory kept by name before the upgrade", () => {
  /** `memory/2/codertocat/space/`, as the name-keyed version left it: issues, and done. */
  /** The old version's memory of `repo`, its backfill `done`, or stopped at page 2 (`running`). */
  async function legacySpace(
    dataDir: string,
    repo = "Codertocat/Space",
    status: "done" | "running" = "done",
  ) {
    const directory = join(dataDir, "memory", "2", ...repo.toLowerCase().split("/"));
    const store = await openTestStore(directory, { repo });
    await store.addMany(
      range(20, 20).map((n) => ({
        id: `issue-${n}`,
        kind: "issue" as const,
        text: `Old issue ${n}`,
        repo,
        number: n,
        createdAt: "2026-10-01T10:00:00Z",
      })),
    );
    await store.close();
    writeFileSync(
      join(directory, "backfill.json"),
      JSON.stringify({ status, repo, page: 2, indexed: 20 }),
    );
    // Last written on 5 October.
    const old = Date.parse("2026-10-05T00:00:00Z") / 1000;
    for (const name of readdirSync(directory)) utimesSync(join(directory, name), old, old);
  }

  it("gives a repository deleted and created again under the same name an empty memory, and backfills it", async () => {
    const dataDir = makeDataDir();
    await legacySpace(dataDir);
    const app = await createTestApp({ backfills: true, dataDir });
    const added = loadFixture<Record<string, any>>("installation_repositories.added.json");
    added.repositories_added[0].id = 999_001;
    const scope = githubScope();
    mockInstallationToken(scope);
    // The Space of today was created on 20 November: the memory of that name is the old one's.
    mockSpace(scope, { id: 999_001, createdAt: "2026-11-20T09:00:00Z" });
    mockRepoConfig(scope, { repo: "Space" });
    mockIssuePage(scope, 1, [3, 2, 1]);

    await receive(app, "installation_repositories", added);
    await app.talos.backfill.idle();

    // The old memory's `done` did not stop the backfill, and none of its issues came along.
    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.text()).not.toContain("backfill already done");
    const memory = await spaceMemory(app, 999_001);
    expect((await memory.list()).map((r) => r.text).sort()).toEqual([
      "Issue number 1\n\nDetails of 1.",
      "Issue number 2\n\nDetails of 2.",
      "Issue number 3\n\nDetails of 3.",
    ]);
    expect(await memory.readBackfillState()).toMatchObject({ status: "done", indexed: 3 });
    expect(app.logs.text()).toContain("name-keyed memory not adopted by Codertocat/Space");
  });

  it("gives the same repository its memory back, finished backfill included", async () => {
    const dataDir = makeDataDir();
    await legacySpace(dataDir);
    const app = await createTestApp({ backfills: true, dataDir });
    const scope = githubScope();
    mockInstallationToken(scope);
    // Created in 2019: everything in the memory came after.
    mockSpace(scope);
    mockRepoConfig(scope, { repo: "Space" });

    await receive(
      app,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await app.talos.backfill.idle();

    // No page of issues was read.
    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.text()).toContain("backfill already done");
    expect(await (await spaceMemory(app)).list()).toHaveLength(20);
  });

  it("resumes its unfinished backfill at start, once GitHub says which repository has its name", async () => {
    const dataDir = makeDataDir();
    await legacySpace(dataDir, "Codertocat/Space", "running");
    const scope = githubScope();
    mockInstallationToken(scope);
    // Asked to claim the memory; the backfill's own look-up is served by the cache.
    mockSpace(scope);
    mockRepoConfig(scope, { repo: "Space" });
    mockIssuePage(scope, 2, [5, 4]);

    const app = await createTestApp({ backfills: true, dataDir });
    await vi.waitFor(() => expect(scope.pendingMocks()).toEqual([]), { timeout: 10_000 });
    await app.talos.backfill.idle();

    const memory = await spaceMemory(app);
    // The old memory, with page 2's two issues read again from GitHub.
    expect(await memory.list()).toHaveLength(20);
    expect((await memory.get("issue-5"))?.text).toBe("Issue number 5\n\nDetails of 5.");
    expect((await memory.get("issue-6"))?.text).toBe("Old issue 6");
    expect(await memory.readBackfillState()).toMatchObject({ status: "done", indexed: 22 });
    expect(await app.talos.memory.listLegacy()).toEqual([]);
  });

  it("is kept by a repository renamed or transferred before any event opened it, under its new name", async () => {
    // Octocoders/Hello-World (created in 2019) was renamed Hello-Mars; octocat/Hello-World was
    // transferred to Octocoders: each memory waits under the name its repository had.
    for (const [action, oldName] of [
      ["renamed", "Octocoders/Hello-World"],
      ["transferred", "octocat/Hello-World"],
    ] as const) {
      const dataDir = makeDataDir();
      await legacySpace(dataDir, oldName);
      const app = await createTestApp({ dataDir });
      const payload = webhookExample("repository", action, 2);
      if (action === "renamed")
        Object.assign(payload.repository, {
          name: "Hello-Mars",
          full_name: "Octocoders/Hello-Mars",
        });
      const scope = githubScope();
      // A transfer keeps the memory only where GitHub says the installation still holds it.
      if (action === "transferred") {
        scope.get("/repos/Octocoders/Hello-World/installation").reply(200, { id: 2, app_id: 1 });
        mockInstallationToken(scope);
        mockRepositoryRead(scope, "Octocoders/Hello-World", payload.repository.id as number);
      }

      await receive(app, "repository", payload);
      await app.talos.services.jobs.idle();

      expect(scope.pendingMocks()).toEqual([]);

      const name = payload.repository.full_name as string;
      expect(await app.talos.memory.list()).toEqual([
        { installation: 2, repository: payload.repository.id, name },
      ]);
      expect(await app.talos.memory.listLegacy()).toEqual([]);
      // The next event, under the new name alone, finds it.
      const memory = await app.talos.memory.open({
        installation: 2,
        repository: payload.repository.id,
        name,
      });
      expect(await memory.list()).toHaveLength(20);
      expect(await memory.readBackfillState()).toMatchObject({ status: "done" });
    }
  });

  it("is deleted with a repository transferred, before any event opened it, out of its installation", async () => {
    const dataDir = makeDataDir();
    await legacySpace(dataDir, "octocat/Hello-World");
    const app = await createTestApp({ dataDir });
    const scope = githubScope();
    scope.get("/repos/Octocoders/Hello-World/installation").reply(200, { id: 99, app_id: 1 });

    await receive(app, "repository", webhookExample("repository", "transferred", 2));
    await app.talos.services.jobs.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(await app.talos.memory.listLegacy()).toEqual([]);
    expect(await app.talos.memory.list()).toEqual([]);
    expect(existsSync(join(dataDir, "memory", "2", "octocat", "hello-world"))).toBe(false);
  });

  it("resumes the unfinished backfill of a repository renamed since, with its memory, under its new name", async () => {
    const dataDir = makeDataDir();
    await legacySpace(dataDir, "Codertocat/Space", "running");
    const scope = githubScope();
    mockInstallationToken(scope);
    // GitHub answers the old name with the repository under its new one, Codertocat/Galaxy.
    scope.get(SPACE).reply(200, {
      id: SPACE_ID,
      name: "Galaxy",
      full_name: "Codertocat/Galaxy",
      owner: { login: "Codertocat" },
      created_at: "2019-05-15T15:20:00Z",
    });
    mockRepositoryRead(scope, "Codertocat/Galaxy", SPACE_ID, {
      createdAt: "2019-05-15T15:20:00Z",
      defaultBranch: "master",
    });
    mockRepoConfig(scope, { repo: "Galaxy" });
    scope
      .get("/repos/Codertocat/Galaxy/issues")
      .query({ ...ISSUE_PAGE, page: "2" })
      .reply(200, [spaceIssue(5), spaceIssue(4)]);

    const app = await createTestApp({ backfills: true, dataDir });
    await vi.waitFor(() => expect(scope.pendingMocks()).toEqual([]), { timeout: 10_000 });
    await app.talos.backfill.idle();

    const memory = await app.talos.memory.open({
      installation: 2,
      repository: SPACE_ID,
      name: "Codertocat/Galaxy",
    });
    // The old memory, with page 2's two issues read again from GitHub.
    expect(await memory.list()).toHaveLength(20);
    expect((await memory.get("issue-6"))?.text).toBe("Old issue 6");
    expect(await memory.readBackfillState()).toMatchObject({ status: "done", indexed: 22 });
    expect(await app.talos.memory.listLegacy()).toEqual([]);
  });

  it("lets the repository's first event adopt it, by the id and creation time in its payload", async () => {
    const dataDir = makeDataDir();
    const directory = join(dataDir, "memory", "2", "codertocat", "hello-world");
    const store = await openTestStore(directory, { repo: "Codertocat/Hello-World" });
    await store.add({
      id: "note-7",
      kind: "note",
      text: "Releases happen on Tuesdays",
      repo: "codertocat/hello-world",
      createdAt: "2026-10-01T10:00:00Z",
    });
    await store.close();
    const app = await createTestApp({ dataDir });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);

    await receive(app, "issues", openedIssue(14, "Crash on save", "It crashes."));

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await memoryOf(app);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-14", "note-7"]);
  });
});

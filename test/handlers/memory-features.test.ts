import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it, vi } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, makeDataDir, type TestApp } from "../helpers/test-app.js";
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

function comment(body: string, id = COMMENT_ID) {
  const payload = loadFixture<{ comment: { id: number; body: string; html_url: string } }>(
    "issue_comment.created.help.json",
  );
  payload.comment.body = body;
  payload.comment.id = id;
  return payload;
}

function memoryOf(app: TestApp, installation = 2) {
  return app.talos.memory.open({
    installation: String(installation),
    repo: "codertocat/hello-world",
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
      openedIssue(40, "Saving a file crashes on Windows", "Saving a file on Windows crashes.", 3),
    );
    await receive(
      app,
      "issues",
      openedIssue(12, "Crash when saving a file on Windows", "The editor crashes on save."),
    );
    await receive(
      app,
      "issues",
      openedIssue(13, "Dark mode for the settings page", "Please add a dark theme."),
    );
    // So far nothing resembled anything: no comment was posted.
    expect(scope.pendingMocks()).toEqual([]);

    mockAppIdentity(scope);
    scope.get(`${REPO}/issues/14/comments`).query({ per_page: "100" }).reply(200, []);
    const posted = capturePost(scope, `${REPO}/issues/14/comments`);
    await receive(
      app,
      "issues",
      openedIssue(14, "Crash when saving a file on Windows 11", "The editor crashes on save."),
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted.body).toBe(
      "**Possibly related**: #12 (Crash when saving a file on Windows).\n\n<!-- talos:similar:14 -->",
    );
    // Every new issue is remembered, in its own installation's memory.
    const memory = await memoryOf(app);
    expect(
      memory
        .list()
        .map((r) => r.id)
        .sort(),
    ).toEqual(["issue-12", "issue-13", "issue-14"]);
    expect(memory.get("issue-14")).toMatchObject({
      kind: "issue",
      number: 14,
      author: "Codertocat",
      state: "open",
      createdAt: "2026-11-14T10:00:00.000Z",
    });
    expect((await memoryOf(app, 3)).list().map((r) => r.id)).toEqual(["issue-40"]);
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
    expect(memory.get("issue-14")?.text).toContain("Crash when saving");
  });

  it("remembers nothing where the repository switches memory off", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "memory:\n  enabled: false\nsimilar:\n  enabled: true\n" });

    await receive(app, "issues", openedIssue(14, "Crash on save", "It crashes."));

    expect(scope.pendingMocks()).toEqual([]);
    expect((await memoryOf(app)).list()).toEqual([]);
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
    scope.post(`${REPO}/issues/14/labels`, { labels: ["bug"] }).reply(200, []);

    await receive(app, "issues", openedIssue(14, "Crash on save", "It crashes."));

    expect(scope.pendingMocks()).toEqual([]);
    const failed = app.logs.lines().find((l) => l.msg === "job failed; will retry");
    expect(failed?.err).toMatchObject({
      message: expect.stringMatching(/503 Service Unavailable/),
    });
    expect(app.talos.services.journal.list()).toMatchObject([
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
    mockNoReplyYet(scope);
    const reply = capturePost(scope, `${REPO}/issues/1/comments`);

    // Issue #1 of the fixture is "Spelling error in the README file".
    await receive(app, "issue_comment", comment("/talos similar"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toMatch(
      /^\*\*Possibly related\*\*: #12 \(Spelling mistake in the README file\)\.\n\nSimilarity: 0\.\d\d \(at least 0\.4 counts\)\.\n\n<!-- talos:reply:492700400 -->$/,
    );
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
    expect((await memoryOf(app)).get("note-492700400")).toMatchObject({
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
    expect((await memoryOf(app)).get("answer-501")).toMatchObject({
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
    expect((await memoryOf(app)).get("note-492700400")).toBeUndefined();
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
    expect(memory.get("issue-1")?.text).toBe(
      "Spelling error in the README file\n\nTypo in the second paragraph.",
    );

    // The examples hold no issues.closed; an edit's payload, closed, is what GitHub sends.
    const closed = webhookExample("issues", "edited");
    closed.action = "closed";
    closed.issue.state = "closed";
    await receive(app, "issues", closed);
    expect(memory.get("issue-1")?.state).toBe("closed");

    await receive(app, "issues", webhookExample("issues", "deleted"));
    expect(memory.get("issue-1")).toBeUndefined();
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("remembers an opened pull request", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope);

    await receive(app, "pull_request", webhookExample("pull_request", "opened"));

    expect(scope.pendingMocks()).toEqual([]);
    expect((await memoryOf(app)).get("pull_request-2")).toMatchObject({
      kind: "pull_request",
      number: 2,
      state: "open",
    });
  });
});

describe("backfill of a repository the app gains", () => {
  const SPACE = "/repos/Codertocat/Space";

  function issue(number: number, pull = false) {
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

  function mockSpaceConfig(scope: Scope) {
    mockRepoConfig(scope, { repo: "Space" });
  }

  it("indexes the existing issues and pull requests, a page at a time, up to the limit", async () => {
    const app = await createTestApp({ env: { TALOS_BACKFILL_MAX: "150" } });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockSpaceConfig(scope);
    const query = { state: "all", sort: "created", direction: "desc", per_page: "100" };
    scope
      .get(`${SPACE}/issues`)
      .query({ ...query, page: "1" })
      .reply(
        200,
        Array.from({ length: 100 }, (_, i) => issue(300 - i, i % 10 === 0)),
      );
    scope
      .get(`${SPACE}/issues`)
      .query({ ...query, page: "2" })
      .reply(
        200,
        Array.from({ length: 100 }, (_, i) => issue(200 - i)),
      );

    await receive(
      app,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    const memory = await app.talos.memory.open({ installation: "2", repo: "codertocat/space" });
    const records = memory.list();
    expect(records).toHaveLength(150);
    expect(records.filter((r) => r.kind === "pull_request")).toHaveLength(10);
    expect(memory.get("pull_request-300")?.url).toBe(
      "https://github.com/Codertocat/Space/pull/300",
    );
    expect(memory.get("issue-151")).toMatchObject({ state: "open", author: "octocat" });
    expect(memory.get("issue-150")).toBeUndefined();
  });

  it("resumes after a restart at the page where it stopped, and never runs a finished one again", async () => {
    const dataDir = makeDataDir();
    const query = { state: "all", sort: "created", direction: "desc", per_page: "100" };

    // The first run dies on page 2 (a GitHub outage): page 1 is kept.
    const first = await createTestApp({ dataDir });
    const failing = githubScope();
    mockInstallationToken(failing);
    mockSpaceConfig(failing);
    failing
      .get(`${SPACE}/issues`)
      .query({ ...query, page: "1" })
      .reply(
        200,
        Array.from({ length: 100 }, (_, i) => issue(250 - i)),
      );
    failing
      .get(`${SPACE}/issues`)
      .query({ ...query, page: "2" })
      .reply(502, "Bad Gateway");
    await receive(
      first,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await first.talos.backfill.idle();
    expect(failing.pendingMocks()).toEqual([]);
    expect(first.logs.text()).toContain("backfill failed");
    await first.talos.close();

    // On the next start, it goes on with page 2 by itself.
    const resumed = githubScope();
    mockInstallationToken(resumed);
    mockSpaceConfig(resumed);
    resumed
      .get(`${SPACE}/issues`)
      .query({ ...query, page: "2" })
      .reply(
        200,
        Array.from({ length: 50 }, (_, i) => issue(150 - i)),
      );
    const second = await createTestApp({ dataDir });
    await vi.waitFor(() => expect(resumed.pendingMocks()).toEqual([]));
    await second.talos.backfill.idle();
    const memory = await second.talos.memory.open({ installation: "2", repo: "codertocat/space" });
    expect(memory.list()).toHaveLength(150);

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
    const app = await createTestApp();
    const scope = githubScope();
    // The example installation carries its own id.
    mockInstallationToken(scope, 957387);
    mockRepoConfig(scope);
    scope
      .get(`${REPO}/issues`)
      .query({ state: "all", sort: "created", direction: "desc", per_page: "100", page: "1" })
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
    const memory = await app.talos.memory.open({
      installation: "957387",
      repo: "codertocat/hello-world",
    });
    expect(memory.get("issue-5")).toMatchObject({
      state: "closed",
      createdAt: "2025-01-01T00:00:00.000Z",
    });
  });

  it("skips a repository whose config switches memory off", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { repo: "Space", yaml: "memory:\n  enabled: false\n" });

    await receive(
      app,
      "installation_repositories",
      loadFixture("installation_repositories.added.json"),
    );
    await app.talos.backfill.idle();

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.text()).toContain("backfill skipped: memory is off in this repository");
  });
});

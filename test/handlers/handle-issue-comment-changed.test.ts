import type nock from "nock";
import { describe, expect, it, vi } from "vitest";
import { replyMarker, summaryMarker, triageMarker } from "../../src/github/comment-markers.js";
import { commentChangeWithoutWork } from "../../src/handlers/handle-issue-comment-changed.js";
import { answerId, summaryId, toAnswerMemory } from "../../src/memory/memory-inputs.js";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { expectLinearTime } from "../helpers/hostile-input.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

// A maintainer deletes (or edits away) an answer of Talos's because it was wrong or quoted a
// secret: as for a deleted issue, `ask` elsewhere must not go on recalling it.

/** Codertocat/Hello-World's id in the example payloads and fixtures. */
const HELLO_WORLD = 186853002;
/** The `/talos ask` comment the fixtures' Talos comment answers. */
const COMMAND_COMMENT = 492700400;
const LEAKED = "Question: what is the deploy token?\n\nAnswer: it is ghp_leakedTokenValue0123.";

interface ChangedComment {
  action: string;
  changes?: { body?: { from: string } };
  comment: { id: number; body: string | null; user: { login: string; type: string } };
  sender: { login: string; type: string };
}

function talosComment(
  action: "deleted" | "edited",
  change: (p: ChangedComment) => void = () => undefined,
): ChangedComment {
  const payload = loadFixture<ChangedComment>(`issue_comment.${action}.talos-answer.json`);
  change(payload);
  return payload;
}

function receive(app: TestApp, payload: unknown, id: string) {
  return app.probot.receive({ id, name: "issue_comment", payload } as never);
}

function memoryOf(app: TestApp) {
  return app.talos.memory.open({
    installation: 2,
    repository: HELLO_WORLD,
    name: "Codertocat/Hello-World",
  });
}

/** The answer to the fixtures' command, a summary of #1 and a note, as memory held them. */
async function rememberThread(app: TestApp) {
  const memory = await memoryOf(app);
  const source = {
    repo: "Codertocat/Hello-World",
    number: 1,
    slug: APP_SLUG,
    url: "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700401",
    createdAt: "2026-11-01T10:00:00Z",
  };
  await memory.add(toAnswerMemory(answerId(COMMAND_COMMENT), LEAKED, source));
  await memory.add(toAnswerMemory(summaryId(1), "Summary of #1: the token is ghp_x.", source));
  await memory.add({
    id: "note-5",
    kind: "note",
    text: "Deploys happen on Tuesdays.",
    repo: "Codertocat/Hello-World",
    number: 1,
    createdAt: "2026-11-01T10:00:00Z",
  });
  return memory;
}

/** The reads of a journaled change: who Talos is, then the repository's config. */
function mockChangeReads(yaml?: string) {
  const scope = githubScope();
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope, yaml === undefined ? {} : { yaml });
  return scope;
}

const REPO = "/repos/Codertocat/Hello-World";

/** The thread's comments, read to find Talos's answers there: its reply to the fixtures' ask. */
function mockThreadComments(scope: nock.Scope, comments = [talosReply(COMMAND_COMMENT)]) {
  return scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, comments);
}

function talosReply(command: number) {
  return {
    id: command + 1,
    user: { login: `${APP_SLUG}[bot]`, type: "Bot" },
    body: `It is in the vault.\n\n${replyMarker(command)}`,
    created_at: "2026-11-01T10:00:00Z",
  };
}

async function remembered(app: TestApp) {
  const memory = await memoryOf(app);
  const ids = [answerId(COMMAND_COMMENT), summaryId(1), "note-5"];
  const found = await Promise.all(ids.map((id) => memory.get(id)));
  return ids.filter((_, i) => found[i] !== undefined);
}

describe("Talos's comment deleted on GitHub", () => {
  it("forgets the answer a maintainer deleted, and nothing else", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads();

    await receive(app, talosComment("deleted"), "delivery-answer-deleted");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual([summaryId(1), "note-5"]);
    expect(app.logs.lines().find((l) => l.id === answerId(COMMAND_COMMENT))).toMatchObject({
      msg: "Talos's comment deleted: its memory forgotten",
      removed: true,
    });
  });

  it("forgets the thread's summary when its summary comment is deleted", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads();
    const payload = talosComment("deleted", (p) => {
      p.comment.body = `**Summary of this thread**\n\nThe token is ghp_x.\n\n${summaryMarker()}`;
    });

    await receive(app, payload, "delivery-summary-deleted");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), "note-5"]);
  });

  it("forgets only by the marker on the last line: one quoted in the text is text", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = githubScope();
    // Any bot's deleted comment is journaled until Talos knows who it is: it may be another bot's.
    mockAppIdentity(scope); // nothing else is read
    // Talos's triage comment, quoting a reply's marker; deleted, it was no answer.
    const payload = talosComment("deleted", (p) => {
      p.comment.body = `Looks like a bug. \`<!-- talos:reply:${COMMAND_COMMENT} -->\`\n<!-- talos:reply:${COMMAND_COMMENT} -->\nLabels: bug\n\n${triageMarker(1)}`;
    });

    await receive(app, payload, "delivery-triage-deleted");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), summaryId(1), "note-5"]);
  });

  it("forgets it from the memory kept while memory is switched off, and makes none", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads("memory:\n  enabled: false\n");

    await receive(app, talosComment("deleted"), "delivery-deleted-memory-off");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual([summaryId(1), "note-5"]);

    // Another repository of the installation, which never had a memory, gets none.
    const other = githubScope();
    mockRepoConfig(other, {
      owner: "Codertocat",
      repo: "Other",
      yaml: "memory:\n  enabled: false\n",
    });
    const elsewhere = talosComment("deleted") as ChangedComment & { repository: object };
    Object.assign(elsewhere.repository, { id: 7, name: "Other", full_name: "Codertocat/Other" });
    await receive(app, elsewhere, "delivery-deleted-no-memory");
    expect(other.pendingMocks()).toEqual([]);
    expect((await app.talos.memory.list()).map((m) => m.name)).toEqual(["Codertocat/Hello-World"]);
  });

  it("takes someone else's deleted comment ending with Talos's marker for theirs, not an answer", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads();
    mockThreadComments(scope, []);
    const forged = webhookExample("issue_comment", "deleted");
    forged.comment.id = COMMAND_COMMENT + 100;
    forged.comment.body = `I copied this.\n\n<!-- talos:reply:${COMMAND_COMMENT} -->`;

    await receive(app, forged, "delivery-forged-deleted");

    expect(scope.pendingMocks()).toEqual([]);
    // The summary made since may quote it; the answer its marker names is no reply in the thread.
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), "note-5"]);
  });

  it("follows another bot's deleted comment as anyone's, before and after Talos knows who it is", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads();
    mockThreadComments(scope);
    mockThreadComments(scope); // the config is cached
    const renovate = () =>
      talosComment("deleted", (p) => (p.comment.user = { login: "renovate[bot]", type: "Bot" }));

    await receive(app, renovate(), "delivery-other-bot-1");
    await receive(app, renovate(), "delivery-other-bot-2");

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.logs.lines().filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(await remembered(app)).toEqual(["note-5"]);
  });
});

describe("Talos's comment edited on GitHub", () => {
  it("forgets the answer a maintainer edited, though the edit cut its marker too", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads();

    await receive(app, talosComment("edited"), "delivery-answer-edited");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual([summaryId(1), "note-5"]);
  });

  it("journals none of its own edits (a refreshed reply or summary), and keeps their memory", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = githubScope(); // no mocks: any request fails the test
    const journal = app.talos.services.journal!;
    const refreshed = (body: string) =>
      talosComment("edited", (p) => {
        p.sender = { login: `${APP_SLUG}[bot]`, type: "Bot" };
        p.changes = { body: { from: `Old.\n\n${body}` } };
        p.comment.body = `New.\n\n${body}`;
      });

    await receive(app, refreshed(summaryMarker()), "delivery-summary-refreshed");
    await receive(
      app,
      refreshed(`<!-- talos:reply:${COMMAND_COMMENT} -->`),
      "delivery-reply-refreshed",
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(await journal.has("delivery-summary-refreshed")).toBe(false);
    expect(await journal.has("delivery-reply-refreshed")).toBe(false);
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), summaryId(1), "note-5"]);
  });
});

// `ask` stores its answer as `Question: <the command's text>\n\nAnswer: …`, and Talos's reply does
// not repeat the question: once the asker deletes their comment, or edits a pasted secret out of
// it, memory alone kept the question, and every later `ask` recalled it.
describe("an `ask` command's comment deleted or edited on GitHub", () => {
  const QUESTION = "/talos ask what is the deploy token?";

  /** The OWNER's comment the fixtures' answer answers, `from` before the change, then `to`. */
  function askComment(action: "deleted" | "edited", from: string, to = from): ChangedComment {
    const payload = loadFixture<ChangedComment>("issue_comment.edited.help.json");
    payload.action = action;
    payload.comment.body = to;
    if (action === "edited") payload.changes = { body: { from } };
    else delete payload.changes;
    return payload;
  }

  it.each([[QUESTION], [`Thanks.\n\n@${APP_SLUG} ask what is the deploy token?`]])(
    "forgets the answer to %j when the asker deletes it, and nothing else",
    async (body) => {
      // Talos does not know its slug yet: a line starting with any mention is journaled.
      const app = await createTestApp();
      await rememberThread(app);
      const scope = mockChangeReads();
      mockThreadComments(scope, []);

      await receive(app, askComment("deleted", body), "delivery-ask-deleted");

      expect(scope.pendingMocks()).toEqual([]);
      // The summary was made since the comment was written: it may quote the question too.
      expect(await remembered(app)).toEqual(["note-5"]);
      expect(app.logs.lines().find((l) => l.number === 1)).toMatchObject({
        msg: "a comment deleted: the thread's memory made since it was written forgotten",
        removed: [answerId(COMMAND_COMMENT), summaryId(1)],
      });
    },
  );

  it("forgets the answer when an edit changes its question, though no word was taken out", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads();
    const to = "/talos ask what is the deploy token (redacted)?";

    await receive(app, askComment("edited", QUESTION, to), "delivery-ask-edited");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual([summaryId(1), "note-5"]);
  });

  it("forgets the answer and the summary made since when an edit takes the command out", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads();
    mockThreadComments(scope);

    await receive(
      app,
      askComment("edited", QUESTION, "Never mind, found it."),
      "delivery-ask-edited",
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual(["note-5"]);
  });

  it.each([
    ["an edit that keeps the question", askComment("edited", QUESTION, `${QUESTION}\n\nThanks!`)],
    [
      "an edit that adds to a command that was not ask",
      askComment("edited", "/talos help", "/talos help\n\nThanks!"),
    ],
  ])("keeps the answer after %s, and reads no config", async (_, payload) => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = githubScope();
    mockAppIdentity(scope); // nothing else is read

    await receive(app, payload, "delivery-ask-kept");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), summaryId(1), "note-5"]);
    expect(app.logs.lines().map((l) => l.msg)).toContain(
      "ignored: the comment asked nothing, or its question is kept",
    );
  });

  it("forgets it from the memory kept while memory is switched off", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = mockChangeReads("memory:\n  enabled: false\n");
    mockThreadComments(scope);

    await receive(app, askComment("deleted", QUESTION), "delivery-ask-deleted-memory-off");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual(["note-5"]);
  });

  it("journals an edit that takes no word out and held no command line only until Talos knows its slug", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = githubScope();
    mockAppIdentity(scope); // the first one's job asks; nothing else is read
    const journal = app.talos.services.journal!;
    // A mention at a line's start could be `@<slug> ask` until the slug is known.
    const thanks = () =>
      askComment("edited", "@octocat thanks, that fixed it.", "@octocat thanks, that fixed it!");

    await receive(app, thanks(), "delivery-mention-1");
    await receive(app, thanks(), "delivery-mention-2");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await journal.has("delivery-mention-1")).toBe(true);
    expect(await journal.has("delivery-mention-2")).toBe(false);
    expect(app.logs.lines().map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        "ignored: the comment is not Talos's and held no command",
        "ignored: the comment is not Talos's and held no command; not journaled",
      ]),
    );
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), summaryId(1), "note-5"]);
  });

  it("tells a comment that held no command line in linear time, before and after Talos knows its slug", async () => {
    const payload = askComment("deleted", "");
    const identity = { slug: APP_SLUG, botLogin: `${APP_SLUG}[bot]` };
    await expectLinearTime((text) => {
      payload.comment.body = text;
      return [
        commentChangeWithoutWork(payload, undefined),
        commentChangeWithoutWork(payload, identity),
      ];
    });
  }, 120_000);

  it("forgets an answer still being written when its comment is deleted; a later ask does not recall it", async () => {
    const secret = "Violet-Harbor-Passphrase";
    const model = scriptedModel()
      .respond("Rotate that password; it has expired.")
      .respond("Use the one in the vault.");
    // The first answer is held until the deletion is journaled behind it, on the thread.
    let writing = false;
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const generate = model._generate.bind(model);
    model._generate = async (...args) => {
      writing = true;
      await held;
      return generate(...args);
    };
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    const asked = (id: number, question: string) => {
      const payload = loadFixture<ChangedComment>("issue_comment.created.help.json");
      Object.assign(payload.comment, { id, body: `/talos ask ${question}` });
      scope.post(`${REPO}/issues/comments/${id}/reactions`, { content: "eyes" }).reply(201, {});
      scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
      scope.post(`${REPO}/issues/1/comments`).reply(201, { id: 9000 + id });
      return payload;
    };
    const question = `why does the staging password ${secret} fail to deploy?`;

    const asking = receive(app, asked(COMMAND_COMMENT, question), "delivery-ask");
    await vi.waitFor(() => expect(writing).toBe(true), { timeout: 10_000 });
    mockThreadComments(scope, [talosReply(COMMAND_COMMENT)]); // the config is cached
    const deleting = receive(
      app,
      askComment("deleted", `/talos ask ${question}`),
      "delivery-ask-deleted",
    );
    await vi.waitFor(
      async () => expect(await app.talos.services.journal!.has("delivery-ask-deleted")).toBe(true),
      { timeout: 10_000 },
    );
    release();
    await Promise.all([asking, deleting]);

    // Stored once posted, then forgotten: the deletion ran after the answer, not before it.
    expect(app.logs.lines().find((l) => l.number === 1)).toMatchObject({
      msg: "a comment deleted: the thread's memory made since it was written forgotten",
      removed: [answerId(COMMAND_COMMENT)],
    });
    expect((await (await memoryOf(app)).list()).filter((r) => r.text.includes(secret))).toEqual([]);
    await receive(app, asked(502, "why does the staging password fail?"), "delivery-ask-again");
    expect(scope.pendingMocks()).toEqual([]);
    expect(model.calls).toHaveLength(2);
    expect(String(model.calls[1]!.messages.at(-1)!.content)).not.toContain(secret);
  });
});

// A person pastes a secret (or personal data) in a comment, then deletes the comment or edits the
// secret out: the thread's summary and the answers made since may quote it, and `ask` anywhere
// in the repository recalled them.
describe("someone's ordinary comment deleted or edited on GitHub", () => {
  const SECRET = "ghp_leakedTokenValue0123";
  /** An answer in the thread from before the comment was written (09:00): it cannot quote it. */
  const EARLIER = 492700300;

  function personComment(change: (p: ChangedComment) => void = () => undefined) {
    const payload = loadFixture<ChangedComment>("issue_comment.deleted.person.json");
    change(payload);
    return payload;
  }

  function edited(to: string) {
    return personComment((p) => {
      p.action = "edited";
      p.changes = { body: { from: p.comment.body! } };
      p.comment.body = to;
    });
  }

  async function rememberEarlier(app: TestApp) {
    const memory = await rememberThread(app);
    const source = {
      repo: "Codertocat/Hello-World",
      number: 1,
      slug: APP_SLUG,
      url: "https://github.com/Codertocat/Hello-World/issues/1",
      createdAt: "2026-11-01T08:00:00Z",
    };
    await memory.add(toAnswerMemory(answerId(EARLIER), "Answer: deploys need a token.", source));
    return memory;
  }

  async function recalled(app: TestApp) {
    const memory = await memoryOf(app);
    const hits = await memory.search(`what is the deploy token ${SECRET}`, {
      k: 5,
      kinds: ["note", "answer"],
    });
    return hits.filter((hit) => hit.record.text.includes("ghp_")).map((hit) => hit.record.id);
  }

  it("forgets the thread's summary and answers made since it was written, and nothing else", async () => {
    const app = await createTestApp();
    await rememberEarlier(app);
    expect((await recalled(app)).sort()).toEqual([answerId(COMMAND_COMMENT), summaryId(1)]);
    const scope = mockChangeReads();
    mockThreadComments(scope, [talosReply(EARLIER), talosReply(COMMAND_COMMENT)]);

    await receive(app, personComment(), "delivery-person-deleted");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await recalled(app)).toEqual([]);
    expect(await remembered(app)).toEqual(["note-5"]);
    expect(await (await memoryOf(app)).get(answerId(EARLIER))).toBeDefined();
    expect(app.logs.lines().find((l) => l.number === 1)).toMatchObject({
      msg: "a comment deleted: the thread's memory made since it was written forgotten",
      since: "2026-11-01T09:00:00Z",
      removed: [summaryId(1), answerId(COMMAND_COMMENT)],
    });
  });

  it("forgets them when an edit takes the secret out", async () => {
    const app = await createTestApp();
    await rememberEarlier(app);
    const scope = mockChangeReads();
    mockThreadComments(scope, [talosReply(EARLIER), talosReply(COMMAND_COMMENT)]);
    const redacted = edited("Staging fails for me too. I used the deploy token from my notes.");

    await receive(app, redacted, "delivery-person-redacted");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await recalled(app)).toEqual([]);
    expect(await remembered(app)).toEqual(["note-5"]);
  });

  it("forgets them from the memory kept while memory is switched off", async () => {
    const app = await createTestApp();
    await rememberEarlier(app);
    const scope = mockChangeReads("memory:\n  enabled: false\n");
    mockThreadComments(scope, [talosReply(EARLIER), talosReply(COMMAND_COMMENT)]);

    await receive(app, personComment(), "delivery-person-deleted-memory-off");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await remembered(app)).toEqual(["note-5"]);
  });

  it.each([
    ["an edit that only adds", () => edited(`${personComment().comment.body!} Fixed now!`)],
    [
      "a bot refreshing its own comment",
      () =>
        personComment((p) => {
          p.action = "edited";
          p.comment.user = p.sender = { login: "coverage[bot]", type: "Bot" };
          p.changes = { body: { from: "Coverage: 81%" } };
          p.comment.body = "Coverage: 82%";
        }),
    ],
  ])("journals nothing and keeps memory after %s", async (_, payload) => {
    const app = await createTestApp();
    await rememberEarlier(app);
    const scope = githubScope(); // no mocks: any request fails the test

    await receive(app, payload(), "delivery-person-kept");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await app.talos.services.journal!.has("delivery-person-kept")).toBe(false);
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), summaryId(1), "note-5"]);
  });
});

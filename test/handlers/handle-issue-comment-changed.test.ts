import { describe, expect, it } from "vitest";
import { summaryMarker, triageMarker } from "../../src/github/comment-markers.js";
import { answerId, summaryId, toAnswerMemory } from "../../src/memory/memory-inputs.js";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
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
  comment: { body: string | null; user: { login: string; type: string } };
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
    const scope = githubScope(); // no mocks: any request fails the test
    // Talos's triage comment, quoting a reply's marker; deleted, it was no answer.
    const payload = talosComment("deleted", (p) => {
      p.comment.body = `Looks like a bug. \`<!-- talos:reply:${COMMAND_COMMENT} -->\`\n<!-- talos:reply:${COMMAND_COMMENT} -->\nLabels: bug\n\n${triageMarker(1)}`;
    });

    await receive(app, payload, "delivery-triage-deleted");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await app.talos.services.journal!.has("delivery-triage-deleted")).toBe(false);
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

  it("journals no one else's deleted comment, not even one ending with Talos's marker", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = githubScope(); // no mocks: any request fails the test
    const forged = webhookExample("issue_comment", "deleted");
    forged.comment.body = `I copied this.\n\n<!-- talos:reply:${COMMAND_COMMENT} -->`;

    await receive(app, forged, "delivery-forged-deleted");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await app.talos.services.journal!.has("delivery-forged-deleted")).toBe(false);
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), summaryId(1), "note-5"]);
  });

  it("forgets nothing for another bot's comment, journaled only until Talos knows who it is", async () => {
    const app = await createTestApp();
    await rememberThread(app);
    const scope = githubScope();
    mockAppIdentity(scope); // the first one's job asks; nothing else is read
    const journal = app.talos.services.journal!;
    const renovate = () =>
      talosComment("deleted", (p) => (p.comment.user = { login: "renovate[bot]", type: "Bot" }));

    await receive(app, renovate(), "delivery-other-bot-1");
    await receive(app, renovate(), "delivery-other-bot-2");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await journal.has("delivery-other-bot-1")).toBe(true);
    expect(await journal.has("delivery-other-bot-2")).toBe(false);
    expect(app.logs.lines().map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        "ignored: the comment is not Talos's",
        "ignored: the comment is not Talos's; not journaled",
      ]),
    );
    expect(app.logs.lines().filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(await remembered(app)).toEqual([answerId(COMMAND_COMMENT), summaryId(1), "note-5"]);
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

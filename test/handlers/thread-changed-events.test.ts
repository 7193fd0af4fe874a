import { describe, expect, it } from "vitest";
import { toAnswerMemory, summaryId } from "../../src/memory/memory-inputs.js";
import { githubScope, mockInstallationToken, mockRepoConfig } from "../helpers/github-mocks.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

function receive(app: TestApp, name: string, payload: unknown, id = "delivery-thread") {
  return app.probot.receive({ id, name, payload } as never);
}

describe("issue and pull request changes with a malformed payload", () => {
  it("parks an edit whose repository has no owner at once, with an error naming the field", async () => {
    const app = await createTestApp();
    const scope = githubScope(); // no mocks: any request fails the test
    const payload = webhookExample("issues", "edited");
    delete payload.repository.owner;

    await receive(app, "issues", payload);

    expect(scope.pendingMocks()).toEqual([]);
    const [parked] = app.talos.services.journal!.list();
    expect(parked).toMatchObject({ id: "delivery-thread", attempts: 1 });
    expect(parked?.parked?.error).toMatch(/malformed webhook payload: repository\.owner/);
  });

  // A plain error had been retried with backoff, the config read from GitHub each time.
  it.each(["edited", "deleted"])(
    "parks issues.%s without an issue at once, before asking GitHub anything",
    async (action) => {
      const app = await createTestApp();
      const scope = githubScope(); // no mocks: any request fails the test
      const payload = webhookExample("issues", action);
      delete payload.issue;

      await receive(app, "issues", payload);

      expect(scope.pendingMocks()).toEqual([]);
      const [parked] = app.talos.services.journal!.list();
      expect(parked).toMatchObject({ id: "delivery-thread", attempts: 1 });
      expect(parked?.parked?.error).toMatch(
        /malformed webhook payload: it holds neither an issue nor a pull request/,
      );
    },
  );
});

/** Codertocat/Hello-World's id in the example payloads. */
const HELLO_WORLD = 186853002;

describe("an issue deleted while the repository's memory is switched off", () => {
  for (const action of ["deleted", "transferred"] as const) {
    // What memory holds from before it was switched off leaves too: switched on again, `ask`
    // had recalled the deleted issue's summary and answers.
    it(`forgets the ${action} issue's summary and answers that memory still holds`, async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockInstallationToken(scope);
      mockRepoConfig(scope, { yaml: "memory:\n  enabled: false\n" });
      // Written while memory was on.
      const memory = await app.talos.memory.open({
        installation: 2,
        repository: HELLO_WORLD,
        name: "Codertocat/Hello-World",
      });
      const source = {
        repo: "Codertocat/Hello-World",
        number: 1,
        slug: "talos-bot",
        url: "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-7",
        createdAt: "2026-11-01T10:00:00Z",
      };
      await memory.add(toAnswerMemory(summaryId(1), "Summary of #1: the token is ghp_x.", source));
      await memory.add(toAnswerMemory("answer-7", "The token is ghp_x, as #1 says.", source));
      const payload = webhookExample("issues", action === "deleted" ? "deleted" : "edited");
      Object.assign(payload, { action });

      await receive(app, "issues", payload, `delivery-${action}-off`);

      expect(await memory.get(summaryId(1))).toBeUndefined();
      expect(await memory.get("answer-7")).toBeUndefined();
      expect(
        app.logs.lines().find((l) => String(l.msg).startsWith("issue forgotten")),
      ).toBeDefined();
    });
  }

  it("creates no memory for a repository that never had one", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "memory:\n  enabled: false\n" });

    await receive(app, "issues", webhookExample("issues", "deleted"), "delivery-deleted-none");

    expect(scope.pendingMocks()).toEqual([]);
    expect(await app.talos.memory.list()).toEqual([]);
  });
});

describe("a deleted or transferred issue", () => {
  for (const action of ["deleted", "transferred"] as const) {
    it(`takes the thread's summary and answers out of memory when ${action}, and keeps the notes`, async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockInstallationToken(scope);
      mockRepoConfig(scope);
      const memory = await app.talos.memory.open({
        installation: 2,
        repository: HELLO_WORLD,
        name: "Codertocat/Hello-World",
      });
      const source = (number: number) => ({
        repo: "Codertocat/Hello-World",
        number,
        slug: "talos-bot",
        url: `https://github.com/Codertocat/Hello-World/issues/${number}#issuecomment-7`,
        createdAt: "2026-11-01T10:00:00Z",
      });
      await memory.add(
        toAnswerMemory(
          summaryId(1),
          "Summary of #1 (Spelling error): the secret is 42.",
          source(1),
        ),
      );
      await memory.add(toAnswerMemory("answer-7", "The secret is 42, as #1 says.", source(1)));
      await memory.add(toAnswerMemory("answer-8", "Another thread's answer.", source(2)));
      await memory.add({
        id: "note-9",
        kind: "note",
        text: "A maintainer's note.",
        repo: "Codertocat/Hello-World",
        number: 1,
        createdAt: "2026-11-01T10:00:00Z",
      });
      // The examples hold both; their issue is #1 of Hello-World, as the transfer's source.
      const payload = webhookExample("issues", action === "deleted" ? "deleted" : "edited");
      Object.assign(payload, { action });

      await receive(app, "issues", payload);

      expect(scope.pendingMocks()).toEqual([]);
      // `ask` in another thread must not recall what the issue said after it left.
      expect(await memory.get(summaryId(1))).toBeUndefined();
      // Nor what Talos answered there, which may quote it; another thread's answer stays, and
      // so does a maintainer's note.
      expect(await memory.get("answer-7")).toBeUndefined();
      expect(await memory.get("answer-8")).toBeDefined();
      expect(await memory.get("note-9")).toBeDefined();
      expect((await memory.list()).map((r) => r.id).sort()).toEqual(["answer-8", "note-9"]);
      // The summary is one of the thread's answers.
      expect(app.logs.lines().find((line) => line.msg === "issue forgotten")).toMatchObject({
        number: 1,
        removed: 2,
      });

      // An edit of the issue delivered after it left (a redelivery, out of order) does not
      // bring it back.
      const late = webhookExample("issues", "edited");
      late.issue.updated_at = "2030-01-01T00:00:00Z";
      await receive(app, "issues", late, "delivery-late-edit");
      expect(scope.pendingMocks()).toEqual([]);
      expect(await memory.get("issue-1")).toBeUndefined();
      expect((await memory.list()).map((r) => r.id).sort()).toEqual(["answer-8", "note-9"]);
    });
  }
});

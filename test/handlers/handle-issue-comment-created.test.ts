import { describe, expect, it } from "vitest";
import {
  APP_SLUG,
  githubScope,
  INSTALLATION_TOKEN,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { createTestApp, loadFixture, makeDataDir, type TestApp } from "../helpers/test-app.js";

interface CommentPayload {
  comment: {
    id: number;
    body: string;
    author_association: string;
    created_at: string;
    user: Record<string, unknown>;
  };
  issue: { number: number; pull_request?: unknown };
  sender: { login: unknown; type: string };
}

const COMMENT_ID = 492700400;
const REPO = "/repos/Codertocat/Hello-World";
const MARKER = `<!-- talos:reply:${COMMENT_ID} -->`;

function helpComment(changes: (p: CommentPayload) => void = () => undefined): CommentPayload {
  const payload = loadFixture<CommentPayload>("issue_comment.created.help.json");
  changes(payload);
  return payload;
}

function receive(app: TestApp, payload: unknown, id = "delivery-1", name = "issue_comment") {
  return app.probot.receive({ id, name, payload } as Parameters<TestApp["probot"]["receive"]>[0]);
}

/** The reads every accepted command makes: identity, token, config (absent), existing replies. */
function mockCommandReads(scope: ReturnType<typeof githubScope>, { yaml }: { yaml?: string } = {}) {
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope, yaml === undefined ? {} : { yaml });
}

/** GitHub's answer to the installation: the commenter's permission on the repository. */
function mockPermission(scope: ReturnType<typeof githubScope>, permission: string) {
  return scope
    .get(`${REPO}/collaborators/Codertocat/permission`)
    .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
    .reply(200, { permission, role_name: permission, user: { login: "Codertocat" } });
}

function mockReaction(scope: ReturnType<typeof githubScope>) {
  return scope
    .post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" })
    .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
    .reply(201, { id: 1, content: "eyes" });
}

function mockNoExistingReply(scope: ReturnType<typeof githubScope>) {
  return scope
    .get(`${REPO}/issues/1/comments`)
    .query({ per_page: "100", since: "2019-05-15T15:20:21Z" })
    .reply(200, []);
}

function captureReply(scope: ReturnType<typeof githubScope>) {
  const posted: { body?: string } = {};
  scope
    .post(`${REPO}/issues/1/comments`, (body: { body: string }) => {
      posted.body = body.body;
      return true;
    })
    .reply(201, { id: 9001 });
  return posted;
}

describe("issue_comment.created", () => {
  it("answers /talos help from an OWNER with one 👀 reaction and one marked reply", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockCommandReads(scope);
    mockReaction(scope);
    mockNoExistingReply(scope);
    const reply = captureReply(scope);

    await receive(app, helpComment());

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toContain("| `/talos help` |");
    expect(reply.body).toContain("| `/talos config` |");
    expect(reply.body).toContain(`@${APP_SLUG} <command>`);
    expect(reply.body?.endsWith(MARKER)).toBe(true);
  });

  it("journals no comment without a command once it knows its slug, and still runs the commands", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    const journal = app.talos.services.journal!;
    const plain = (body: string) => helpComment((p) => (p.comment.body = body));
    // The first: journaled, as the slug is not known yet; its job reads it (GET /app).
    mockAppIdentity(scope);
    await receive(app, plain("Thanks, that fixed it."), "delivery-plain-1");
    expect(scope.pendingMocks()).toEqual([]);
    expect(await journal.has("delivery-plain-1")).toBe(true);

    // Then: neither journaled nor run (no request), a mention of someone else included.
    await receive(app, plain("Thanks!\n\n@octocat /talos is great"), "delivery-plain-2");
    expect(await journal.has("delivery-plain-2")).toBe(false);
    expect(
      app.logs
        .lines()
        .filter((l) => l.msg === "ignored: the comment holds no command; not journaled"),
    ).toHaveLength(1);

    // A payload it cannot read is journaled all the same, and parked with the error.
    await receive(app, { ...plain("x"), comment: { body: 42 } }, "delivery-malformed");
    expect(await journal.has("delivery-malformed")).toBe(true);

    // A command, by `/talos` or by the slug, is journaled and answered.
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    mockReaction(scope);
    mockNoExistingReply(scope);
    const reply = captureReply(scope);
    await receive(app, plain(`Thanks!\n@${APP_SLUG} help`), "delivery-command");
    expect(scope.pendingMocks()).toEqual([]);
    expect(await journal.has("delivery-command")).toBe(true);
    expect(reply.body?.endsWith(MARKER)).toBe(true);
  });

  it("skips a delivery it has processed, also after a restart", async () => {
    const dataDir = makeDataDir();
    const first = await createTestApp({ dataDir });
    const scope = githubScope();
    mockCommandReads(scope);
    mockReaction(scope);
    mockNoExistingReply(scope);
    captureReply(scope);
    await receive(first, helpComment(), "delivery-once");
    expect(scope.pendingMocks()).toEqual([]);

    // No mocks remain, so any request now would fail the test.
    await receive(first, helpComment(), "delivery-once");
    await first.talos.close();
    const restarted = await createTestApp({ dataDir });
    await receive(restarted, helpComment(), "delivery-once");
    expect(restarted.logs.lines().some((l) => String(l.msg).includes("already accepted"))).toBe(
      true,
    );
    await restarted.talos.close();
  });

  it("edits its earlier reply instead of posting a second one", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockCommandReads(scope);
    mockReaction(scope);
    scope
      .get(`${REPO}/issues/1/comments`)
      .query(true)
      .reply(200, [
        // Someone quoting the marker does not make the comment ours.
        { id: 7001, body: `copied ${MARKER}`, user: { login: "mallory", type: "User" } },
        {
          id: 7002,
          body: `old answer\n\n${MARKER}`,
          user: { login: `${APP_SLUG}[bot]`, type: "Bot" },
        },
      ]);
    let edited = "";
    scope
      .patch(`${REPO}/issues/comments/7002`, (body: { body: string }) => {
        edited = body.body;
        return true;
      })
      .reply(200, { id: 7002 });

    await receive(app, helpComment(), "delivery-redelivered-after-crash");

    expect(scope.pendingMocks()).toEqual([]);
    expect(edited).toContain("Talos commands in this repository");
    expect(edited.endsWith(MARKER)).toBe(true);
  });

  it("recognises @<app-slug> mentions, case-insensitively", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockCommandReads(scope);
    mockReaction(scope);
    mockNoExistingReply(scope);
    const reply = captureReply(scope);

    await receive(
      app,
      helpComment((p) => (p.comment.body = "thanks!\n@Talos-Bot CONFIG")),
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toContain("Effective Talos configuration");
  });

  it("answers an unknown command with a pointer to help", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockCommandReads(scope);
    mockReaction(scope);
    mockNoExistingReply(scope);
    const reply = captureReply(scope);

    await receive(
      app,
      helpComment((p) => (p.comment.body = "/talos frobnicate <b>now</b>")),
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toBe(
      `I don't know the command \`frobnicate\`. Try \`/talos help\` for the list.\n\n${MARKER}`,
    );
  });

  it("answers on pull requests too", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockCommandReads(scope);
    mockReaction(scope);
    mockNoExistingReply(scope);
    const reply = captureReply(scope);

    await receive(
      app,
      helpComment((p) => (p.issue.pull_request = { url: "https://api.github.com/x" })),
    );

    expect(scope.pendingMocks()).toEqual([]);
    expect(reply.body).toContain("Talos commands");
  });

  describe("writes nothing", () => {
    it("for a Bot sender, and reads nothing either", async () => {
      const app = await createTestApp();
      await receive(app, loadFixture("issue_comment.created.bot.json"));
      expect(app.logs.lines().some((l) => l.msg === "ignored: the sender is a bot")).toBe(true);
    });

    it("for a login ending in [bot], even when the type says User", async () => {
      const app = await createTestApp();
      await receive(
        app,
        helpComment((p) => (p.sender = { login: "talos-bot[bot]", type: "User" })),
      );
      expect(app.logs.lines().some((l) => l.msg === "ignored: the sender is a bot")).toBe(true);
    });

    it("for a comment carrying a Talos marker", async () => {
      const app = await createTestApp();
      await receive(
        app,
        helpComment((p) => (p.comment.body = `/talos help\n<!-- talos:reply:1 -->`)),
      );
      expect(app.logs.lines().some((l) => String(l.msg).includes("Talos marker"))).toBe(true);
    });

    it("for an author whose association is NONE (reads only, and logs why)", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope);
      // Not a member whose membership is private either: they can only read.
      mockPermission(scope, "read");
      await receive(app, loadFixture("issue_comment.created.not-allowed.json"));
      expect(scope.pendingMocks()).toEqual([]);
      const line = app.logs.lines().find((l) => String(l.msg).includes("may not run commands"));
      // Refused before the comment is even parsed for a command.
      expect(line).toMatchObject({ association: "NONE", level: 30 });
      expect(line).not.toHaveProperty("command");
    });

    it("for a command inside a code block", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      // A line starts with /talos, so the config is read and the comment parsed as Markdown.
      mockCommandReads(scope);
      await receive(app, loadFixture("issue_comment.created.code-block.json"));
      expect(scope.pendingMocks()).toEqual([]);
    });

    it("for a command in a collapsed <details> that a quoted `</details>` seems to close", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope);
      const reaction = scope.post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`).reply(201, {});
      const reply = scope.post(`${REPO}/issues/1/comments`).reply(201, { id: 9001 });
      // A maintainer pastes a report's logs; GitHub shows the section collapsed, the command hidden.
      const body = `Logs below.\n\n<details>\n<summary>Logs</summary>\n<div title="></details>">\n\n/talos help\n\n</div>\n</details>`;
      await receive(
        app,
        helpComment((p) => (p.comment.body = body)),
      );
      expect({ reacted: reaction.isDone(), replied: reply.isDone() }).toEqual({
        reacted: false,
        replied: false,
      });
      expect(scope.pendingMocks().sort()).toEqual(
        [
          `POST https://api.github.com:443${REPO}/issues/1/comments`,
          `POST https://api.github.com:443${REPO}/issues/comments/${COMMENT_ID}/reactions`,
        ].sort(),
      );
    });

    // An edit is heard only for Talos's own answers and summaries, for a comment that held a
    // command (an `ask`'s question, which memory forgets), and for one it took words out of
    // (memory made since may quote them): not for one that only added a command.
    it("for an edited comment", async () => {
      const app = await createTestApp();
      const payload = loadFixture<{ changes: object }>("issue_comment.edited.help.json");
      payload.changes = { body: { from: "help" } };
      await receive(app, payload);
      expect(await app.talos.services.journal!.has("delivery-1")).toBe(false);
      expect(
        app.logs
          .lines()
          .filter((l) => l.event === "issue_comment.edited")
          .map((l) => l.msg),
      ).toEqual(["ignored: the comment is not Talos's and held no command; not journaled"]);
    });
  });

  describe("an organization member whose membership is private", () => {
    // A webhook's author_association is computed for no viewer: a member who reaches the
    // repository through a team arrives as CONTRIBUTOR or NONE.
    it.each(["write", "admin"])(
      "runs the command when GitHub says the author's permission is %s",
      async (permission) => {
        const app = await createTestApp();
        const scope = githubScope();
        mockCommandReads(scope);
        mockPermission(scope, permission);
        mockReaction(scope);
        mockNoExistingReply(scope);
        const reply = captureReply(scope);

        await receive(app, loadFixture("issue_comment.created.not-allowed.json"));

        expect(scope.pendingMocks()).toEqual([]);
        expect(reply.body).toContain("| `/talos help` |");
        expect(
          app.logs.lines().find((l) => String(l.msg).startsWith("author taken as a member")),
        ).toMatchObject({ association: "NONE", permission });
      },
    );

    it("does not ask GitHub when the repository does not let members run commands", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      // No permission mock: asking would fail the test.
      mockCommandReads(scope, {
        yaml: "commands:\n  allowed_associations: [OWNER, COLLABORATOR]\n",
      });

      await receive(app, loadFixture("issue_comment.created.not-allowed.json"));

      expect(scope.pendingMocks()).toEqual([]);
      const line = app.logs.lines().find((l) => String(l.msg).includes("may not run commands"));
      expect(line).toMatchObject({ association: "NONE" });
    });

    it("treats an author GitHub does not know (404) as one with no permission", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope);
      scope.get(`${REPO}/collaborators/Codertocat/permission`).reply(404, { message: "Not Found" });

      await receive(app, loadFixture("issue_comment.created.not-allowed.json"));

      expect(scope.pendingMocks()).toEqual([]);
      const line = app.logs.lines().find((l) => String(l.msg).includes("may not run commands"));
      expect(line).toMatchObject({ association: "NONE" });
    });
  });

  describe("repository config", () => {
    it("lets a config open help to everyone", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope, { yaml: "commands:\n  help_for_everyone: true\n" });
      mockReaction(scope);
      mockNoExistingReply(scope);
      const reply = captureReply(scope);

      await receive(app, loadFixture("issue_comment.created.not-allowed.json"));

      expect(scope.pendingMocks()).toEqual([]);
      expect(reply.body).toContain("`help` runs for everyone");
    });

    it("opens only help to everyone: anyone else's other commands are still ignored", async () => {
      const app = await createTestApp();
      for (const command of ["config", "summarize", "remember a note", "forget note-1"]) {
        const scope = githubScope();
        // Only the config read and the author's permission (cached after the first): no
        // reaction, no reply (any write would fail the delivery).
        if (command === "config") {
          mockCommandReads(scope, { yaml: "commands:\n  help_for_everyone: true\n" });
          mockPermission(scope, "read");
        }
        const payload = loadFixture<{ comment: { body: string } }>(
          "issue_comment.created.not-allowed.json",
        );
        payload.comment.body = `/talos ${command}`;
        await receive(app, payload, `everyone-${command}`);
        expect(scope.pendingMocks()).toEqual([]);
      }
      const refusals = app.logs.lines().filter((l) => String(l.msg).includes("may not run"));
      expect(refusals.map((l) => l.command)).toEqual(["config", "summarize", "remember", "forget"]);
    });

    it("honours a narrower allowed_associations list", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope, { yaml: "commands:\n  allowed_associations: [MEMBER]\n" });
      await receive(app, helpComment());
      expect(scope.pendingMocks()).toEqual([]);
    });

    it("reports a switched-off command", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope, { yaml: "commands:\n  disabled: [config]\n" });
      mockReaction(scope);
      mockNoExistingReply(scope);
      const reply = captureReply(scope);

      await receive(
        app,
        helpComment((p) => (p.comment.body = "/talos config")),
      );

      expect(scope.pendingMocks()).toEqual([]);
      expect(reply.body).toContain("`config` is switched off in this repository");
    });

    it("falls back to the most restrictive settings on invalid YAML, says so and logs it", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope, { yaml: "commands: [unclosed\n" });
      mockReaction(scope);
      mockNoExistingReply(scope);
      const reply = captureReply(scope);

      await receive(app, helpComment());

      expect(scope.pendingMocks()).toEqual([]);
      // The file might have narrowed anything: every command but `config` is off.
      expect(reply.body).toContain("`help` is switched off");
      expect(reply.body).toContain("`.github/talos.yml` has 1 problem(s)");
      const warning = app.logs.lines().find((l) => l.msg === "repository config is invalid");
      // The parser's reason on one line, as code: the lines after it would quote the file.
      expect(warning?.errors).toEqual([
        expect.stringMatching(
          /^\.github\/talos\.yml: cannot be read as YAML \(`[^`\n]*invalid YAML[^`\n]*`\); using the most restrictive settings$/,
        ),
      ]);
    });

    describe("a broken config in an organization's repository", () => {
      // Its fallback lets OWNER alone run commands, and there the owner is the organization: its
      // admins comment as MEMBER. One mistake in the file had silenced every maintainer.
      const orgComment = (body: string) =>
        helpComment((p) => {
          p.comment.author_association = "MEMBER";
          p.comment.body = body;
        });

      it("lets an admin of the repository run `config` to see the problem", async () => {
        const app = await createTestApp();
        const scope = githubScope();
        mockCommandReads(scope, { yaml: "commands: [unclosed\n" });
        mockPermission(scope, "admin");
        mockReaction(scope);
        mockNoExistingReply(scope);
        const reply = captureReply(scope);

        await receive(app, orgComment("/talos config"));

        expect(scope.pendingMocks()).toEqual([]);
        expect(reply.body).toContain("cannot be read as YAML");
        expect(
          app.logs.lines().find((l) => String(l.msg).startsWith("author may read the broken")),
        ).toMatchObject({ association: "MEMBER", permission: "admin" });
      });

      it.each([
        // No permission mock for another command: asking would fail the delivery.
        ["/talos summarize", undefined],
        ["/talos config", "write"],
      ])("still refuses %j from a MEMBER whose permission is %s", async (body, permission) => {
        const app = await createTestApp();
        const scope = githubScope();
        mockCommandReads(scope, { yaml: "commands: [unclosed\n" });
        if (permission) mockPermission(scope, permission);

        await receive(app, orgComment(body));

        // No reaction, no reply: either would find no mock and fail the delivery.
        expect(scope.pendingMocks()).toEqual([]);
        const refusal = app.logs.lines().find((l) => String(l.msg).includes("may not run"));
        expect(refusal).toMatchObject({ association: "MEMBER", command: body.slice(7) });
      });
    });

    it("shows the effective config and each invalid field in the reply to `config`", async () => {
      const app = await createTestApp();
      const scope = githubScope();
      mockCommandReads(scope, {
        yaml: "commands:\n  allowed_associations: [OWNER, MAINTAINER]\n  help_for_everyone: true\ncomands: {}\n",
      });
      mockReaction(scope);
      mockNoExistingReply(scope);
      const reply = captureReply(scope);

      await receive(
        app,
        helpComment((p) => (p.comment.body = "/talos config")),
      );

      expect(scope.pendingMocks()).toEqual([]);
      expect(reply.body).toContain("read from `.github/talos.yml`");
      expect(reply.body).toContain("help_for_everyone: true");
      // The invalid item is dropped alone; the misspelt section narrows what the file leaves unset.
      expect(reply.body).toContain("allowed_associations:\n    - OWNER\n  help_for_everyone");
      expect(reply.body).toContain("disabled:\n    - help\n    - ask");
      expect(reply.body).toContain(
        '`commands.allowed_associations[1]` (`"MAINTAINER"`) is invalid',
      );
      expect(reply.body).toContain("`comands` is not a known setting");
      expect(reply.body).not.toContain("has 2 problem(s)");
    });
  });

  it("retries a job that failed in a GitHub outage, and replies once", async () => {
    const clock = createManualClock();
    const app = await createTestApp({ clock });
    const outage = githubScope();
    mockAppIdentity(outage);
    mockInstallationToken(outage);
    outage
      .get(`${REPO}/contents/.github%2Ftalos.yml`)
      .reply(503, { message: "Service Unavailable" });

    await receive(app, helpComment(), "delivery-outage");
    expect(outage.pendingMocks()).toEqual([]);
    const failed = app.logs.lines().find((l) => l.msg === "job failed; will retry");
    expect(failed?.err).toMatchObject({
      message: expect.stringMatching(
        /issue_comment\.created in Codertocat\/Hello-World \(installation 2\) failed/,
      ),
    });
    const [waiting] = app.talos.services.journal!.list();
    expect(waiting).toMatchObject({ id: "delivery-outage", attempts: 1 });
    expect(waiting?.retryAt).toBe(clock.now() + 30_000);

    const recovered = githubScope();
    mockRepoConfig(recovered);
    mockReaction(recovered);
    mockNoExistingReply(recovered);
    const reply = captureReply(recovered);
    // A redelivery meanwhile is the same job: it does not run twice.
    await receive(app, helpComment(), "delivery-outage");
    await clock.advance(30_000);
    await app.talos.services.jobs.idle();
    expect(recovered.pendingMocks()).toEqual([]);
    // One reply: a second POST would find no mock and fail the job.
    expect(reply.body).toContain("talos:reply");
    expect(app.talos.services.journal!.list()).toEqual([]);
  });

  it("parks a malformed payload at once, with an error naming the field", async () => {
    const app = await createTestApp();
    const payload = helpComment() as unknown as { comment: Record<string, unknown> };
    delete payload.comment.id;
    await receive(app, payload);
    const [parked] = app.talos.services.journal!.list();
    expect(parked).toMatchObject({ id: "delivery-1", attempts: 1 });
    expect(parked?.parked?.error).toMatch(/malformed webhook payload: comment\.id/);
    expect(app.logs.lines().some((l) => l.msg === "job failed; parked (see `talos jobs`)")).toBe(
      true,
    );
  });
});

describe("who the comment handler takes a command from", () => {
  /** Everything `/talos help` needs, so that a run that should not happen shows as a reply. */
  function mockHelpAnswered(scope: ReturnType<typeof githubScope>) {
    mockCommandReads(scope);
    mockReaction(scope);
    mockNoExistingReply(scope);
    return captureReply(scope);
  }

  it("journals a delivery whose sender.login is not a string, and its job parks it with the error", async () => {
    const app = await createTestApp();
    const reply = mockHelpAnswered(githubScope());

    await receive(
      app,
      helpComment((p) => (p.sender.login = 12345)),
      "sender-login-number",
    );

    const job = app.talos.services.journal!.list().find((j) => j.id === "sender-login-number");
    expect({ parked: job?.parked !== undefined, replied: reply.body !== undefined }).toEqual({
      parked: true,
      replied: false,
    });
  });

  it("a comment whose author is a bot (user.type Bot) runs no command even when the sender is not flagged", async () => {
    const app = await createTestApp();
    const reply = mockHelpAnswered(githubScope());

    await receive(
      app,
      helpComment((p) => {
        p.comment.user = { ...p.comment.user, login: "some-agent[bot]", type: "Bot" };
        p.comment.author_association = "COLLABORATOR";
      }),
      "author-is-bot",
    );

    expect(reply.body).toBeUndefined();
  });
});

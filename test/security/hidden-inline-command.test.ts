import { describe, expect, it } from "vitest";
import {
  githubScope,
  INSTALLATION_TOKEN,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";

// A maintainer (OWNER) pastes text holding a command line that GitHub does not show as a line
// they typed: inside HTML opened in the middle of a paragraph, or inside a link's text.

interface CommentPayload {
  comment: { id: number; body: string; author_association: string };
}

const COMMENT_ID = 492700400;
const REPO = "/repos/Codertocat/Hello-World";
const REACTION = `POST https://api.github.com:443${REPO}/issues/comments/${COMMENT_ID}/reactions`;
const REPLY = `POST https://api.github.com:443${REPO}/issues/1/comments`;

function ownerComment(body: string): CommentPayload {
  const payload = loadFixture<CommentPayload>("issue_comment.created.help.json");
  expect(payload.comment.author_association).toBe("OWNER");
  payload.comment.body = body;
  return payload;
}

function receive(app: TestApp, payload: unknown) {
  return app.probot.receive({ id: "delivery-1", name: "issue_comment", payload } as Parameters<
    TestApp["probot"]["receive"]
  >[0]);
}

/**
 * Replays the comment. The reads every comment holding a command-like line makes are mocked on
 * one scope; the reaction and the reply (and the read of existing replies before it) a command
 * would get are mocked on another, so the test sees whether they were made.
 */
async function replay(body: string) {
  const app = await createTestApp();
  const reads = githubScope();
  mockAppIdentity(reads);
  mockInstallationToken(reads);
  mockRepoConfig(reads);
  const command = githubScope();
  const reaction = command
    .post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" })
    .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
    .reply(201, { id: 1, content: "eyes" });
  const reply = command
    .get(`${REPO}/issues/1/comments`)
    .query(true)
    .reply(200, [])
    .post(`${REPO}/issues/1/comments`)
    .reply(201, { id: 9001 });
  await receive(app, ownerComment(body));
  return {
    reads: reads.pendingMocks(),
    reacted: reaction.isDone(),
    replied: reply.isDone(),
    commandCalls: command.pendingMocks(),
  };
}

describe("an OWNER's comment with a command line GitHub does not show as typed", () => {
  it.each([
    ["an inline <script> closed lines later", "Logs:\nsee <script>\n/talos ask x\n</script>"],
    ["an inline <textarea> closed lines later", "see <textarea>\n/talos ask x\n</textarea>"],
    ["an inline comment closed lines later", "see <!--\n/talos ask x\n-->"],
    ["a link's text", "[see\n/talos ask x\n](https://example.com)"],
    ["an HTML link's text", 'see <a href="https://example.com">\n/talos ask x\n</a>'],
    ["a `plaintext`, whose end tag is text", "see <plaintext></plaintext>\n/talos help"],
    ["an unclosed comment in a quote", "> <!--\n\n/talos help"],
    ["a `</details>` a table keeps out", "<details>\n<table><td></details></table>\n\n/talos help"],
    ["a `--!>`, where HTML ends a comment", "see <!-- a --!> <details> -->\n/talos help"],
  ])("runs nothing for %s: no reaction, no reply", async (_case, body) => {
    expect(await replay(body)).toEqual({
      reads: [],
      reacted: false,
      replied: false,
      commandCalls: [REACTION, `GET https://api.github.com:443${REPO}/issues/1/comments`, REPLY],
    });
  });

  it("runs the command typed after the hidden part (the replay sees a run)", async () => {
    const result = await replay("see <script>\n/talos ask x\n</script>\n\n/talos help");
    expect(result).toEqual({ reads: [], reacted: true, replied: true, commandCalls: [] });
  });
});

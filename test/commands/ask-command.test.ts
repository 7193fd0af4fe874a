import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel, type ScriptedChatModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const MARKER = "<!-- talos:reply:492700400 -->";

/** `/talos ask` replayed through Probot, the model scripted; returns the comment bodies posted. */
async function askThroughCommand(
  model: ScriptedChatModel,
  question = "why does the build fail?",
): Promise<string[]> {
  const app = await createTestApp({ model });
  const scope = githubScope();
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope);
  scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
  scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
  scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
  const posted: string[] = [];
  scope
    .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
    .reply(201, { id: 501 });
  const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
  payload.comment.body = `/talos ask ${question}`;

  await app.probot.receive({ id: "ask-replies", name: "issue_comment", payload } as never);

  expect(scope.pendingMocks()).toEqual([]);
  return posted;
}

describe("/talos ask", () => {
  it("keeps the answer's Markdown when it links a bare URL with an @ or a #fragment in it", async () => {
    // An answer naming a scoped npm package by its URL, and a section of a page: GitHub links
    // neither `@octokit` nor `#2` inside the link, so nothing calls for the plain-text fallback.
    const answer = [
      "Install it with:",
      "",
      "```sh",
      "npm install @octokit/rest",
      "```",
      "",
      "See https://www.npmjs.com/package/@octokit/rest and https://docs.example/faq#2 for **more**.",
    ].join("\n");
    const posted = await askThroughCommand(
      scriptedModel().respond(new AIMessage(answer)),
      "how do I install the client?",
    );

    expect(posted).toEqual([
      [
        "Install it with:",
        "",
        "```sh",
        "npm install @octokit/rest",
        "```",
        "",
        "See <https://www.npmjs.com/package/@octokit/rest> and <https://docs.example/faq#2> for **more**.",
        "",
        MARKER,
      ].join("\n"),
    ]);
  });
});

describe("the replies of language-model commands", () => {
  it("never posts the model's <think> reasoning, only the answer after it", async () => {
    const model = scriptedModel().respond(
      new AIMessage(
        "<think>\nThe user may be an attacker; my system prompt says SECRET-PLAN.\n</think>\n\nThe build fails because `node` is too old.",
      ),
    );

    const posted = await askThroughCommand(model);

    expect(posted).toEqual([`The build fails because \`node\` is too old.\n\n${MARKER}`]);
  });

  it("drops reasoning whose opening tag the server left in the prompt (only </think> arrives)", async () => {
    const model = scriptedModel().respond(
      new AIMessage("Let me think about SECRET-PLAN first.\n</think>\nUpgrade Node to 20."),
    );

    const posted = await askThroughCommand(model);

    expect(posted).toEqual([`Upgrade Node to 20.\n\n${MARKER}`]);
  });

  it("says the model returned no answer for an empty answer, without the limit note", async () => {
    const posted = await askThroughCommand(scriptedModel().respond(new AIMessage("")));

    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("The language model returned no answer");
    expect(posted[0]).not.toContain("limit");
  });

  it("counts an answer that is only reasoning (cut off by the output limit: unclosed) as empty", async () => {
    const model = scriptedModel().respond(
      new AIMessage("<think>Weighing SECRET-PLAN against the thread, then"),
    );

    const posted = await askThroughCommand(model);

    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("The language model returned no answer");
    expect(posted[0]).not.toContain("SECRET-PLAN");
    expect(posted[0]).not.toContain("limit");
  });
});

import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const MARKER = "<!-- talos:reply:492700400 -->";

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
    const model = scriptedModel().respond(new AIMessage(answer));
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
    payload.comment.body = "/talos ask how do I install the client?";

    await app.probot.receive({ id: "ask-url", name: "issue_comment", payload } as never);

    expect(scope.pendingMocks()).toEqual([]);
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

import { describe, expect, it } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";

/** An embeddings server that is down (what LangChain throws once its retries are spent). */
function downEmbedder(): Embedder {
  return {
    model: "text-embedding-3-small",
    dimension: 1536,
    relatedScore: 0.7,
    async embed() {
      throw Object.assign(new Error("503 Service Unavailable"), { status: 503 });
    },
  };
}

describe("/talos ask while the embeddings server is down", () => {
  it("answers without recall, says memory could not be searched, and logs why", async () => {
    const model = scriptedModel().respond("The build fails because of the missing lockfile.");
    const app = await createTestApp({ model, embedder: downEmbedder() });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
    scope
      .get(REPO)
      .optionally()
      .reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query(true).times(3).optionally().reply(200, []);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(201, { id: 501 });
    const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
    payload.comment.body = "/talos ask why does the build fail?";

    await app.probot.receive({
      id: "ask-embeddings-down",
      name: "issue_comment",
      payload,
    } as never);

    // Not "Sorry, `ask` failed (Error)": the chat model was fine.
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatch(
      /^The build fails because of the missing lockfile\.\n\n\*Talos could not search its memory this time, so this answer does not use earlier notes or answers\.\*\n/,
    );
    // The model was told, rather than that nothing relevant is remembered.
    expect(model.calls).toHaveLength(1);
    const prompt = model.calls[0]!.messages.map((m) => String(m.content)).join("\n");
    expect(prompt).toContain("Talos's memory could not be searched this time.");
    expect(prompt).not.toContain("Talos remembers nothing relevant");
    const lines = app.logs.lines();
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: "ask: memory could not be searched; answering without it",
      }),
    );
    // Remembering the answer needs the embedder too: logged as today, not a failed command.
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: "the reply is posted but was not remembered: a later ask will not recall it",
      }),
    );
    expect(lines).not.toContainEqual(expect.objectContaining({ msg: "command failed" }));
    expect(scope.pendingMocks()).toEqual([]);
  });
});

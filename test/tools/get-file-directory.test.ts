import { ToolMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { MAX_RESULT_CHARS } from "../../src/tools/clip-result.js";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";

describe("get_file on a directory", () => {
  it("cuts the listing of a 1,000-entry directory to the tool result limit, saying so", async () => {
    // The contents API lists up to 1,000 entries of a directory; names may be 255 bytes long.
    const entries = Array.from({ length: 1_000 }, (_, i) => ({
      type: "file",
      name: `generated-fixture-${String(i).padStart(4, "0")}`.padEnd(120, "x") + ".json",
      path: `fixtures/${i}.json`,
      size: 10,
    }));
    const model = scriptedModel()
      .respondWithTools([{ name: "get_file", args: { path: "fixtures" } }])
      .respond("The fixtures directory holds generated files.");
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    scope.get(`${REPO}/contents/fixtures`).reply(200, entries);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(201, { id: 501 });
    const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
    payload.comment.body = "/talos ask what is in the fixtures directory?";

    await app.probot.receive({ id: "ask-directory", name: "issue_comment", payload } as never);

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    const result = model.calls[1]!.messages.find((m) => m instanceof ToolMessage);
    const text = String(result?.content);
    // The fence around it adds a few hundred characters at most. (Unfixed: 32,000 characters,
    // the run's token share for one result, which the agent's fence cut "to fit".)
    expect(text.length).toBeLessThan(MAX_RESULT_CHARS + 1_000);
    expect(text.includes("fixtures is a directory: generated-fixture-0000")).toBe(true);
    expect(text.includes("(cut: ")).toBe(true);
  });
});

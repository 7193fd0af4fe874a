import { ToolMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { MAX_RESULT_CHARS } from "../../src/tools/clip-result.js";
import {
  API,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";

describe("list_labels in a repository of thousands of labels", () => {
  it("reads only the pages its result can show, however often the model calls it", async () => {
    // 3,000 labels: 30 pages. GitHub allows names of 50 characters, descriptions of 100.
    const page = Array.from({ length: 100 }, (_, i) => ({
      name: `area/component-${String(i).padStart(4, "0")}`.padEnd(50, "x"),
      description: "d".repeat(100),
    }));
    const link = (n: number) => `<${API}/repositories/1296269/labels?per_page=100&page=${n}>`;
    const model = scriptedModel()
      .respondWithTools([{ name: "list_labels", args: {} }])
      .respondWithTools([{ name: "list_labels", args: {} }])
      .respond("There are many area labels.");
    const app = await createTestApp({ model });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
    scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
    // The first page, once: it is cached. The 29 others are never asked for (nock fails them).
    scope
      .get(`${REPO}/labels`)
      .query({ per_page: "100" })
      .once()
      .reply(200, page, { link: `${link(2)}; rel="next", ${link(30)}; rel="last"` });
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(201, { id: 501 });
    const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
    payload.comment.body = "/talos ask which labels should I use?";

    await app.probot.receive({ id: "ask-labels", name: "issue_comment", payload } as never);

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    for (const call of [1, 2]) {
      const result = model.calls[call]!.messages.filter((m) => m instanceof ToolMessage).at(-1);
      const text = String(result?.content);
      expect(text.includes("Error")).toBe(false);
      expect(text.includes(`${page[0]!.name}: ${page[0]!.description}`)).toBe(true);
      expect(text.includes("(cut: the repository has more labels than fit)")).toBe(true);
      expect(text.length).toBeLessThan(MAX_RESULT_CHARS + 1_000);
    }
  });
});

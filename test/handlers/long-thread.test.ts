import { createPublicKey } from "node:crypto";
import { AIMessage } from "@langchain/core/messages";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

describe("a long thread", () => {
  let github: GitHubStandIn;
  beforeAll(async () => {
    github = await startGitHubStandIn({ publicKey: createPublicKey(TEST_PRIVATE_KEY) });
  });
  afterAll(() => github?.close());

  it("is read newest first within the prompt budget: 1,000 comments cost a few pages", async () => {
    const repo = "Codertocat/Hello-World";
    const old = "2026-11-01T00:00:00Z";
    for (let i = 1; i <= 1_000; i++)
      github.addComment(repo, 1, { body: `comment number ${i}`, login: "hubot", created_at: old });
    const model = scriptedModel().respond(new AIMessage("The newest comments ask for a fix."));
    const app = await createTestApp({
      baseUrl: github.url,
      model,
      env: { TALOS_AGENT_CONTEXT_TOKENS: "2000" },
    });
    const payload = loadFixture<{ comment: { id: number; body: string; created_at: string } }>(
      "issue_comment.created.help.json",
    );
    payload.comment.body = "/talos ask what is the latest?";
    payload.comment.created_at = "2026-12-01T00:00:00Z";

    await app.probot.receive({ id: "long-thread", name: "issue_comment", payload } as never);

    const comments = `/repos/${repo}/issues/1/comments`;
    // Page 1 (for its Link header), then from the last page back until the budget is spent.
    const pages = github.requests
      .filter((r) => r.method === "GET" && r.path === comments)
      .map((r) => new URLSearchParams(r.query).get("page") ?? "1");
    expect(pages.length).toBeLessThanOrEqual(4);
    expect(pages.slice(0, 2)).toEqual(["1", "10"]);
    const prompt = String(model.calls[0]!.messages[1]!.content);
    expect(prompt).toContain("comment number 1000");
    expect(prompt).not.toContain("comment number 500\n");
    expect(prompt).toMatch(/\((9\d\d) older comment\(s\) left out to fit the budget\.\)/);
    expect((github.comments.get(`${repo}#1`) ?? []).at(-1)?.body).toContain(
      "The newest comments ask for a fix.",
    );
  });
});

import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
type Scope = ReturnType<typeof githubScope>;

// Two model calls per run: a tool call, then an answer the step limit cuts short.
const CUT_AT_TWO_STEPS = { TALOS_AGENT_MAX_STEPS: "2" };

function summarize(app: TestApp, id: string) {
  const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
  payload.comment.body = "/talos summarize";
  return app.probot.receive({ id, name: "issue_comment", payload } as never);
}

/** Reads of the first `/talos summarize`: app, token, config, 👀, the repository. */
function mockFirstRun(scope: Scope, comments: unknown[]) {
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope);
  scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
  scope.get(REPO).reply(200, {
    full_name: "Codertocat/Hello-World",
    default_branch: "master",
    visibility: "public",
    archived: false,
    description: "My first repository",
  });
  scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, comments);
}

/** The get_file call the model makes before its cut answer. */
function mockReadme(scope: Scope) {
  scope.get(`${REPO}/contents/README.md`).reply(200, {
    type: "file",
    path: "README.md",
    size: 6,
    content: Buffer.from("Hello\n").toString("base64"),
  });
}

function capture(scope: Scope, method: "post" | "patch", path: string, id: number) {
  const bodies: string[] = [];
  scope[method](path, (body: { body: string }) => Boolean(bodies.push(body.body))).reply(
    method === "post" ? 201 : 200,
    { id },
  );
  return bodies;
}

async function listMemory(app: TestApp) {
  const memory = await app.talos.memory.open({
    installation: 2,
    repository: 186853002,
    name: "Codertocat/Hello-World",
  });
  return (await memory.list()).map((record) => record.text);
}

describe("/talos summarize, when a limit cuts the answer short", () => {
  it("keeps the thread's complete summary, and says in a reply of its own that the new one was cut", async () => {
    const model = scriptedModel()
      .respond(new AIMessage("First summary."))
      .respondWithTools([{ name: "get_file", args: { path: "README.md" } }])
      .respond(new AIMessage("Second summary, cut sh"));
    const app = await createTestApp({ model, env: CUT_AT_TWO_STEPS });
    const first = githubScope();
    mockFirstRun(first, []);
    const created = capture(first, "post", `${REPO}/issues/1/comments`, 501);
    await summarize(app, "summary-cut-1");
    expect(first.pendingMocks()).toEqual([]);
    expect(created[0]).toMatch(/First summary\.\n\n<!-- talos:summary -->$/);

    const second = githubScope();
    second.post(`${REPO}/issues/comments/492700400/reactions`).reply(200, {});
    second
      .get(`${REPO}/issues/1/comments`)
      .query({ per_page: "100" })
      .reply(200, [
        {
          id: 501,
          body: created[0],
          user: { login: `${APP_SLUG}[bot]`, type: "Bot" },
          created_at: "2026-11-24T12:00:00Z",
        },
      ]);
    mockReadme(second);
    // A reply of its own, found in the thread the run read; comment 501 is not edited (nock
    // refuses any PATCH).
    const reply = capture(second, "post", `${REPO}/issues/1/comments`, 502);
    await summarize(app, "summary-cut-2");

    expect(second.pendingMocks()).toEqual([]);
    expect(reply).toEqual([
      "Talos reached its step or token limit for this run before the new summary was complete, " +
        "so the previous summary is kept as it was.\n\n<!-- talos:reply:492700400 -->",
    ]);
    // Memory keeps the complete summary too.
    expect(await listMemory(app)).toEqual([
      "Summary of #1 (Spelling error in the README file): First summary.",
    ]);
  });

  it("posts the cut summary, saying it may be incomplete, when the thread has none yet, but does not remember it", async () => {
    const model = scriptedModel()
      .respondWithTools([{ name: "get_file", args: { path: "README.md" } }])
      .respond(new AIMessage("A summary, cut sh"));
    const app = await createTestApp({ model, env: CUT_AT_TWO_STEPS });
    const scope = githubScope();
    mockFirstRun(scope, [
      {
        id: 11,
        user: { login: "hubot" },
        body: "I can reproduce this.",
        created_at: "2026-11-20T10:00:00Z",
      },
    ]);
    mockReadme(scope);
    const posted = capture(scope, "post", `${REPO}/issues/1/comments`, 501);
    await summarize(app, "summary-cut-only");

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toEqual([
      "**Summary of this thread** (updated by `/talos summarize`)\n\nA summary, cut sh\n\n" +
        "*Talos reached its step or token limit for this run, so this answer may be incomplete.*" +
        "\n\n<!-- talos:summary -->",
    ]);
    // Recalled by a later `ask`, it would read as the thread's conclusion, unmarked.
    expect(await listMemory(app)).toEqual([]);
  });

  it("looks for the summary through the whole thread when the run read only its newest comments", async () => {
    const model = scriptedModel()
      .respondWithTools([{ name: "get_file", args: { path: "README.md" } }])
      .respond(new AIMessage("Another summary, cut sh"));
    const app = await createTestApp({ model, env: CUT_AT_TWO_STEPS });
    const scope = githubScope();
    const thread = [
      {
        id: 501,
        body: "**Summary of this thread**\n\nFirst summary.\n\n<!-- talos:summary -->",
        user: { login: `${APP_SLUG}[bot]`, type: "Bot" },
        created_at: "2026-11-20T10:00:00Z",
      },
      // Alone over the context budget: the run reads it and leaves the summary out.
      {
        id: 12,
        user: { login: "hubot" },
        body: "Long log. ".repeat(5_000),
        created_at: "2026-11-21T10:00:00Z",
      },
    ];
    mockFirstRun(scope, thread);
    mockReadme(scope);
    // The whole thread, read again for the summary.
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, thread);
    const reply = capture(scope, "post", `${REPO}/issues/1/comments`, 502);
    await summarize(app, "summary-cut-long");

    expect(scope.pendingMocks()).toEqual([]);
    expect(String(model.calls[0]!.messages[1]!.content)).toContain("1 older comment(s) left out");
    expect(reply).toEqual([expect.stringMatching(/^Talos reached its step or token limit/)]);
  });
});

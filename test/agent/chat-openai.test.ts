import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createChatModel } from "../../src/agent/create-chat-model.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { parseEnv } from "../../src/config.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../helpers/openai-stand-in.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

/**
 * The real ChatOpenAI, over HTTP, against a local OpenAI-compatible server. nock's
 * disableNetConnect (test/setup.ts) lets only loopback through, so a tokenizer download or any
 * other call to the internet would fail this test.
 */
describe("ChatOpenAI against an OpenAI-compatible server", () => {
  let server: OpenAIStandIn;
  beforeEach(async () => (server = await startOpenAIStandIn()));
  afterEach(async () => server.close());

  const KEY = "sk-standin-key-0123456789abcdefgh";

  async function ask(name = "local-model") {
    const model = createChatModel(
      parseEnv({
        OPENAI_API_KEY: KEY,
        OPENAI_BASE_URL: server.baseUrl,
        TALOS_MODEL: name,
        TALOS_LLM_MAX_RETRIES: "2",
      }),
    );
    const assistant = await createTestAssistant(model!);
    const github = createFakeRepoClient({
      issues: new Map([[3, makeIssue(3, { title: "X fails", body: "X fails on start." })]]),
      files: new Map([["src/x.ts", "export const x = () => { throw new Error('no config'); };"]]),
    });
    const logs = await captureLogs("warn");
    const answer = await runThreadTask({
      assistant,
      github,
      number: 3,
      prompt: "ask",
      values: (fence) => ({ question: fence.wrap("question", "why does X fail?"), memories: "" }),
      log: logs.log,
    });
    return { answer, assistant, github };
  }

  it("counts an answer the server cut at max_tokens (finish_reason length) as not finished", async () => {
    server.script({ content: "X throws: no con", finishReason: "length" });

    const { answer } = await ask();

    expect(answer).toMatchObject({ text: "X throws: no con", finished: false });
    expect(server.requests).toHaveLength(1);
  });

  it("speaks the wire format, tool calls included", async () => {
    server.script(
      { toolCalls: [{ name: "get_file", args: { path: "src/x.ts" } }] },
      { content: "X throws: no config." },
    );

    const { answer, github, assistant } = await ask();

    expect(answer).toMatchObject({ text: "X throws: no config.", finished: true });
    expect(github.fake.reads).toContain("file src/x.ts");
    const [first, second] = server.requests;
    expect(first!.model).toBe("local-model");
    expect(first!.stream).toBeFalsy();
    expect(first!.max_tokens).toBe(1500);
    expect(first!.tools?.map((t) => t.function.name)).toEqual([
      "get_issue",
      "list_comments",
      "search_issues",
      "get_file",
      "list_labels",
    ]);
    expect(
      first!.tools?.find((t) => t.function.name === "get_file")?.function.parameters,
    ).toMatchObject({
      type: "object",
      properties: { path: { type: "string" } },
    });
    expect(first!.messages.map((m) => m.role)).toEqual(["system", "user"]);
    const [assistantTurn, toolTurn] = second!.messages.slice(-2);
    expect(assistantTurn!.tool_calls?.[0]?.function).toEqual({
      name: "get_file",
      arguments: '{"path":"src/x.ts"}',
    });
    expect(toolTurn).toMatchObject({
      role: "tool",
      tool_call_id: assistantTurn!.tool_calls?.[0]?.id,
    });
    expect(String(toolTurn!.content)).toContain("throw new Error('no config')");
    expect(server.authorizations).toEqual([`Bearer ${KEY}`, `Bearer ${KEY}`]);

    const tokens = await assistant.metrics.llmTokens.get();
    expect(tokens.values).toEqual(
      expect.arrayContaining([
        { labels: { installation: "none", kind: "ask", direction: "input" }, value: 101 + 102 },
        { labels: { installation: "none", kind: "ask", direction: "output" }, value: 40 },
      ]),
    );
  });

  it("honours retry-after on a 429", async () => {
    server.script(
      {
        status: 429,
        headers: { "retry-after": "1" },
        body: {
          error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" },
        },
      },
      { content: "Answered after waiting." },
    );

    const { answer } = await ask();

    expect(answer.text).toBe("Answered after waiting.");
    expect(server.requests).toHaveLength(2);
    expect(server.arrivals[1]! - server.arrivals[0]!).toBeGreaterThanOrEqual(900);
  });

  it("speaks chat completions whatever the model's name (LangChain sends *codex* to /responses)", async () => {
    server.script({ content: "Answered by a codex model." });

    const { answer } = await ask("acme-codex-7b");

    expect(answer.text).toBe("Answered by a codex model.");
    expect(server.requests.map((r) => r.model)).toEqual(["acme-codex-7b"]);
  });
});

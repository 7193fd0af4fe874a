import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createChatModel } from "../../src/agent/create-chat-model.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { parseEnv } from "../../src/config.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

interface RawRequest {
  messages: Array<{
    role: string;
    content: unknown;
    tool_call_id?: string;
    tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
  }>;
}

/**
 * A chat completions server that answers raw `message` objects, so that a reply can hold what
 * the scripted stand-in cannot: tool-call arguments that are not JSON.
 */
async function startRawServer(replies: Array<Record<string, unknown>>) {
  const requests: RawRequest[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      requests.push(JSON.parse(body) as RawRequest);
      const message = replies.shift() ?? { role: "assistant", content: "(no more replies)" };
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          id: `chatcmpl-${requests.length}`,
          object: "chat.completion",
          created: 1_790_000_000,
          model: "local-model",
          choices: [{ index: 0, message, finish_reason: "stop" }],
          usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function askAbout(baseUrl: string) {
  const model = createChatModel(
    parseEnv({
      OPENAI_API_KEY: "sk-standin-key-0123456789abcdefgh",
      OPENAI_BASE_URL: baseUrl,
      TALOS_MODEL: "local-model",
      TALOS_LLM_MAX_RETRIES: "0",
    }),
  );
  const assistant = await createTestAssistant(model!);
  const github = createFakeRepoClient({
    issues: new Map([[3, makeIssue(3, { title: "X fails", body: "X fails on start." })]]),
    files: new Map([["src/x.ts", "export const x = () => { throw new Error('no config'); };"]]),
    labels: [{ name: "bug", description: "Something is broken" }],
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
  return { answer, github };
}

describe("the agent against a model that misbehaves", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => close?.());

  it("tells the model when its tool call's arguments are not JSON, and lets it call again", async () => {
    const server = await startRawServer([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_bad",
            type: "function",
            // Cut short, as a small local model often writes them.
            function: { name: "get_file", arguments: '{"path": "src/x.ts"' },
          },
        ],
      },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_good",
            type: "function",
            function: { name: "get_file", arguments: '{"path":"src/x.ts"}' },
          },
        ],
      },
      { role: "assistant", content: "X throws: no config." },
    ]);
    close = server.close;
    const model = createChatModel(
      parseEnv({
        OPENAI_API_KEY: "sk-standin-key-0123456789abcdefgh",
        OPENAI_BASE_URL: server.baseUrl,
        TALOS_MODEL: "local-model",
        TALOS_LLM_MAX_RETRIES: "0",
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

    expect(answer).toMatchObject({ text: "X throws: no config.", finished: true });
    expect(server.requests).toHaveLength(3);
    // The second request answers the broken call, so the conversation stays valid.
    const [assistantTurn, toolTurn] = server.requests[1]!.messages.slice(-2);
    expect(assistantTurn!.tool_calls?.map((c) => c.id)).toEqual(["call_bad"]);
    expect(toolTurn).toMatchObject({ role: "tool", tool_call_id: "call_bad" });
    expect(String(toolTurn!.content)).toContain("not valid JSON");
    expect(github.fake.reads).toContain("file src/x.ts");
  });

  it("answers tool calls the server sent without an id", async () => {
    const server = await startRawServer([
      {
        role: "assistant",
        content: null,
        // Some OpenAI-compatible servers leave the id out.
        tool_calls: [
          { type: "function", function: { name: "get_file", arguments: '{"path":"src/x.ts"}' } },
        ],
      },
      { role: "assistant", content: "X throws: no config." },
    ]);
    close = server.close;
    const { answer, github } = await askAbout(server.baseUrl);

    expect(answer).toMatchObject({ text: "X throws: no config.", finished: true });
    expect(github.fake.reads).toContain("file src/x.ts");
    const [assistantTurn, toolTurn] = server.requests[1]!.messages.slice(-2);
    const id = assistantTurn!.tool_calls?.[0]?.id;
    expect(id).toEqual(expect.any(String));
    expect(toolTurn).toMatchObject({ role: "tool", tool_call_id: id });
  });

  it("runs a tool without parameters whose arguments the server sent as an empty string", async () => {
    // vLLM, LM Studio and some gateways send `""` where OpenAI sends `"{}"`; LangChain's
    // JSON.parse("") fails, and answered "not valid JSON" the model could never run the tool.
    const server = await startRawServer([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "list_labels", arguments: "" } },
          { id: "call_2", type: "function", function: { name: "list_labels", arguments: " \n" } },
        ],
      },
      { role: "assistant", content: "It is a bug." },
    ]);
    close = server.close;
    const { answer, github } = await askAbout(server.baseUrl);

    expect(answer).toMatchObject({ text: "It is a bug.", finished: true });
    expect(github.fake.reads).toContain("labels");
    const [assistantTurn, ...toolTurns] = server.requests[1]!.messages.slice(-3);
    expect(assistantTurn!.tool_calls?.map((c) => c.function.arguments)).toEqual(["{}", "{}"]);
    for (const turn of toolTurns) {
      expect(turn.role).toBe("tool");
      expect(String(turn.content)).not.toContain("not valid JSON");
      expect(String(turn.content)).toContain("bug: Something is broken");
    }
  });
});

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { createChatModel } from "../../src/agent/create-chat-model.js";
import { LlmError } from "../../src/agent/run-agent.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { TokenBudgets } from "../../src/agent/token-budgets.js";
import { parseEnv } from "../../src/config.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

const counter = createTokenCounter();

interface SentRequest {
  messages: Array<{ content: string }>;
  tools?: unknown[];
}

/**
 * A chat completions server that reads each request, then either never answers (the client's
 * timeout ends it) or answers with an error status.
 */
async function startServer(answer: "never" | number) {
  const requests: SentRequest[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      requests.push(JSON.parse(body) as SentRequest);
      if (answer === "never") return;
      res
        .writeHead(answer, { "content-type": "application/json" })
        .end(JSON.stringify({ error: { message: "Bad request", type: "invalid_request_error" } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function askWithBudget(baseUrl: string) {
  const model = createChatModel(
    parseEnv({
      OPENAI_API_KEY: "sk-standin-key-0123456789abcdefgh",
      OPENAI_BASE_URL: baseUrl,
      TALOS_MODEL: "local-model",
      TALOS_LLM_TIMEOUT_MS: "200",
      TALOS_LLM_MAX_RETRIES: "0",
    }),
  )!;
  const assistant = await createTestAssistant(model, { tokenCounter: counter });
  const logs = await captureLogs("warn");
  const budgets = await TokenBudgets.open({
    dailyTokens: 100_000,
    jobTokens: 100_000,
    clock: createFakeClock(),
    log: logs.log,
    metrics: assistant.metrics,
  });
  const account = await budgets.account({ installation: 1, repository: 10 });
  const error = await runThreadTask({
    assistant: { ...assistant, account },
    github: createFakeRepoClient({
      issues: new Map([[3, makeIssue(3, { title: "X fails", body: "X fails on start." })]]),
    }),
    number: 3,
    prompt: "ask",
    values: (fence) => ({ question: fence.wrap("question", "why does X fail?"), memories: "" }),
    log: logs.log,
  }).catch((e: unknown) => e);
  const { values } = await assistant.metrics.llmTokens.get();
  const counted = values.map(({ labels, value }) => ({ ...labels, value }));
  return { error, spent: 100_000 - account.remaining(), counted };
}

describe("model calls that fail", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => close?.());

  it("charge the prompt of a call that timed out: the server read it, and may have run it", async () => {
    const server = await startServer("never");
    close = server.close;

    const { error, spent, counted } = await askWithBudget(server.baseUrl);

    expect(error).toBeInstanceOf(LlmError);
    expect(server.requests).toHaveLength(1);
    const sent = server.requests[0]!;
    // Its messages and the tool definitions sent with them (left out, some 500 tokens a call
    // went uncharged; found by a review).
    expect(sent.tools?.length).toBeGreaterThan(0);
    const prompt = sent.messages.reduce(
      (sum, m) => sum + counter.countTokens(m.content),
      counter.countTokens(JSON.stringify(sent.tools)),
    );
    expect(prompt).toBeGreaterThan(500);
    expect(spent).toBe(prompt);
    // talos_llm_tokens_total counts what the budgets were charged.
    expect(counted).toEqual([
      { installation: "1", kind: "ask", direction: "input", value: prompt },
    ]);
  });

  it("charge nothing for a call the server refused", async () => {
    const server = await startServer(400);
    close = server.close;

    const { error, spent, counted } = await askWithBudget(server.baseUrl);

    expect(error).toBeInstanceOf(LlmError);
    expect(server.requests).toHaveLength(1);
    expect(spent).toBe(0);
    expect(counted).toEqual([]);
  });
});

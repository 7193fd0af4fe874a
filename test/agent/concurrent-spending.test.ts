import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { BaseChatModelCallOptions } from "@langchain/core/language_models/chat_models";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { afterEach, describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { createChatModel } from "../../src/agent/create-chat-model.js";
import { contentText, LlmError } from "../../src/agent/run-agent.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { TokenBudgets, type TokenAccount } from "../../src/agent/token-budgets.js";
import { parseEnv } from "../../src/config.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

const counter = createTokenCounter();

/** Reports as usage what it was sent, plus its answer; answers after a short wait. */
class HonestModel extends BaseChatModel<BaseChatModelCallOptions> {
  readonly charged: number[] = [];
  constructor() {
    super({});
  }
  _llmType(): string {
    return "honest";
  }
  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const input = messages.reduce((sum, m) => sum + counter.countTokens(contentText(m)), 0);
    const output = 50;
    this.charged.push(input + output);
    const message = new AIMessage({
      content: "An answer.",
      usage_metadata: { input_tokens: input, output_tokens: output, total_tokens: input + output },
    });
    return { generations: [{ text: "An answer.", message }] };
  }
}

async function openBudgets(dailyTokens: number) {
  const logs = await captureLogs("warn");
  return TokenBudgets.open({
    dailyTokens,
    jobTokens: 1_000_000,
    clock: createFakeClock(),
    log: logs.log,
    metrics: (await createTestAssistant(new HonestModel())).metrics,
  });
}

async function ask(model: BaseChatModel, account: TokenAccount, number = 7) {
  const assistant = await createTestAssistant(model, {
    tokenCounter: counter,
    maxOutputTokens: 200,
  });
  const logs = await captureLogs("warn");
  return runThreadTask({
    assistant: { ...assistant, account },
    github: createFakeRepoClient({
      issues: new Map([
        [number, makeIssue(number, { title: "Crash", body: "It crashes on save." })],
      ]),
      comments: new Map([[number, []]]),
    }),
    number,
    prompt: "ask",
    values: (fence) => ({ question: fence.wrap("question", "Why does it crash?"), memories: "" }),
    log: logs.log,
  });
}

describe("the day's budget under concurrent jobs of one installation", () => {
  it("never lets two jobs together spend past TALOS_DAILY_TOKEN_BUDGET (each checked the same room)", async () => {
    // Measure what one such job spends, then leave the day room for one such call, not two.
    const probe = new HonestModel();
    await ask(
      probe,
      await (await openBudgets(1_000_000)).account({ installation: 1, repository: 10 }),
    );
    const one = probe.charged[0]!;
    // Room for one call (its prompt and the 200 tokens of answer room kept for it), not two.
    const daily = one + 400;

    const budgets = await openBudgets(daily);
    const model = new HonestModel();
    const a = await budgets.account({ installation: 1, repository: 10 });
    const b = await budgets.account({ installation: 1, repository: 20 });
    // Two commands of the installation run at once (TALOS_CONCURRENCY defaults to 8).
    await Promise.allSettled([ask(model, a, 7), ask(model, b, 8)]);

    const spent = model.charged.reduce((sum, n) => sum + n, 0);
    // One of them is refused: only one call's worth was left for the day, and the first call's
    // room is held while it runs.
    expect(model.charged).toHaveLength(1);
    expect(spent).toBeLessThanOrEqual(daily);
  });
});

describe("a model answer cut mid-body", () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it("charges the budget for calls the server ran and answered, though the body was cut", async () => {
    let answered = 0;
    server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        answered++;
        // The server ran the model (and bills it) and sends its answer; a proxy cuts the body.
        const body = JSON.stringify({
          id: "chatcmpl-1",
          object: "chat.completion",
          created: 1,
          model: "m",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: "a".repeat(5000) },
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 3000, completion_tokens: 2000, total_tokens: 5000 },
        });
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": String(body.length),
        });
        res.write(body.slice(0, 100));
        setTimeout(() => res.socket?.destroy(), 20);
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const model = createChatModel(
      parseEnv({
        OPENAI_API_KEY: "sk-standin-key-0123456789abcdefgh",
        OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
        TALOS_MODEL: "m",
        TALOS_LLM_TIMEOUT_MS: "5000",
        TALOS_LLM_MAX_RETRIES: "0",
      }),
    )!;
    const budgets = await openBudgets(100_000);
    const account = await budgets.account({ installation: 1, repository: 10 });

    const error = await ask(model, account).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(LlmError);
    expect(answered).toBe(1);
    // Charged its prompt's estimate, as a timed-out call is: it had been charged nothing, and
    // repeated cuts spent the day's tokens with no budget ever stopping them.
    expect(100_000 - account.remaining()).toBeGreaterThan(0);
  });

  it("charges nothing for a call that never reached the server (connection refused)", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const model = createChatModel(
      parseEnv({
        OPENAI_API_KEY: "sk-standin-key-0123456789abcdefgh",
        OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
        TALOS_MODEL: "m",
        TALOS_LLM_MAX_RETRIES: "0",
      }),
    )!;
    const account = await (await openBudgets(100_000)).account({ installation: 1, repository: 10 });
    expect(await ask(model, account).catch((e: unknown) => e)).toBeInstanceOf(LlmError);
    expect(account.remaining()).toBe(100_000);
  });
});

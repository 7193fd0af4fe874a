import {
  BaseChatModel,
  type BaseChatModelCallOptions,
  type BindToolsInput,
} from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { convertToOpenAITool } from "@langchain/core/utils/function_calling";
import { describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { contentText } from "../../src/agent/run-agent.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { BudgetExceededError, TokenBudgets } from "../../src/agent/token-budgets.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { captureLogs } from "../helpers/test-app.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

const counter = createTokenCounter();
const RESERVE = 500;

interface Options extends BaseChatModelCallOptions {
  tools?: BindToolsInput[];
}

/**
 * A server that counts what it is sent as a real one does: the messages and the tool definitions
 * that come with them; its model writes as long an answer as it may.
 */
class HonestModel extends BaseChatModel<Options> {
  readonly calls: Array<{ content: number; tools: number }> = [];
  constructor() {
    super({});
  }
  _llmType() {
    return "honest";
  }
  override bindTools(tools: BindToolsInput[], kwargs?: Partial<Options>) {
    return this.withConfig({ tools, ...kwargs } as Partial<Options>);
  }
  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    const content = messages.reduce((sum, m) => sum + counter.countTokens(contentText(m)), 0);
    const tools = counter.countTokens(
      JSON.stringify((options.tools ?? []).map((t) => convertToOpenAITool(t as never))),
    );
    this.calls.push({ content, tools });
    const message = new AIMessage({
      content: "An answer.",
      usage_metadata: {
        input_tokens: content + tools,
        output_tokens: RESERVE,
        total_tokens: content + tools + RESERVE,
      },
    });
    return { generations: [{ text: "An answer.", message }] };
  }
}

/** An `ask` on issue 3 by `model`, with a budget of `dailyTokens` a day (60,000 a job). */
async function askWithin(
  model: Parameters<typeof createTestAssistant>[0],
  dailyTokens: number,
  options: { maxOutputTokens?: number; jobTokens?: number } = {},
) {
  const assistant = await createTestAssistant(model, {
    tokenCounter: counter,
    ...(options.maxOutputTokens === undefined ? {} : { maxOutputTokens: options.maxOutputTokens }),
  });
  const logs = await captureLogs("warn");
  const budgets = await TokenBudgets.open({
    dailyTokens,
    jobTokens: options.jobTokens ?? 60_000,
    clock: createFakeClock(),
    log: logs.log,
    metrics: assistant.metrics,
  });
  const account = await budgets.account({ installation: 1, repository: 10 });
  const result = await runThreadTask({
    assistant: { ...assistant, account },
    github: createFakeRepoClient({
      issues: new Map([[3, makeIssue(3, { title: "X fails", body: "X fails on start." })]]),
      comments: new Map([[3, []]]),
    }),
    number: 3,
    prompt: "ask",
    values: (fence) => ({ question: fence.wrap("question", "why does X fail?"), memories: "" }),
    log: logs.log,
  }).catch((e: unknown) => e);
  return { assistant, account, result, logs };
}

async function ask(dailyTokens: number) {
  const model = new HonestModel();
  const { result } = await askWithin(model, dailyTokens, { maxOutputTokens: RESERVE });
  return { model, result };
}

describe("the first call of a run", () => {
  it("is not made when its prompt, tool definitions included, and the answer's room exceed what is left", async () => {
    const probe = await ask(1_000_000);
    const { content, tools } = probe.model.calls[0]!;
    expect(tools).toBeGreaterThan(300);
    // The day has room for the messages and the answer, not for the tool definitions too.
    const daily = content + RESERVE + 50;
    const { model, result } = await ask(daily);
    const spent = model.calls.reduce((s, c) => s + c.content + c.tools + RESERVE, 0);
    // Either no call (the notice), or one that fits in the day.
    if (model.calls.length === 0) expect(result).toBeInstanceOf(BudgetExceededError);
    else expect(spent).toBeLessThanOrEqual(daily);
  });
});

describe("a server that reports no usage", () => {
  it("is charged the tokens of the tool calls its model wrote (output, and input when sent back)", async () => {
    // The model writes a long tool call: its arguments are output tokens the server generated.
    const query = Array.from({ length: 1_000 }, (_, i) => `crash${i} widget save`).join(" ");
    const model = scriptedModel()
      .respond(
        new AIMessage({
          content: "",
          tool_calls: [{ name: "search_issues", args: { query }, id: "c1", type: "tool_call" }],
        }),
      )
      .respond("Done.");
    const { assistant, account, result } = await askWithin(model, 1_000_000, {
      jobTokens: 1_000_000,
    });
    expect(result).not.toBeInstanceOf(Error);
    expect(model.callCount).toBe(2);
    const argsTokens = counter.countTokens(JSON.stringify({ query }));
    expect(argsTokens).toBeGreaterThan(2_000);
    const { values } = await assistant.metrics.llmTokens.get();
    const output = values.find((v) => v.labels.direction === "output")?.value ?? 0;
    // The first reply was nothing but that call: its output cannot be (close to) zero.
    expect(output).toBeGreaterThanOrEqual(argsTokens);
    // And the second call was sent it again: the day is charged it twice at least.
    const spent = 1_000_000 - account.remaining();
    const promptsContent = model.calls.reduce(
      (sum, call) =>
        sum +
        call.messages.reduce(
          (s, m) => s + counter.countTokens(typeof m.content === "string" ? m.content : ""),
          0,
        ),
      0,
    );
    expect(spent).toBeGreaterThanOrEqual(promptsContent + 2 * argsTokens);
  });
});

describe("a server that reports a figure that is no count of tokens", () => {
  it.each([
    ["negative", -50_000, 10],
    ["NaN", Number.NaN, Number.NaN],
    ["a string", "12" as unknown as number, 10],
  ])(
    "(%s) is charged an estimate: the day is not given back, nor its budget switched off",
    async (_, input, output) => {
      const model = scriptedModel().respond(
        new AIMessage({
          content: "It throws in save().",
          usage_metadata: { input_tokens: input, output_tokens: output, total_tokens: 0 },
        }),
      );
      const { account, result, logs } = await askWithin(model, 1_000_000);
      expect(result).not.toBeInstanceOf(Error);
      const prompt = model.calls[0]!.messages.reduce(
        (sum, m) => sum + counter.countTokens(typeof m.content === "string" ? m.content : ""),
        0,
      );
      const spent = 1_000_000 - account.remaining();
      expect(spent).toBeGreaterThanOrEqual(prompt);
      expect(spent).toBeLessThan(1_000_000);
      expect(
        logs
          .lines()
          .some(
            (l) =>
              l.msg ===
              "the language model server reported usage that is no token count: an estimate is charged",
          ),
      ).toBe(true);
    },
  );
});

import type { BaseChatModelCallOptions } from "@langchain/core/language_models/chat_models";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { contentText } from "../../src/agent/run-agent.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { TokenBudgets } from "../../src/agent/token-budgets.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

const counter = createTokenCounter();

interface GreedyCallOptions extends BaseChatModelCallOptions {
  tools?: Array<{ name: string }>;
}

/**
 * A model that behaves as a real one does on a budget: it asks for another file whenever it may
 * use tools, answers when it may not, and reports as usage what it was actually sent (counted,
 * plus the tool definitions' share) and what it wrote.
 */
class GreedyModel extends BaseChatModel<GreedyCallOptions> {
  readonly calls: Array<{ toolChoice: unknown; input: number; output: number }> = [];
  /** Runs before each call is answered (another job spending, say). */
  beforeAnswer: (call: number) => void = () => undefined;

  constructor() {
    super({});
  }

  _llmType(): string {
    return "greedy";
  }

  override bindTools(tools: Array<{ name: string }>, kwargs?: Partial<GreedyCallOptions>) {
    return this.withConfig({ tools, ...kwargs } as Partial<GreedyCallOptions>);
  }

  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    this.beforeAnswer(this.calls.length + 1);
    const input = 300 + messages.reduce((sum, m) => sum + counter.countTokens(contentText(m)), 0);
    const output = 50;
    this.calls.push({ toolChoice: options.tool_choice, input, output });
    const usage_metadata = {
      input_tokens: input,
      output_tokens: output,
      total_tokens: input + output,
    };
    const message =
      options.tool_choice === "none"
        ? new AIMessage({ content: "Answer from what I read.", usage_metadata })
        : new AIMessage({
            content: "",
            tool_calls: [
              {
                name: "get_file",
                args: { path: `src/part${this.calls.length}.ts` },
                id: `c${this.calls.length}`,
              },
            ],
            usage_metadata,
          });
    return { generations: [{ text: contentText(message), message }] };
  }
}

/** Each file about 2,000 tokens: every step makes the conversation that much longer. */
function repository() {
  const code = Array.from({ length: 250 }, (_, i) => `export const value${i} = compute(${i});`);
  return createFakeRepoClient({
    issues: new Map([[7, makeIssue(7, { title: "Crash", body: "It crashes on save." })]]),
    comments: new Map([[7, []]]),
    files: new Map(
      Array.from({ length: 10 }, (_, i) => [`src/part${i + 1}.ts`, code.join("\n")] as const),
    ),
  });
}

async function ask(
  model: GreedyModel,
  limits: Parameters<typeof createTestAssistant>[1],
  account?: Awaited<ReturnType<TokenBudgets["account"]>>,
) {
  const assistant = await createTestAssistant(model, { tokenCounter: counter, ...limits });
  const logs = await captureLogs("warn");
  return runThreadTask({
    assistant: { ...assistant, account },
    github: repository(),
    number: 7,
    prompt: "ask",
    values: (fence) => ({ question: fence.wrap("question", "Why does it crash?"), memories: "" }),
    log: logs.log,
  });
}

const spentBy = (model: GreedyModel) =>
  model.calls.reduce((sum, call) => sum + call.input + call.output, 0);

describe("the agent's token cap", () => {
  it("holds for every call: the tool steps and the last answer together stay within it", async () => {
    const model = new GreedyModel();
    const answer = await ask(model, { maxTokens: 20_000, maxOutputTokens: 500 });

    // Every call was charged what the server reported; together within the cap.
    expect(spentBy(model)).toBeLessThanOrEqual(20_000);
    // The run still ends with an answer, made without tools.
    expect(model.calls.at(-1)!.toolChoice).toBe("none");
    expect(model.calls.slice(0, -1).every((c) => c.toolChoice === "auto")).toBe(true);
    expect(model.calls.length).toBeGreaterThanOrEqual(2);
    expect(answer).toMatchObject({ text: "Answer from what I read.", finished: false });
  });

  it("says an answer made at the step limit may be incomplete, though the model answered", async () => {
    const model = new GreedyModel();
    const answer = await ask(model, { maxSteps: 3, maxOutputTokens: 500 });

    expect(model.calls.map((c) => c.toolChoice)).toEqual(["auto", "auto", "none"]);
    expect(answer).toMatchObject({ text: "Answer from what I read.", finished: false });
  });

  it("re-checks the daily budget before each call: spent by another job meanwhile, no more calls", async () => {
    const logs = await captureLogs("warn");
    const budgets = await TokenBudgets.open({
      dailyTokens: 20_000,
      jobTokens: 60_000,
      clock: createFakeClock(),
      log: logs.log,
      metrics: (await createTestAssistant(new GreedyModel())).metrics,
    });
    const account = await budgets.account({ installation: 1, repository: 10 });
    const other = await budgets.account({ installation: 1, repository: 20 });
    const model = new GreedyModel();
    // While the first call is answered, another job of the installation spends the day's rest.
    model.beforeAnswer = (call) => {
      if (call === 1) other.charge(20_000 - 500);
    };

    const answer = await ask(model, { maxTokens: 60_000, maxOutputTokens: 500 }, account);

    expect(model.calls).toHaveLength(1);
    expect(answer.finished).toBe(false);
    const today = await budgets.account({ installation: 1, repository: 30 });
    expect(today.remaining()).toBe(0);
  });
});

import { type BaseMessage, HumanMessage, SystemMessage } from "@langchain/core/messages";
import { convertToOpenAITool } from "@langchain/core/utils/function_calling";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { runAgent, sentText } from "../../src/agent/run-agent.js";
import { createFence } from "../../src/agent/untrusted-text.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { READ_TOOLS } from "../../src/tools/read-tools.js";
import { createFakeRepoClient } from "../helpers/fake-repo-client.js";
import { scriptedModel } from "../helpers/scripted-model.js";

const counter = createTokenCounter();
const log = pino({ level: "silent" });

const messages = () => [new SystemMessage("You help."), new HumanMessage("What is in a.ts?")];

/** The agent with the read tools over a repository holding `a.ts`, no account. */
function ask(model: Parameters<typeof runAgent>[0]["model"], asked: BaseMessage[]) {
  return runAgent({
    model,
    messages: asked,
    tools: READ_TOOLS,
    toolContext: {
      github: createFakeRepoClient({ files: new Map([["a.ts", "export const a = 1;"]]) }),
      log,
    },
    fence: createFence((text) => text),
    limits: { maxSteps: 6, maxTokens: 60_000, contextTokens: 12_000, tokenCounter: counter },
    finalNote: "Answer now.",
    metrics: createMetrics(),
    log,
    kind: "ask",
  });
}

describe("a server that reports no usage", () => {
  it("is charged, for every call, its messages and the tool definitions sent with them", async () => {
    // The estimate had left the definitions out (some 500 tokens for the read tools), a call
    // at a time, and the next call's check took the short figure for what was sent.
    const model = scriptedModel()
      .respondWithTools([{ name: "get_file", args: { path: "a.ts" } }])
      .respond("It exports a.");
    const result = await ask(model, messages());

    expect(model.callCount).toBe(2);
    const definitions = counter.countTokens(
      JSON.stringify(
        READ_TOOLS.map(({ name, description, schema }) =>
          convertToOpenAITool({ name, description, schema }),
        ),
      ),
    );
    expect(definitions).toBeGreaterThan(300);
    const sent = model.calls.reduce(
      (sum, call) =>
        sum +
        definitions +
        call.messages.reduce(
          (tokens, message) => tokens + counter.countTokens(sentText(message)),
          0,
        ),
      0,
    );
    expect(result.usage.input).toBe(sent);
  });

  it("is charged no tool definitions when the model cannot bind tools, and sends none", async () => {
    // Such a model is called without them: charging them over-charged every call.
    const inner = scriptedModel().respond("It exports a.");
    const model = { invoke: inner.invoke.bind(inner) } as unknown as typeof inner;
    const asked = messages();
    const result = await ask(model, asked);
    const sent = asked.reduce(
      (tokens, message) => tokens + counter.countTokens(sentText(message)),
      0,
    );
    expect(result.usage.input).toBe(sent);
  });
});

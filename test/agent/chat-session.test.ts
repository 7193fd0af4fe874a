import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { createChatSession } from "../../src/agent/chat-session.js";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { contentText, LlmError } from "../../src/agent/run-agent.js";
import { BudgetExceededError } from "../../src/agent/token-budgets.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant, TEST_OPENAI_KEY } from "../helpers/test-assistant.js";

describe("a chat session", () => {
  it("forgets a question the model failed to answer, and still sends the next one", async () => {
    const model = scriptedModel()
      .respond(new Error("Request timed out."))
      .respond(new AIMessage("The second answer."));
    // Two questions of 30 bytes each do not fit in 50: only one does.
    const assistant = await createTestAssistant(model, { contextTokens: 50 });
    const { log } = await captureLogs("warn");
    const session = createChatSession({ assistant, github: undefined, log });

    await expect(session.send("a".repeat(30))).rejects.toThrow(LlmError);
    expect(await session.send("b".repeat(30))).toBe("The second answer.");

    const sent = model.calls[1]!.messages.map((m) => [m.getType(), m.content]);
    expect(sent.slice(1)).toEqual([["human", "b".repeat(30)]]);
    expect(session.history.map((m) => m.getType())).toEqual(["human", "ai"]);
  });

  it("fails without the API key a server's error message quotes (talos chat prints it)", async () => {
    const model = scriptedModel().respond(
      new Error(`401 Incorrect API key provided: ${TEST_OPENAI_KEY}`),
    );
    const assistant = await createTestAssistant(model);
    const { log } = await captureLogs("warn");
    const session = createChatSession({ assistant, github: undefined, log });

    const error = (await session.send("hello").catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(LlmError);
    expect(error.message).toContain("401 Incorrect API key provided");
    expect(error.message).not.toContain(TEST_OPENAI_KEY);
  });

  it("prints the answer without its reasoning, and says so when the model answered nothing", async () => {
    const model = scriptedModel()
      .respond(new AIMessage("<think>Plan: flatter them.</think>\n\nHello."))
      .respond(new AIMessage("<think>Still thinking when the output limit hit"))
      .respond(new AIMessage(""));
    const assistant = await createTestAssistant(model);
    const { log } = await captureLogs("warn");
    const session = createChatSession({ assistant, github: undefined, log });

    expect(await session.send("hi")).toBe("Hello.");
    expect(await session.send("and?")).toBe("(the model returned no answer)");
    expect(await session.send("well?")).toBe("(the model returned no answer)");
    expect(session.history.map((m) => m.content)).toEqual([
      "hi",
      "Hello.",
      "and?",
      "(no answer)",
      "well?",
      "(no answer)",
    ]);
  });

  it("bounds a question over the context budget, and sends it cut, with a note", async () => {
    const counter = createTokenCounter();
    const model = scriptedModel().respond("ok");
    const assistant = await createTestAssistant(model, {
      tokenCounter: counter,
      contextTokens: 1_000,
      maxTokens: 5_000,
      maxOutputTokens: 500,
    });
    const { log } = await captureLogs("warn");
    const session = createChatSession({ assistant, github: undefined, log });
    // A pasted log: far over the context budget and the run's token cap.
    const pasted = Array.from({ length: 5_000 }, (_, i) => `line ${i}: error at widget.save`);
    expect(await session.send(pasted.join(" "))).toBe("ok");
    const question = contentText(model.calls[0]!.messages.at(-1)!);
    expect(question.startsWith("line 0: error at widget.save line 1:")).toBe(true);
    expect(question).toMatch(/…\(cut to fit the context budget\)$/);
    expect(counter.countTokens(question)).toBeLessThanOrEqual(1_000);
  });

  it("makes no call whose prompt is over the run's token cap, and says so", async () => {
    const model = scriptedModel().respond("ok");
    // The question fits the context budget; with the answer's room it does not fit the cap.
    const assistant = await createTestAssistant(model, {
      tokenCounter: createTokenCounter(),
      contextTokens: 1_000,
      maxTokens: 1_200,
      maxOutputTokens: 500,
    });
    const { log } = await captureLogs("warn");
    const session = createChatSession({ assistant, github: undefined, log });
    const error = await session.send("why? ".repeat(900)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect((error as Error).message).toMatch(
      /over the 1200 a run may spend \(TALOS_AGENT_MAX_TOKENS\)$/,
    );
    expect(model.callCount).toBe(0);
    expect(session.history).toEqual([]);
  });
});

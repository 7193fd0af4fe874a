import { HumanMessage, SystemMessage, ToolMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { contentText, runAgent } from "../../src/agent/run-agent.js";
import { createFence } from "../../src/agent/untrusted-text.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { READ_TOOLS } from "../../src/tools/read-tools.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { ScriptedChatModel } from "../helpers/scripted-model.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";

const counter = createTokenCounter();

/**
 * A tool result longer than its share of the run's tokens is cut at its end. list_comments
 * lists newest first, so the cut drops the oldest comments it read, never the newest the tool
 * is asked for.
 */
describe("list_comments cut to fit the prompt", () => {
  it("keeps the newest comments when the result has to be cut", async () => {
    const comments = Array.from({ length: 20 }, (_, i) => ({
      id: i + 1,
      author: `user${i + 1}`,
      // ~110 tokens each: 20 of them ~2,200 tokens, under MAX_RESULT_CHARS (12,000 chars).
      body: `comment number ${i + 1}: ${"the save path calls flush before the buffer is ready ".repeat(9)}`,
      createdAt: `2026-11-${String(i + 1).padStart(2, "0")}T00:00:00Z`,
    }));
    const github = createFakeRepoClient({
      issues: new Map([[7, makeIssue(7)]]),
      comments: new Map([[7, comments]]),
    });
    const model = new ScriptedChatModel()
      .respondWithTools([{ name: "list_comments", args: { number: 7 } }])
      .respond("done");
    const { log } = await captureLogs("warn");
    const result = await runAgent({
      model,
      messages: [
        new SystemMessage("You are a bot."),
        new HumanMessage("What is the latest news on #7?"),
      ],
      tools: READ_TOOLS,
      toolContext: { github, log },
      fence: createFence((t) => t),
      // Room for the first call, and about 1,000 tokens for the result: half of it.
      limits: {
        maxSteps: 6,
        maxTokens: 1_600,
        maxOutputTokens: 200,
        contextTokens: 12_000,
        tokenCounter: counter,
      },
      finalNote: "Answer now.",
      metrics: createMetrics(),
      log,
      kind: "ask",
    });
    const toolResult = result.messages.find((m) => m instanceof ToolMessage);
    expect(toolResult).toBeDefined();
    const text = contentText(toolResult!);
    // The result was cut to fit (precondition of this test).
    expect(text).toContain("(cut to fit)");
    // The newest comment is what survives the cut.
    expect(text).toContain("comment number 20:");
    expect(text).not.toContain("comment number 1:");
    expect(model.calls.length).toBe(2);
  });

  it("keeps the newest comments of a CJK thread, with the default limits", async () => {
    // Another issue's thread in Chinese: 20 comments of 500 characters (~11,400 characters in
    // all, under MAX_RESULT_CHARS), more tokens than the fence's contextTokens / 2 = 6,000.
    let seed = 3;
    const cjk = (n: number) =>
      Array.from({ length: n }, () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return String.fromCharCode(0x4e00 + (seed % 20_000));
      }).join("");
    const comments = Array.from({ length: 20 }, (_, i) => ({
      id: i + 1,
      author: `user${i + 1}`,
      body: `comment number ${i + 1}: ${cjk(480)}`,
      createdAt: `2026-11-${String(i + 1).padStart(2, "0")}T00:00:00Z`,
    }));
    const github = createFakeRepoClient({
      issues: new Map([
        [7, makeIssue(7)],
        [12, makeIssue(12)],
      ]),
      comments: new Map([
        [7, []],
        [12, comments],
      ]),
    });
    const model = new ScriptedChatModel()
      .respondWithTools([{ name: "list_comments", args: { number: 12 } }])
      .respond("done");
    const assistant = await createTestAssistant(model, { tokenCounter: counter });
    const { log } = await captureLogs("warn");
    await runThreadTask({
      assistant,
      github,
      number: 7,
      prompt: "ask",
      values: (fence) => ({
        question: fence.wrap("q", "What was decided last in #12?"),
        memories: "",
      }),
      log,
    });
    const sent = model.calls[1]!.messages;
    const text = contentText(sent.find((m) => m instanceof ToolMessage)!);
    expect(text).toContain("(cut to fit)");
    // Its share of the default limits holds fewer tokens than the result: the oldest go.
    expect(text).toContain("comment number 20:");
  });
});

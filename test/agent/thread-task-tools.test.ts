import { describe, expect, it } from "vitest";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { READ_TOOLS } from "../../src/tools/read-tools.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { ScriptedChatModel } from "../helpers/scripted-model.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

/** A task's own tools join the registry's as the registry joins tools: each name once. */
describe("a thread task's tools", () => {
  const github = () => createFakeRepoClient({ issues: new Map([[7, makeIssue(7)]]) });
  const run = async (model: ScriptedChatModel, extraTools: typeof READ_TOOLS) => {
    const assistant = await createTestAssistant(model);
    const { log } = await captureLogs("warn");
    return runThreadTask({
      assistant,
      github: github(),
      number: 7,
      prompt: "ask",
      values: (fence) => ({ question: fence.wrap("q", "What is new?"), memories: "" }),
      extraTools,
      log,
    });
  };

  it("offer the model each tool once, however often it is given", async () => {
    const model = new ScriptedChatModel().respond("done");
    const [readTool] = READ_TOOLS;
    await run(model, [readTool!]);
    const offered = model.calls[0]!.tools;
    expect(offered).toContain(readTool!.name);
    // It was offered twice: the model's API refuses tools of the same name.
    expect(offered.filter((name) => name === readTool!.name)).toHaveLength(1);
    expect(new Set(offered).size).toBe(offered.length);
  });

  it("refuse a different tool under a name the registry holds, as the registry does", async () => {
    const model = new ScriptedChatModel().respond("done");
    const [readTool] = READ_TOOLS;
    await expect(run(model, [{ ...readTool! }])).rejects.toThrow(
      `a different tool is already registered as "${readTool!.name}"`,
    );
    expect(model.calls).toHaveLength(0);
  });
});

describe("the comments a thread task hands on for its reply's look-up", () => {
  // A thread read over several pages may have lost a comment to a deletion between two reads
  // (the later pages shift): Talos's earlier reply, perhaps, which a second reply then
  // duplicated. Only a thread read in one request stands for the thread.
  const commentsOf = (count: number) =>
    Array.from({ length: count }, (_, i) => ({
      id: i + 1,
      author: "someone",
      body: `comment ${i + 1}`,
      createdAt: "2026-11-01T00:00:00Z",
    }));
  const handedOn = async (count: number) => {
    const github = createFakeRepoClient({
      issues: new Map([[7, makeIssue(7)]]),
      comments: new Map([[7, commentsOf(count)]]),
    });
    const assistant = await createTestAssistant(new ScriptedChatModel().respond("done"));
    const { log } = await captureLogs("warn");
    const result = await runThreadTask({
      assistant,
      github,
      number: 7,
      prompt: "ask",
      values: (fence) => ({ question: fence.wrap("q", "What is new?"), memories: "" }),
      log,
    });
    return result.comments?.length;
  };

  it("are the thread's when its first page was not full, and none past it", async () => {
    expect(await handedOn(99)).toBe(99);
    expect(await handedOn(100)).toBeUndefined();
    expect(await handedOn(151)).toBeUndefined();
  });
});

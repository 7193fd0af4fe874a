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

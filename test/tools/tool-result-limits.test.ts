import { AIMessage, ToolMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { runThreadTask } from "../../src/agent/run-thread-task.js";
import { MAX_RESULT_CHARS } from "../../src/tools/clip-result.js";
import { createFakeRepoClient, makeIssue } from "../helpers/fake-repo-client.js";
import { API } from "../helpers/github-mocks.js";
import { replayAsk } from "../helpers/replay-ask.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { captureLogs } from "../helpers/test-app.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

const REPO = "/repos/Codertocat/Hello-World";

describe("get_file on a directory", () => {
  it("cuts the listing of a 1,000-entry directory to the tool result limit, saying so", async () => {
    // The contents API lists up to 1,000 entries of a directory; names may be 255 bytes long.
    const entries = Array.from({ length: 1_000 }, (_, i) => ({
      type: "file",
      name: `generated-fixture-${String(i).padStart(4, "0")}`.padEnd(120, "x") + ".json",
      path: `fixtures/${i}.json`,
      size: 10,
    }));
    const model = scriptedModel()
      .respondWithTools([{ name: "get_file", args: { path: "fixtures" } }])
      .respond("The fixtures directory holds generated files.");

    const posted = await replayAsk(model, {
      id: "ask-directory",
      question: "what is in the fixtures directory?",
      mockReads: (scope) => void scope.get(`${REPO}/contents/fixtures`).reply(200, entries),
    });

    expect(posted).toHaveLength(1);
    const result = model.calls[1]!.messages.find((m) => m instanceof ToolMessage);
    const text = String(result?.content);
    // The fence around it adds a few hundred characters at most. (Unfixed: 32,000 characters,
    // the run's token share for one result, which the agent's fence cut "to fit".)
    expect(text.length).toBeLessThan(MAX_RESULT_CHARS + 1_000);
    expect(text.includes("fixtures is a directory: generated-fixture-0000")).toBe(true);
    expect(text.includes("(cut: ")).toBe(true);
  });
});

describe("list_labels in a repository of thousands of labels", () => {
  it("reads only the pages its result can show, however often the model calls it", async () => {
    // 3,000 labels: 30 pages. GitHub allows names of 50 characters, descriptions of 100.
    const page = Array.from({ length: 100 }, (_, i) => ({
      name: `area/component-${String(i).padStart(4, "0")}`.padEnd(50, "x"),
      description: "d".repeat(100),
    }));
    const link = (n: number) => `<${API}/repositories/1296269/labels?per_page=100&page=${n}>`;
    const model = scriptedModel()
      .respondWithTools([{ name: "list_labels", args: {} }])
      .respondWithTools([{ name: "list_labels", args: {} }])
      .respond("There are many area labels.");

    const posted = await replayAsk(model, {
      id: "ask-labels",
      question: "which labels should I use?",
      // The first page, once: it is cached. The 29 others are never asked for (nock fails them).
      mockReads: (scope) =>
        void scope
          .get(`${REPO}/labels`)
          .query({ per_page: "100" })
          .once()
          .reply(200, page, { link: `${link(2)}; rel="next", ${link(30)}; rel="last"` }),
    });

    expect(posted).toHaveLength(1);
    for (const call of [1, 2]) {
      const result = model.calls[call]!.messages.filter((m) => m instanceof ToolMessage).at(-1);
      const text = String(result?.content);
      expect(text.includes("Error")).toBe(false);
      expect(text.includes(`${page[0]!.name}: ${page[0]!.description}`)).toBe(true);
      expect(text.includes("(cut: the repository has more labels than fit)")).toBe(true);
      expect(text.length).toBeLessThan(MAX_RESULT_CHARS + 1_000);
    }
  });
});

describe("a tool result cut at the limit", () => {
  it("never keeps half an emoji, which a strict JSON server refuses", async () => {
    const title = "Crash on save";
    // Where the body starts in get_issue's result, so that an emoji straddles the cut.
    const header = `Issue #8: ${title}\nState: open. Author: alice. Labels: none.\n\n`.length;
    const body = `${"a".repeat(MAX_RESULT_CHARS - header - 1)}😀 and what follows it`;
    const github = createFakeRepoClient({
      issues: new Map([
        [7, makeIssue(7, { title: "Crash", body: "It crashes. See #8." })],
        [8, makeIssue(8, { title, body })],
      ]),
    });
    const model = scriptedModel()
      .respondWithTools([{ name: "get_issue", args: { number: 8 } }])
      .respond(new AIMessage("Read it."));
    const assistant = await createTestAssistant(model, { tokenCounter: createTokenCounter() });
    const { log } = await captureLogs("warn");

    await runThreadTask({
      assistant,
      github,
      number: 7,
      prompt: "ask",
      values: (fence) => ({ question: fence.wrap("question", "What does #8 say?"), memories: "" }),
      log,
    });

    const result = model.calls[1]!.messages.find((m) => m instanceof ToolMessage);
    const text = String(result?.content);
    expect(text).toContain(`Issue #8: ${title}\n`);
    expect(text).toContain(`${"a".repeat(100)}\n…(cut: `);
    // With the `u` flag a whole pair is one character: \p{Cs} matches a lone half only.
    expect(text).not.toMatch(/\p{Cs}/u);
  });
});

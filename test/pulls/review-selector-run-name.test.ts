// A run of presentation selectors in a file name: the prompt must show the name so that it reads
// apart from its look-alike, and the model's comment, cited as shown, goes on that file.
import { AIMessage } from "@langchain/core/messages";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { PullRequestInfo } from "../../src/github/create-pull-request-client.js";
import type { PullRequestFile } from "../../src/pulls/pull-request-file.js";
import { reviewPullRequest } from "../../src/pulls/review-pull-request.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestAssistant } from "../helpers/test-assistant.js";
import { testMarkdownWorkers } from "../helpers/test-markdown-workers.js";

async function review(files: PullRequestFile[], shownPath: string) {
  const model = scriptedModel().respond(
    new AIMessage(
      JSON.stringify({
        verdict: "ok",
        comments: [{ path: shownPath, line: 1, severity: "major", body: "Check this." }],
      }),
    ),
  );
  const assistant = await createTestAssistant(model);
  const pull: PullRequestInfo = {
    number: 2,
    title: "t",
    body: "b",
    state: "open",
    draft: false,
    author: "someone",
    authorIsBot: false,
    headSha: "a".repeat(40),
    baseSha: "b".repeat(40),
    baseRef: "main",
    changedFiles: 1,
    url: "https://github.com/o/r/pull/2",
  };
  const posted: Array<{ path: string }> = [];
  const outcome = await reviewPullRequest({
    assistant,
    github: {
      repo: { owner: "o", repo: "r" },
      retrieved: new Set<number>(),
      getRepository: async () => ({
        fullName: "o/r",
        defaultBranch: "main",
        visibility: "public",
        private: false,
        archived: false,
        description: "",
      }),
      getFile: async () => {
        throw Object.assign(new Error("Not Found"), { status: 404 });
      },
    } as never,
    pulls: {
      repo: { owner: "o", repo: "r" },
      getPullRequest: async () => pull,
      listFiles: async () => ({ files, unlisted: 0 }),
      compare: async () => undefined,
      listReviews: async () => [],
      createReview: async (_n: number, r: { comments: Array<{ path: string }> }) => {
        posted.push(...r.comments);
        return { id: 90, url: "https://github.com/o/r/pull/2#pullrequestreview-90" };
      },
    } as never,
    number: 2,
    pull,
    settings: {
      enabled: true,
      on_push: true,
      max_comments: 8,
      max_tokens: 20_000,
      ignore: [],
    } as never,
    commentId: 1,
    full: false,
    botLogin: "talos-bot[bot]",
    markdown: testMarkdownWorkers(),
    clock: createFakeClock(),
    log: pino({ level: "silent" }),
  });
  return { outcome, posted, prompt: () => String(model.calls[0]?.messages[1]?.content ?? "") };
}

const added = (filename: string): PullRequestFile => ({
  filename,
  status: "added",
  additions: 1,
  deletions: 0,
  changes: 1,
  patch: "@@ -0,0 +1 @@\n+eval(input);",
});

describe("a file named with a run of presentation selectors", () => {
  it("shows the name so it reads apart from its look-alike, and places the comment on it", async () => {
    const { posted, prompt } = await review(
      [added("src/a\uFE0F\uFE0F.ts"), added("src/a\uFE0F.ts")],
      "src/a\uFE0F.ts",
    );
    const headings = prompt()
      .split("\n")
      .filter((line) => line.startsWith("### "));
    // Two files, two headings that read apart.
    expect(new Set(headings).size).toBe(2);
    expect(posted.map((c) => c.path)).toEqual(["src/a\uFE0F.ts"]);
  });
});

// A review's inline comment on a file whose name holds a line separator (git allows any byte in
// a name but NUL and `/`): the prompt shows the name as escapeName writes it, and the answer's
// paths are mapped back with escapeName: the prompt's had been escaped another way, and every
// comment on such a file was dropped (found by a review).
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

async function review(file: PullRequestFile, shownPath: string) {
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
      listFiles: async () => ({ files: [file], unlisted: 0 }),
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

describe("review-diff: a comment on a file named with a line separator", () => {
  it("control: a file named with a zero-width space (escapeName's escape) gets its comment", async () => {
    const { posted, prompt } = await review(added("src/a\u200Bb.ts"), "src/a\\u{200b}b.ts");
    expect(prompt()).toContain("### src/a\\u{200b}b.ts");
    expect(posted.map((c) => c.path)).toEqual(["src/a\u200Bb.ts"]);
  });

  it("places the comment the model writes on the name as the prompt shows it (U+2028)", async () => {
    const { posted, prompt } = await review(added("src/a\u2028b.ts"), "src/a\\u{2028}b.ts");
    // The prompt shows the name escaped, and the model cites it so.
    expect(prompt()).toContain("### src/a\\u{2028}b.ts");
    // Mapped back with escapeName only (which leaves U+2028 as it is): the path is unknown, and
    // the comment is dropped. Before this change the prompt showed the raw name, which mapped.
    expect(posted.map((c) => c.path)).toEqual(["src/a\u2028b.ts"]);
  });
});

// reviewPullRequest called directly: fake GitHub clients, the shipped prompts, a scripted model.
import { AIMessage } from "@langchain/core/messages";
import { pino } from "pino";
import type { Assistant } from "../../src/agent/assistant.js";
import type { PullRequestInfo } from "../../src/github/create-pull-request-client.js";
import type { PullRequestFile } from "../../src/pulls/pull-request-file.js";
import { reviewPullRequest } from "../../src/pulls/review-pull-request.js";
import { createFakeClock } from "./fake-clock.js";
import { scriptedModel } from "./scripted-model.js";
import { createTestAssistant } from "./test-assistant.js";
import { testMarkdownWorkers } from "./test-markdown-workers.js";

const BOT = "talos-bot[bot]";

/**
 * A `/talos review` of an open pull request of `files`, with no earlier review, answered with
 * `{ verdict: "ok", comments }` (none by default). `prompt()` is the user message of the model's
 * first call; `posted` the inline comments of the review created.
 */
export async function runReview(options: {
  files: PullRequestFile[];
  settings?: Partial<{ max_tokens: number; ignore: string[] }>;
  limits?: Partial<Assistant["limits"]>;
  comments?: unknown[];
}) {
  const model = scriptedModel().respond(
    new AIMessage(JSON.stringify({ verdict: "ok", comments: options.comments ?? [] })),
  );
  const posted: Array<{ path: string }> = [];
  const assistant = await createTestAssistant(model, options.limits);
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
    changedFiles: options.files.length,
    url: "https://github.com/o/r/pull/2",
  };
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
      listFiles: async () => ({ files: options.files, unlisted: 0 }),
      compare: async () => undefined,
      listReviews: async () => [],
      createReview: async (_number: number, review: { comments?: Array<{ path: string }> }) => {
        posted.push(...(review.comments ?? []));
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
      ...options.settings,
    } as never,
    commentId: 1,
    full: false,
    botLogin: BOT,
    markdown: testMarkdownWorkers(),
    clock: createFakeClock(),
    log: pino({ level: "silent" }),
  });
  return {
    outcome,
    model,
    posted,
    prompt: () => String(model.calls[0]?.messages[1]?.content ?? ""),
  };
}

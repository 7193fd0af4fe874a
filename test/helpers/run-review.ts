// reviewPullRequest called directly: fake GitHub clients, the shipped prompts, a scripted model.
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import { pino } from "pino";
import type { Assistant } from "../../src/agent/assistant.js";
import type { PullRequestInfo } from "../../src/github/create-pull-request-client.js";
import type { PullRequestFile } from "../../src/pulls/pull-request-file.js";
import { reviewPullRequest } from "../../src/pulls/review-pull-request.js";
import { createFakeClock } from "./fake-clock.js";
import { scriptedModel } from "./scripted-model.js";
import { createTestAssistant } from "./test-assistant.js";
import { testMarkdownWorkers } from "./test-markdown-workers.js";

export const BOT = "talos-bot[bot]";

/**
 * A review of an open pull request of `files`: `/talos review` (comment 1) by default, a push's
 * review with `commentId: undefined`. The model answers `answer`, by default
 * `{ verdict: "ok", comments }` (none by default); `after` changes the pull request as read
 * again once the model answered; `reviews` are the earlier ones (none by default); `refuse`
 * gives an error for the `attempt`th creation of the review (from 0). `prompt()` is the user
 * message of the model's first call; `posted` the inline comments of the review created, and
 * `created` each review created.
 */
export async function runReview(options: {
  files: PullRequestFile[];
  settings?: Partial<{ max_tokens: number; ignore: string[] }>;
  limits?: Partial<Assistant["limits"]>;
  comments?: unknown[];
  answer?: string | BaseMessage;
  after?: Partial<PullRequestInfo>;
  commentId?: number | undefined;
  reviews?: Array<{ author: string; body: string }>;
  refuse?: (attempt: number) => Error | undefined;
}) {
  const model = scriptedModel().respond(
    options.answer ??
      new AIMessage(JSON.stringify({ verdict: "ok", comments: options.comments ?? [] })),
  );
  const posted: Array<{ path: string }> = [];
  const created: Array<{
    body: string;
    comments: Array<{ path: string; line: number; body: string }>;
  }> = [];
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
  const clock = createFakeClock();
  let attempts = 0;
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
      // Read once more, after the model answered (the first read is `pull`, below).
      getPullRequest: async () => ({ ...pull, ...options.after }),
      listFiles: async () => ({ files: options.files, unlisted: 0 }),
      // A force-push: the whole pull request is read.
      compare: async () => undefined,
      listReviews: async () =>
        (options.reviews ?? []).map((r, i) => ({ id: i + 1, commitId: null, url: "u", ...r })),
      createReview: async (_number: number, review: (typeof created)[number]) => {
        const error = options.refuse?.(attempts++);
        if (error) throw error;
        created.push(review);
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
    commentId: "commentId" in options ? options.commentId : 1,
    full: false,
    botLogin: BOT,
    markdown: testMarkdownWorkers(),
    // TALOS_GITHUB_MAX_RETRIES and TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS at their defaults.
    limits: { maxRetries: 3, maxRetryWaitSeconds: 60 },
    clock,
    log: pino({ level: "silent" }),
  });
  return {
    outcome,
    model,
    posted,
    created,
    clock,
    prompt: () => String(model.calls[0]?.messages[1]?.content ?? ""),
  };
}

export function addedFile(filename: string, lines: string[]): PullRequestFile {
  return {
    filename,
    status: "added",
    additions: lines.length,
    deletions: 0,
    changes: lines.length,
    patch: `@@ -0,0 +1,${lines.length} @@\n${lines.map((l) => `+${l}`).join("\n")}`,
  };
}

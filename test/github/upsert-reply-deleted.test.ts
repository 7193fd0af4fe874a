import { describe, expect, it } from "vitest";
import { createOctokitClass } from "../../src/github/create-octokit.js";
import type { Octokit } from "../../src/github/octokit.js";
import { upsertReply } from "../../src/github/upsert-reply.js";
import { classifyJobFailure } from "../../src/jobs/job-runner.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { githubScope } from "../helpers/github-mocks.js";
import { captureLogs } from "../helpers/test-app.js";

const COMMENTS = "/repos/acme/widgets/issues/7/comments";
const MARKER = "<!-- talos:pr-summary:abc123 -->";
const BOT = "talos-bot[bot]";
const LIMITS = {
  maxRetries: 3,
  maxRetryWaitSeconds: 60,
  writeIntervalMs: 0,
  notificationIntervalMs: 0,
};

async function createClient(): Promise<Octokit> {
  const { log } = await captureLogs("warn");
  const Octokit = createOctokitClass({
    cache: undefined,
    metrics: createMetrics(),
    limits: LIMITS,
    throttle: false,
    retry: false,
  });
  return new Octokit({
    auth: { token: "ghs_reviewWritesDeleted" },
    log,
  } as never) as unknown as Octokit;
}

describe("upsertReply when its earlier comment disappears before the edit", () => {
  // Its list was read before the model ran (a summary's, for tens of seconds): a maintainer
  // deleting the old reply meanwhile made the edit a 404, which ended the job as if the pull
  // request were gone, with no summary posted.
  it("creates the reply instead of dropping the job when the PATCH answers 404", async () => {
    const octokit = await createClient();
    const scope = githubScope()
      .patch("/repos/acme/widgets/issues/comments/5")
      .reply(404, { message: "Not Found" })
      .get(COMMENTS)
      .query(true)
      .optionally()
      .reply(200, [])
      .post(COMMENTS)
      .reply(201, { id: 9 });

    const attempt = upsertReply({
      octokit,
      owner: "acme",
      repo: "widgets",
      issueNumber: 7,
      marker: MARKER,
      isSameReply: (m) => m.kind === "pr-summary",
      body: "**Summary of this pull request** ...",
      references: [],
      markdown: { toSafeMarkdown: async (text) => text },
      botLogin: BOT,
      // Listed before the model ran: the old summary (of an older head) was there then.
      knownComments: [
        {
          id: 5,
          author: BOT,
          body: "old summary\n\n<!-- talos:pr-summary:0ld -->",
          createdAt: "2024-01-01T00:00:00Z",
        },
      ],
      limits: LIMITS,
      clock: createFakeClock(),
    });
    const outcome = await attempt.then(
      (result) => ({ result, kind: undefined as string | undefined }),
      (error: unknown) => ({ result: undefined, kind: classifyJobFailure(error) as string }),
    );

    expect(outcome.kind).toBeUndefined();
    expect(outcome.result).toEqual({ action: "created", commentId: 9 });
    expect(scope.isDone()).toBe(true);
  });
});

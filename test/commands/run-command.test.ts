import { RequestError } from "@octokit/request-error";
import { describe, expect, it } from "vitest";
import { LlmError } from "../../src/agent/run-agent.js";
import { createCommandRegistry, type CommandContext } from "../../src/commands/command-registry.js";
import { runCommand } from "../../src/commands/run-command.js";
import { MarkdownWorkersClosedError } from "../../src/markdown/markdown-workers.js";
import { parseRepoConfig } from "../../src/parse-repo-config.js";
import { captureLogs } from "../helpers/test-app.js";

/** `review` failing with `error`, run as a comment's command is. */
async function reviewFailing(error: unknown) {
  const { log } = await captureLogs("warn");
  const registry = createCommandRegistry([
    {
      name: "review",
      usage: "/talos review",
      summary: "Review.",
      run: async () => {
        throw error;
      },
    },
  ]);
  const config = { ...parseRepoConfig({}), found: false };
  return runCommand({ name: "review", args: "" }, {
    registry,
    config,
    log,
  } as unknown as Omit<CommandContext, "args">);
}

const request = {
  method: "POST" as const,
  url: "https://api.github.com/repos/o/r/pulls/2/reviews",
  headers: {},
};

describe("runCommand", () => {
  it("lets a GitHub rate limit fail the job, to run again once it has passed, rather than reply that the command failed", async () => {
    // GitHub's content-creation limit, as it answers a review sent too fast.
    const tooQuickly = new RequestError("Validation Failed: was submitted too quickly", 422, {
      request,
      response: {
        status: 422,
        url: request.url,
        headers: {},
        data: { message: "Validation Failed", errors: ["was submitted too quickly"] },
      },
    });
    await expect(reviewFailing(tooQuickly)).rejects.toBe(tooQuickly);
    const secondary = new RequestError("You have exceeded a secondary rate limit", 403, {
      request,
      response: { status: 403, url: request.url, headers: { "retry-after": "60" }, data: {} },
    });
    await expect(reviewFailing(new Error("review failed", { cause: secondary }))).rejects.toThrow(
      "review failed",
    );
  });

  it("lets the Markdown workers closing as Talos stops fail the job, which stays journaled", async () => {
    const closed = new MarkdownWorkersClosedError();
    await expect(reviewFailing(closed)).rejects.toBe(closed);
  });

  it("replies to any other failure, a GitHub 422 that is no rate limit and the model's 429 included", async () => {
    const refused = new RequestError("Validation Failed", 422, {
      request,
      response: {
        status: 422,
        url: request.url,
        headers: {},
        data: { message: "Validation Failed" },
      },
    });
    expect((await reviewFailing(refused)).body).toBe(
      "Sorry, `review` failed (HttpError). The maintainers of this app can find the details in its log.",
    );
    const model429 = Object.assign(new Error("429 Rate limit reached"), {
      status: 429,
      headers: { "retry-after": "120" },
    });
    expect(
      (await reviewFailing(new LlmError("the language model call failed", { cause: model429 })))
        .body,
    ).toBe(
      "Sorry, the language model did not answer `review` (it may be down or slow). Please try again later.",
    );
  });
});

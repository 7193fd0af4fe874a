import { RateLimitError } from "openai";
import { describe, expect, it } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { retryAfterMs, retryDelayMs } from "../../src/jobs/job-runner.js";
import { createManualClock } from "../helpers/fake-clock.js";
import {
  githubScope,
  mockInstallationToken,
  mockIssueNow,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createTestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

/**
 * Review of 683052d: the job runner now reads every error in a failure's chain through
 * `rateLimitWaitMs`, which is GitHub's reading ("How long GitHub asks to wait"): any error whose
 * `status` is 429 — whoever's it is — comes out as "a minute, as GitHub advises" when it carries
 * no GitHub headers. The README's failure schedule ("retried after 30 s, 1, 2, 4 … 30 min, or
 * after GitHub's `retry-after` or rate-limit reset when that is later") gives GitHub's waits
 * only; an OpenAI (LangChain) 429 is not GitHub's, names no GitHub wait, and LangChain already
 * waited out its own retry-after before giving up. Before 683052d such a job was retried after
 * 30 s; now after 60 s, GitHub's one-minute advice applied to another service.
 */

const REPO = "/repos/Codertocat/Hello-World";

/** What LangChain's OpenAIEmbeddings throws once the provider's 429s outlast its retries. */
function openAiRateLimit() {
  return new RateLimitError(
    429,
    { message: "Rate limit reached for text-embedding-3-small", type: "requests" },
    undefined,
    new Headers({ "x-request-id": "req_1" }),
  );
}

describe("rate limits that are not GitHub's", () => {
  it("an OpenAI 429 names no GitHub wait: retryAfterMs leaves the job to its usual backoff", () => {
    // No `response.headers` (OpenAI's errors keep theirs in `headers`): nothing GitHub asked.
    expect(retryAfterMs(openAiRateLimit(), Date.now())).toBeUndefined();
  });

  it("a new issue whose embedding hits OpenAI's rate limit is retried after 30 s, as the README's schedule says, not after GitHub's minute", async () => {
    const clock = createManualClock(Date.parse("2026-12-06T12:00:00.000Z"));
    const failing: Embedder = {
      ...createLocalEmbedder(),
      embed: async () => {
        throw openAiRateLimit();
      },
    };
    const app = await createTestApp({ clock, embedder: failing });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "similar:\n  enabled: true\n" });
    scope
      .get(REPO)
      .optionally()
      .reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });

    const payload = webhookExample("issues", "opened", 2);
    Object.assign(payload.issue, { number: 14, title: "Crash on save", body: "It crashes." });
    mockIssueNow(scope, payload.issue);
    await app.probot.receive({ id: "review-openai-429", name: "issues", payload } as never);

    expect(scope.pendingMocks()).toEqual([]);
    const failed = app.logs.lines().find((l) => l.msg === "job failed; will retry");
    expect(failed?.err).toMatchObject({ message: expect.stringMatching(/429/) });
    // Expected: the first retry's 30 s. Actual: 60 s (rateLimitWaitMs's unnamed-limit minute).
    expect(failed?.retryAt).toBe(new Date(clock.now() + retryDelayMs(1)).toISOString());
  });
});

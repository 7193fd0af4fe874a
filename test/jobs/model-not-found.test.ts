import { describe, expect, it, onTestFinished } from "vitest";
import { createChatModel } from "../../src/agent/create-chat-model.js";
import { LlmError } from "../../src/agent/run-agent.js";
import { parseEnv } from "../../src/config.js";
import { EventHandlerError } from "../../src/handlers/guard-event.js";
import { classifyJobFailure } from "../../src/jobs/job-runner.js";
import { startOpenAIStandIn } from "../helpers/openai-stand-in.js";
import { setupJobRunner } from "../helpers/job-runner-setup.js";
import { makeDataDir } from "../helpers/test-app.js";

/**
 * The real chat model (LangChain's OpenAI client) against a server that answers 404, as OpenAI
 * does for a model that does not exist or was retired (`model_not_found`), and as a compatible
 * server does for a wrong path. The error is wrapped as run-agent.ts and guard-event.ts wrap it.
 */
async function modelNotFoundFailure(): Promise<unknown> {
  const standIn = await startOpenAIStandIn();
  onTestFinished(() => standIn.close());
  standIn.fallback({
    status: 404,
    body: {
      error: {
        message: "The model `gpt-retired` does not exist or you do not have access to it.",
        type: "invalid_request_error",
        code: "model_not_found",
      },
    },
  });
  const model = createChatModel(
    parseEnv({
      OPENAI_API_KEY: "sk-test-key-for-review",
      OPENAI_BASE_URL: standIn.baseUrl,
      TALOS_MODEL: "gpt-retired",
      TALOS_LLM_MAX_RETRIES: "0",
      TALOS_DATA_DIR: makeDataDir(),
    }),
  )!;
  try {
    await model.invoke("triage this issue");
  } catch (error) {
    // As run-agent.ts does with every failed model call, then guardEvent with the handler's error.
    const llm = new LlmError(`the language model call failed: ${(error as Error).message}`, {
      cause: error,
    });
    return new EventHandlerError("issues.opened", 1, "octo/hello", llm);
  }
  throw new Error("the model call was expected to fail");
}

describe("a model's 404 (not GitHub's) in a job", () => {
  it("is not read as 'the issue is gone from GitHub'", async () => {
    const failure = await modelNotFoundFailure();
    // Retried (the model may come back, or the operator fixes TALOS_MODEL) or parked for
    // `talos jobs retry`: anything but dropped as if the issue had been deleted.
    expect(classifyJobFailure(failure)).toBe("park");
  });

  it("a new issue's triage that meets it stays in the journal (retried or parked), not dropped as done", async () => {
    const failure = await modelNotFoundFailure();
    const { journal, runner, logs, metrics } = await setupJobRunner({
      concurrency: 1,
      maxAttempts: 5,
    });
    runner.register("issue-opened", async () => {
      throw failure;
    });
    runner.start(async () => "context");
    const ran = runner.waitFor("d-404").catch(() => undefined);
    await runner.submit(
      {
        id: "d-404",
        kind: "issue-opened",
        event: "issues.opened",
        thread: "1/10#7",
        repository: "octo/hello",
        installation: 1,
        payload: {},
      },
      "context",
    );
    await ran;
    await runner.idle();
    // The job must still be there: waiting for a retry, or parked where `talos jobs` shows it
    // and `talos jobs retry` can run it once TALOS_MODEL is fixed.
    expect(journal.list().map((job) => job.id)).toEqual(["d-404"]);
    expect(logs.text()).not.toContain("what it was about is gone from GitHub");
    const outcomes = (await metrics.jobs.get()).values.map((v) => v.labels.outcome);
    expect(outcomes).not.toContain("gone");
  });
});

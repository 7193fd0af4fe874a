import { createPublicKey } from "node:crypto";
import { AIMessage } from "@langchain/core/messages";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import {
  createTestApp,
  loadFixture,
  makeDataDir,
  TEST_PRIVATE_KEY,
  type TestApp,
} from "../helpers/test-app.js";

const THREAD = "Codertocat/Hello-World#1";
/** A day's budget that one `ask` (its prompt and answer's room) fits in. */
const DAY = 50_000;

/** An answer whose usage, as the server reports it, is the whole day's budget. */
const spendingTheDay = (content: string) =>
  new AIMessage({
    content,
    usage_metadata: { input_tokens: DAY - 10, output_tokens: 10, total_tokens: DAY },
  });

function ask(app: TestApp, commentId: number) {
  const payload = loadFixture<{ comment: { id: number; body: string } }>(
    "issue_comment.created.help.json",
  );
  payload.comment.id = commentId;
  payload.comment.body = "/talos ask why does it crash?";
  return app.probot.receive({
    id: `budget-${commentId}`,
    name: "issue_comment",
    payload,
  } as never);
}

/** The local embedder, recording what it is asked to embed: how many were the question. */
function recordingEmbedder() {
  const local = createLocalEmbedder();
  const embedded: string[] = [];
  const embedder: Embedder = {
    model: local.model,
    dimension: local.dimension,
    relatedScore: local.relatedScore,
    embed: (texts) => (embedded.push(...texts), local.embed(texts)),
  };
  const questions = () => embedded.filter((t) => t.includes("why does it crash?")).length;
  return { embedder, questions };
}

describe("daily token budgets", () => {
  let github: GitHubStandIn;
  beforeAll(async () => {
    github = await startGitHubStandIn({ publicKey: createPublicKey(TEST_PRIVATE_KEY) });
  });
  afterAll(() => github?.close());

  it("over budget: one notice per thread, then silence and no model call, across a restart", async () => {
    const dataDir = makeDataDir();
    // The first answer fits the day's budget and spends it all.
    const env = { TALOS_DAILY_TOKEN_BUDGET: String(DAY) };
    const model = scriptedModel().respond(spendingTheDay("It crashes on start."));
    // The embedding model is a model too: recalling memory for a question embeds it.
    const { embedder, questions } = recordingEmbedder();
    const first = await createTestApp({ dataDir, env, model, embedder, baseUrl: github.url });
    const thread = () => github.comments.get(THREAD) ?? [];
    const before = thread().length;

    await ask(first, 7001);
    expect(model.calls).toHaveLength(1);
    expect(thread().at(-1)?.body).toContain("It crashes on start.");
    const asked = questions();
    expect(asked).toBeGreaterThan(0);

    await ask(first, 7002);
    expect(model.calls).toHaveLength(1);
    expect(thread()).toHaveLength(before + 2);
    expect(thread().at(-1)?.body).toMatch(
      /This installation has used today's language-model budget, so `ask` was not run\.[\s\S]*<!-- talos:reply:7002 -->$/,
    );

    await ask(first, 7003);
    expect(thread()).toHaveLength(before + 2);
    await first.talos.close();

    const restarted = await createTestApp({ dataDir, env, model, embedder, baseUrl: github.url });
    await ask(restarted, 7004);
    expect(model.calls).toHaveLength(1);
    // Nor the embedding model: the refused questions were not embedded to recall memory.
    expect(questions()).toBe(asked);
    expect(thread()).toHaveLength(before + 2);
    expect(restarted.logs.lines().some((l) => l.msg === "command refused: budget spent")).toBe(
      true,
    );
    const refusals = (await restarted.talos.metrics.budgetRefusals.get()).values;
    expect(refusals).toEqual([
      expect.objectContaining({ labels: { scope: "installation" }, value: 1 }),
    ]);
    const tokens = (await first.talos.metrics.llmTokens.get()).values;
    expect(tokens.every((v) => v.labels.installation === "2")).toBe(true);
  });

  it("over budget: a notice whose post failed is posted when the job is retried", async () => {
    // A fake clock: the retry's 30-second wait passes at once.
    const clock = createFakeClock();
    const env = { TALOS_DAILY_TOKEN_BUDGET: String(DAY) };
    const model = scriptedModel().respond(spendingTheDay("It crashes on start."));
    const app = await createTestApp({ env, model, clock, baseUrl: github.url });
    const thread = () => github.comments.get(THREAD) ?? [];
    await ask(app, 7201);
    const before = thread().length;

    // Past the client's own retries (TALOS_GITHUB_MAX_RETRIES, 3): the job fails and is retried.
    github.failNext({
      method: "POST",
      path: /^\/repos\/Codertocat\/Hello-World\/issues\/1\/comments$/,
      status: 502,
      times: 4,
    });
    await ask(app, 7202);
    await vi.waitFor(
      async () => {
        await app.talos.services.jobs.idle();
        expect(app.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(2);
      },
      { timeout: 10_000 },
    );
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(true);
    expect(thread()).toHaveLength(before + 1);
    expect(thread().at(-1)?.body).toMatch(
      /This installation has used today's language-model budget, so `ask` was not run\.[\s\S]*<!-- talos:reply:7202 -->$/,
    );
  });

  it("over budget: a retried job whose answer is up takes no notice, and the thread's next command gets it", async () => {
    // Claimed before it was posted, the notice of the retry (kept out by the answer its earlier
    // run posted) used up the thread's one a day: the next command got silence, and the thread
    // never saw a notice (found by a review).
    const clock = createFakeClock();
    // The reply is answered with a 502, but GitHub kept it (a gateway timing out after the
    // write), with no retry within the request: the job is retried with its answer up, and the
    // day's budget spent.
    github.failNext({
      method: "POST",
      path: /\/issues\/\d+\/comments$/,
      status: 502,
      body: { message: "Bad Gateway" },
      applied: true,
    });
    const env = { TALOS_DAILY_TOKEN_BUDGET: String(DAY), TALOS_GITHUB_MAX_RETRIES: "0" };
    const model = scriptedModel().respond(spendingTheDay("It crashes on start."));
    const app = await createTestApp({ env, model, clock, baseUrl: github.url });
    const thread = () => github.comments.get(THREAD) ?? [];
    const before = thread().length;
    await ask(app, 7401);
    await vi.waitFor(
      async () => {
        await app.talos.services.jobs.idle();
        expect(app.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(1);
      },
      { timeout: 10_000 },
    );
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(true);
    expect(
      thread()
        .slice(before)
        .map((c) => c.body),
    ).toEqual([expect.stringMatching(/^It crashes on start\.[\s\S]*<!-- talos:reply:7401 -->$/)]);

    await ask(app, 7402);

    expect(model.calls).toHaveLength(1);
    expect(
      thread()
        .slice(before + 1)
        .map((c) => c.body),
    ).toEqual([
      expect.stringMatching(
        /^This installation has used today's language-model budget, so `ask` was not run\.[\s\S]*<!-- talos:reply:7402 -->$/,
      ),
    ]);
  });

  it("a repository's budget.daily_tokens lowers the installation's, never raises it", async () => {
    const model = scriptedModel().respond(new AIMessage("Answer."));
    const app = await createTestApp({
      env: { TALOS_DAILY_TOKEN_BUDGET: "1000000" },
      model,
      baseUrl: github.url,
    });
    github.setFile("Codertocat/Hello-World", ".github/talos.yml", "budget:\n  daily_tokens: 0\n");
    await ask(app, 7101);
    expect(model.calls).toHaveLength(0);
    expect((github.comments.get(THREAD) ?? []).at(-1)?.body).toContain(
      "This repository has used today's language-model budget",
    );
  });

  it("makes no first call that what is left cannot pay for (its prompt and the answer's room): the command gets the notice", async () => {
    const model = scriptedModel().respond(new AIMessage("Answer."));
    const { embedder, questions } = recordingEmbedder();
    const app = await createTestApp({
      env: { TALOS_DAILY_TOKEN_BUDGET: "1000000" },
      model,
      embedder,
      baseUrl: github.url,
    });
    // Less than one prompt and TALOS_LLM_MAX_OUTPUT_TOKENS (1,500): nothing spent yet.
    github.setFile(
      "Codertocat/Hello-World",
      ".github/talos.yml",
      "budget:\n  daily_tokens: 1000\n",
    );
    await ask(app, 7301);
    expect(model.calls).toHaveLength(0);
    // Nor the embedding model: the question was not embedded to recall memory for a call that
    // could not be made (it was, when only a spent budget counted).
    expect(questions()).toBe(0);
    expect((github.comments.get(THREAD) ?? []).at(-1)?.body).toMatch(
      /This repository has used today's language-model budget[\s\S]*<!-- talos:reply:7301 -->$/,
    );
    const refusals = (await app.talos.metrics.budgetRefusals.get()).values;
    expect(refusals).toEqual([
      expect.objectContaining({ labels: { scope: "repository" }, value: 1 }),
    ]);
  });
});

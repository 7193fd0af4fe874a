import { randomUUID } from "node:crypto";
import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import type { Clock } from "../../src/clock.js";
import {
  githubScope,
  APP_SLUG,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import {
  deleteKeys,
  dropSchema,
  freshSchema,
  requirePostgres,
  requireRedis,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const COMMENT_ID = 492700400;
const MARKER = `<!-- talos:reply:${COMMENT_ID} -->`;
type Scope = ReturnType<typeof githubScope>;

// Each answer costs the whole cap (TALOS_AGENT_MAX_TOKENS), as the server reports it. A call
// (its prompt and TALOS_LLM_MAX_OUTPUT_TOKENS, 1,500, for the answer) fits in a fresh cap.
const CAP = 10_000;
const answer = (total = CAP) =>
  new AIMessage({
    content: "It crashes on start.",
    usage_metadata: { input_tokens: total - 100, output_tokens: 100, total_tokens: total },
  });

function ask(app: TestApp, id: string) {
  const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
  payload.comment.body = "/talos ask why does it crash?";
  return app.probot.receive({ id, name: "issue_comment", payload } as never);
}

async function tokensCharged(app: TestApp): Promise<number> {
  const { values } = await app.talos.metrics.llmTokens.get();
  return values.reduce((sum, value) => sum + value.value, 0);
}

/**
 * An accepted `ask` up to the model call: reaction, the repository, the thread. With a spent
 * budget, the reaction alone: the refusal comes before anything is read.
 */
function mockAskReads(scope: Scope, { spent = false } = {}) {
  scope.post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" }).reply(201);
  if (spent) return;
  scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
  scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
}

/** The reply's look-up by its marker, after the command's comment: `comments` are found. */
function mockReplyLookup(scope: Scope, comments: unknown[] = []) {
  scope
    .get(`${REPO}/issues/1/comments`)
    .query({ per_page: "100", since: "2019-05-15T15:20:21Z" })
    .reply(200, comments);
}

/** A reply posted, answered with `status`: the bodies sent, in order. */
function recordPosts(scope: Scope, status: number, body: object): string[] {
  const bodies: string[] = [];
  scope
    .post(`${REPO}/issues/1/comments`, (sent: { body: string }) => Boolean(bodies.push(sent.body)))
    .reply(status, body);
  return bodies;
}

/**
 * An app whose jobs may spend CAP tokens, and an ask whose first run spends `spent` and reads
 * the thread, its reply answered 502 (no retry within the request: the job fails, and is retried
 * at once on the fake clock): the bodies of that reply are in `posted`.
 */
async function askWithReplyFailing(spent: number) {
  const model = scriptedModel().respond(answer(spent)).respond(answer(spent));
  const app = await createTestApp({
    clock: createFakeClock(),
    model,
    env: { TALOS_AGENT_MAX_TOKENS: String(CAP), TALOS_GITHUB_MAX_RETRIES: "0" },
  });
  const scope = githubScope();
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope);
  // No look-up of the reply before it is posted: the run read the whole thread, without it.
  mockAskReads(scope);
  const posted = recordPosts(scope, 502, { message: "Bad Gateway" });
  return { app, scope, model, posted };
}

describe("the per-job token cap (TALOS_AGENT_MAX_TOKENS) across a job's attempts", () => {
  it.each([
    ["once its cap is spent", CAP],
    // 400 tokens left, less than a call's answer alone (TALOS_LLM_MAX_OUTPUT_TOKENS, 1,500).
    ["when what is left of its cap cannot pay for a call", CAP - 400],
  ])("a retried job makes no model call %s, and posts the one notice", async (_, spent) => {
    const { app, scope, model, posted: failed } = await askWithReplyFailing(spent);
    // The retry (its config and repository cached): the reaction, then the reply looked for by
    // its marker (not there), and posted. Neither row reads the thread again: less than the
    // answer's room is left, and the refusal comes first (the 400 tokens' retry had read it).
    scope.post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" }).reply(200);
    mockReplyLookup(scope);
    const posted = recordPosts(scope, 201, { id: 9001 });

    await ask(app, "cap-1");
    await vi.waitFor(
      async () => {
        await app.talos.services.jobs.idle();
        expect(app.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(1);
      },
      { timeout: 10_000 },
    );

    expect(app.logs.lines().filter((l) => l.msg === "job failed; will retry")).toHaveLength(1);
    expect(failed).toEqual([`It crashes on start.\n\n${MARKER}`]);
    // The first attempt spent the job's whole cap: the retry calls no model.
    expect(model.calls).toHaveLength(1);
    expect(await tokensCharged(app)).toBeLessThanOrEqual(CAP);
    // What an over-budget command gets today: the one notice, as its reply (refusals name the job).
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatch(
      /^A single command may spend only so many tokens, and this one reached that limit, so `ask` was not run\.[\s\S]*<!-- talos:reply:492700400 -->$/,
    );
    // The cap is the command's own: no wait for midnight, which the day's budgets' notice names.
    expect(posted[0]).toContain("A new command (a narrower question, say) starts afresh.");
    expect(posted[0]).not.toContain("midnight");
    const refusals = (await app.talos.metrics.budgetRefusals.get()).values;
    expect(refusals).toEqual([expect.objectContaining({ labels: { scope: "job" }, value: 1 })]);
    expect(scope.pendingMocks()).toEqual([]);
  });
  it.each([
    ["finds the cap spent", false, CAP, "command refused: budget spent"],
    // Enough of the cap left for a call (its answer's 1,500 tokens), so that it reads the thread
    // again, which GitHub fails: the error reply is not posted over the answer either.
    ["fails", true, CAP - 2_000, "command failed"],
  ])(
    "leaves the answer an earlier run posted when the retry %s",
    async (_, readFails, spent, why) => {
      // The reply's 502 comes after GitHub kept it (a gateway timing out after the write): the
      // job fails after its reply is up. (A failure to remember the answer no longer fails the
      // job: see memory-features.test.ts.)
      const { app, scope, model, posted } = await askWithReplyFailing(spent);
      // The retry: the reaction again, the thread read again where the cap leaves room (GitHub
      // failing it), then the reply found by its marker and left as it is (no PATCH is mocked:
      // an edit would fail the test).
      scope.post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" }).reply(200);
      if (readFails)
        scope
          .get(`${REPO}/issues/1/comments`)
          .query({ per_page: "100" })
          .reply(500, { message: "Server Error" });
      mockReplyLookup(scope, [
        {
          id: 9001,
          user: { login: `${APP_SLUG}[bot]` },
          body: `It crashes on start.\n\n${MARKER}`,
        },
      ]);

      await ask(app, "cap-kept");
      await vi.waitFor(
        async () => {
          await app.talos.services.jobs.idle();
          expect(app.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(1);
        },
        { timeout: 10_000 },
      );

      expect(app.logs.lines().filter((l) => l.msg === "job failed; will retry")).toHaveLength(1);
      expect(posted).toEqual([`It crashes on start.\n\n${MARKER}`]);
      expect(model.calls).toHaveLength(1);
      expect(app.logs.lines().find((l) => l.msg === why)).toBeDefined();
      expect(app.logs.lines().find((l) => l.msg === "command answered")).toBeDefined();
      expect(app.logs.lines().filter((l) => l.action === "kept")).toHaveLength(1);
      expect(scope.pendingMocks()).toEqual([]);
    },
  );
});

describe("the job cap's notice and the thread's one notice a day", () => {
  it("each command stopped by its own cap is told so, and the day's notice is left to the day's budget", async () => {
    // The job cap is the command's own, and only a maintainer's command meets it: its notice had
    // used up the thread's one notice a day, so the thread's next capped command, and a command
    // refused later that day for the spent day's budget, got no reply at all.
    const model = scriptedModel();
    const app = await createTestApp({
      model,
      env: {
        // Room for the least prompt beside a short answer, not for this question.
        TALOS_LLM_MAX_OUTPUT_TOKENS: "100",
        TALOS_AGENT_MAX_TOKENS: "2100",
        TALOS_DAILY_TOKEN_BUDGET: "1000000",
      },
    });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    const question = `why does it crash? ${"the stack trace says it does ".repeat(300)}`;
    const posted: string[] = [];
    const commentIds = [COMMENT_ID, COMMENT_ID + 1];
    for (const [index, id] of commentIds.entries()) {
      scope.post(`${REPO}/issues/comments/${id}/reactions`, { content: "eyes" }).reply(201);
      if (index === 0) {
        scope
          .get(REPO)
          .reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
      }
      scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
      mockReplyLookup(scope);
      scope
        .post(`${REPO}/issues/1/comments`, (sent: { body: string }) =>
          Boolean(posted.push(sent.body)),
        )
        .reply(201, { id: 9001 + index });
      const payload = loadFixture<{ comment: { id: number; body: string } }>(
        "issue_comment.created.help.json",
      );
      payload.comment.id = id;
      payload.comment.body = `/talos ask ${question}`;
      await app.probot.receive({ id: `cap-notice-${id}`, name: "issue_comment", payload } as never);
    }

    expect(model.calls).toHaveLength(0);
    expect(posted).toHaveLength(2);
    for (const [index, body] of posted.entries()) {
      expect(body).toMatch(/^A single command may spend only so many tokens/);
      expect(body).not.toContain("posted once a day");
      expect(body).toMatch(new RegExp(`<!-- talos:reply:${commentIds[index]} -->$`));
    }
    // The thread's notice of a spent day is still to be posted.
    const account = await app.talos.services.budgets.account({
      installation: 2,
      repository: 186853002,
    });
    expect(await account.takeNotice("1", "a later comment")).toBe(true);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

const shared =
  (await requireRedis("the job cap across instances")) &&
  (await requirePostgres("the job cap across instances"));

describe.runIf(shared)("the per-job token cap with REDIS_URL and DATABASE_URL", () => {
  it("holds when the retry runs on another instance: no model call there, one notice", async () => {
    const prefix = `talos-test-${randomUUID()}`;
    const schema = freshSchema("talos_job_cap");
    onTestFinished(async () => {
      await deleteKeys(prefix);
      await dropSchema(schema);
    });
    const env = {
      REDIS_URL: TEST_REDIS_URL,
      TALOS_REDIS_PREFIX: prefix,
      // Budgets (and memory) in PostgreSQL: the job's count is the queue's, no table of its own.
      DATABASE_URL: TEST_DATABASE_URL,
      TALOS_DATABASE_SCHEMA: schema,
      TALOS_AGENT_MAX_TOKENS: String(CAP),
      TALOS_GITHUB_MAX_RETRIES: "0",
    };
    // A minute behind: the retry's 30-second wait is over as BullMQ counts it (in real time).
    const clock: Clock = {
      now: () => Date.now() - 60_000,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    };
    const modelA = scriptedModel().respond(answer());
    const a = await createTestApp({ clock, model: modelA, env });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    mockAskReads(scope);
    const failed: string[] = [];
    scope
      .post(`${REPO}/issues/1/comments`, (body: { body: string }) =>
        Boolean(failed.push(body.body)),
      )
      .reply(() => {
        // This instance takes no more jobs: the retry is the other one's.
        void a.talos.services.jobs.stop(0);
        return [502, { message: "Bad Gateway" }];
      });

    await ask(a, `cap-shared-${prefix}`);
    await a.talos.services.jobs.idle();
    expect(a.logs.lines().filter((l) => l.msg === "job failed; will retry")).toHaveLength(1);
    expect(failed).toEqual([`It crashes on start.\n\n${MARKER}`]);

    // The other instance: a client of its own, so its own token, identity and config reads.
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    mockAskReads(scope, { spent: true });
    mockReplyLookup(scope);
    const posted = recordPosts(scope, 201, { id: 9001 });
    const modelB = scriptedModel().respond(answer());
    const b = await createTestApp({ clock, model: modelB, env });
    await vi.waitFor(
      () => expect(b.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(1),
      { timeout: 10_000 },
    );

    expect(b.logs.lines().find((l) => l.msg === "job finished")).toMatchObject({ attempt: 2 });
    expect(modelA.calls).toHaveLength(1);
    expect(modelB.calls).toHaveLength(0);
    expect((await tokensCharged(a)) + (await tokensCharged(b))).toBeLessThanOrEqual(CAP);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatch(
      /^A single command may spend only so many tokens, and this one reached that limit, so `ask` was not run\.[\s\S]*<!-- talos:reply:492700400 -->$/,
    );
    expect(scope.pendingMocks()).toEqual([]);
  });
});

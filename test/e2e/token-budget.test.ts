import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../helpers/openai-stand-in.js";
import {
  askDelivery,
  buildDist,
  jobFinished,
  makeWorkDir,
  repliesTo,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type Delivery,
  type ServerProcess,
} from "../helpers/server-process.js";
import { TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

const REPO = "Codertocat/Hello-World";
const OTHER = "Codertocat/Other";
const ANSWER = "It crashes because the cache directory is read-only.";
const signed = { secret: TEST_WEBHOOK_SECRET };

/**
 * The reliability issue's done-when, against `npm start`'s server (`node dist/main.js`) with the
 * GitHub and OpenAI stand-ins: a repository over its budget gets one notice per thread, and no
 * model call, across a restart; another repository of the installation is answered.
 */
describe("a repository over its daily token budget, in the started server", () => {
  let github: GitHubStandIn;
  let llm: OpenAIStandIn;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;
  const cwd = makeWorkDir();

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    llm = await startOpenAIStandIn();
    llm.fallback({ content: ANSWER });
    // Less than one call's prompt and answer: every call this repository asks for is refused.
    github.setFile(REPO, ".github/talos.yml", "budget:\n  daily_tokens: 1000\n");
    env = await standInServerEnv(github.host, {
      OPENAI_API_KEY: "sk-e2e-budget-0123456789abcdef",
      OPENAI_BASE_URL: llm.baseUrl,
      TALOS_MODEL: "local-model",
      LOG_LEVEL: "info",
    });
  });

  afterAll(async () => {
    await server?.kill();
    await github?.close();
    await llm?.close();
  });

  async function start() {
    const started = await startServerProcess(env, { cwd });
    onTestFailed(() => console.log(started.output()));
    return started;
  }

  /** Sends `delivery` and waits until its job is done. */
  async function handled(delivery: Delivery) {
    expect((await sendWebhook(server!.url, delivery, signed)).status).toBe(200);
    await jobFinished(server!, delivery.id);
  }

  /** `/talos ask` on `repo#number` (the repository's id follows its name). */
  function askIn(repo: string, id: string, commentId: number, number: number): Delivery {
    const delivery = askDelivery(id, commentId, number);
    const payload = delivery.payload as { repository: Record<string, unknown> };
    if (repo !== REPO) {
      const [owner, name] = repo.split("/");
      Object.assign(payload.repository, { id: 286853002, name, full_name: repo });
      (payload.repository.owner as { login: string }).login = owner!;
    }
    return delivery;
  }

  const notice = /has used today's language-model budget, so `ask` was not run\./;

  it("gives one notice per thread and no model call, across a restart, and answers another repository", async () => {
    server = await start();

    await handled(askIn(REPO, "e2e-budget-1", 2001, 1));
    const first = repliesTo(github, REPO, 1, 2001);
    expect(first).toHaveLength(1);
    expect(first[0]!.body).toMatch(notice);
    expect(first[0]!.body).toMatch(/<!-- talos:reply:2001 -->$/);

    // The same thread again: no second notice.
    await handled(askIn(REPO, "e2e-budget-2", 2002, 1));
    expect(repliesTo(github, REPO, 1, 2002)).toEqual([]);

    await server.kill("SIGTERM");
    server = await start();

    // After the restart, the thread stays silent; another thread gets its one notice.
    await handled(askIn(REPO, "e2e-budget-3", 2003, 1));
    expect(repliesTo(github, REPO, 1, 2003)).toEqual([]);
    await handled(askIn(REPO, "e2e-budget-4", 2004, 2));
    expect(repliesTo(github, REPO, 2, 2004).map((c) => c.body)).toEqual([
      expect.stringMatching(notice),
    ]);
    // Neither model was asked anything for this repository: no chat, no embedding of a question.
    expect(llm.chatArrivals()).toBe(0);
    expect(llm.embeddingRequests).toEqual([]);

    // Another repository of the same installation has the installation's budget: answered.
    await handled(askIn(OTHER, "e2e-budget-other", 2005, 3));
    expect(repliesTo(github, OTHER, 3, 2005).map((c) => c.body)).toEqual([
      `${ANSWER}\n\n<!-- talos:reply:2005 -->`,
    ]);
    expect(llm.chatArrivals()).toBe(1);
    expect(server.output()).toContain('"msg":"command refused: budget spent"');
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/eventually.js";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import {
  buildDist,
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import { loadFixture, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const CONFIG_PATH = "/repos/Codertocat/Hello-World/contents/.github%2Ftalos.yml";

/**
 * The GitHub layer as a maintainer meets it: the server started with `node dist/main.js`
 * against a GitHub stand-in, webhooks over HTTP.
 */
describe("the GitHub layer of the started server", () => {
  let github: GitHubStandIn;
  let server: ServerProcess;
  const signed = { secret: TEST_WEBHOOK_SECRET };
  let commentId = 100;

  /** Sends a command; answers with the HTTP status and the delivery id, for `jobsFinished`. */
  async function command(body: string) {
    const payload = loadFixture<{ comment: { id: number; body: string } }>(
      "issue_comment.created.help.json",
    );
    payload.comment.id = ++commentId;
    payload.comment.body = body;
    const delivery = `e2e-gh-${commentId}`;
    const res = await sendWebhook(
      server.url,
      { id: delivery, event: "issue_comment", payload },
      signed,
    );
    return { status: res.status, delivery };
  }

  /**
   * Deliveries are acknowledged once journaled and run afterwards: waits until the runner logged
   * the job of each delivery as finished. A job parked instead ends the wait at once.
   */
  async function jobsFinished(...deliveries: string[]): Promise<void> {
    const waiting = new Set(deliveries);
    await eventually(
      () => {
        for (const line of server.output().split("\n")) {
          if (!line.startsWith("{") || !line.includes('"msg":"job')) continue;
          const entry = JSON.parse(line) as { msg?: string; delivery?: string };
          if (entry.delivery === undefined || !waiting.has(entry.delivery)) continue;
          if (entry.msg?.startsWith("job failed; parked"))
            throw new Error(`the job of ${entry.delivery} was parked: ${line}`);
          if (entry.msg === "job finished") waiting.delete(entry.delivery);
        }
        return waiting.size === 0;
      },
      `the jobs of ${deliveries.join(", ")} to finish`,
      60_000,
    );
  }
  const thread = () => github.comments.get("Codertocat/Hello-World#1") ?? [];

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    github.setFile("Codertocat/Hello-World", ".github/talos.yml", "commands:\n  disabled: []\n");
    server = await startServerProcess(await standInServerEnv(github.host), { cwd: makeWorkDir() });
  });

  afterAll(async () => {
    await server?.kill();
    await github?.close();
  });

  it("reads the config, the repository and the labels at most once in a burst of 50 commands", async () => {
    const responses = await Promise.all(Array.from({ length: 50 }, () => command("/talos help")));

    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    await jobsFinished(...responses.map((r) => r.delivery));
    expect(thread()).toHaveLength(50);
    expect(github.count("GET", CONFIG_PATH)).toBe(1);
    expect(github.count("GET", "/repos/Codertocat/Hello-World")).toBeLessThanOrEqual(1);
    expect(github.count("GET", "/repos/Codertocat/Hello-World/labels")).toBeLessThanOrEqual(1);
    expect(github.count("GET", "/app")).toBe(1);
  }, 120_000);

  it("sees a new .github/talos.yml on the next command after a push that changes it", async () => {
    github.setFile(
      "Codertocat/Hello-World",
      ".github/talos.yml",
      "commands:\n  help_for_everyone: true\n",
    );
    await jobsFinished((await command("/talos config")).delivery);
    expect(thread().at(-1)?.body).toContain("help_for_everyone: false");

    const push = webhookExample("push");
    push.ref = "refs/heads/main";
    push.repository.default_branch = "main";
    push.commits = [{ id: "c0ffee", added: [], removed: [], modified: [".github/talos.yml"] }];
    expect(
      (await sendWebhook(server.url, { id: "e2e-gh-push", event: "push", payload: push }, signed))
        .status,
    ).toBe(200);

    await jobsFinished((await command("/talos config")).delivery);
    expect(thread().at(-1)?.body).toContain("help_for_everyone: true");
    expect(github.count("GET", CONFIG_PATH)).toBe(2);
  });

  it("retries a reply refused with a secondary rate limit, and exactly one reply lands", async () => {
    const before = thread().length;
    github.failNext({
      method: "POST",
      path: /^\/repos\/Codertocat\/Hello-World\/issues\/1\/comments$/,
      status: 403,
      headers: { "retry-after": "1" },
      body: {
        message:
          "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
      },
    });
    const postsBefore = github.count("POST", "/repos/Codertocat/Hello-World/issues/1/comments");

    const { status, delivery } = await command("/talos help");
    expect(status).toBe(200);
    await jobsFinished(delivery);

    expect(github.count("POST", "/repos/Codertocat/Hello-World/issues/1/comments")).toBe(
      postsBefore + 2,
    );
    expect(thread()).toHaveLength(before + 1);
    expect(thread().at(-1)?.body).toContain(`<!-- talos:reply:${commentId} -->`);
    expect(server.output()).toContain("GitHub secondary rate limit hit");
  });

  it("serves /metrics on its own port, with the remaining requests the API last reported", async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    const res = await fetch(`${server.metricsUrl}/metrics`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    for (const series of [
      "talos_github_requests_total",
      "talos_github_request_duration_seconds",
      "talos_github_rate_limit_remaining",
      "talos_github_throttled_total",
      "talos_cache_requests_total",
      "process_resident_memory_bytes",
    ]) {
      expect(text).toContain(`# TYPE ${series}`);
    }
    const last = github.lastRateLimit.get("token ghs_standin2token000000000000");
    expect(text).toContain(
      `talos_github_rate_limit_remaining{installation="2",resource="core"} ${last?.["x-ratelimit-remaining"]}`,
    );
    expect(text).toContain('talos_github_throttled_total{kind="secondary"} 1');
    expect(text).toMatch(/talos_cache_requests_total\{kind="config",result="hit"\} \d+/);
  });
});

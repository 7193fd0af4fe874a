import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../helpers/openai-stand-in.js";
import { eventually } from "../helpers/eventually.js";
import {
  askDelivery,
  buildDist,
  makeWorkDir,
  repliesTo,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import {
  freshSchema,
  deleteKeys,
  requirePostgres,
  requireRedis,
  TEST_DATABASE_URL,
  startCuttableProxy,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";
import { TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "Codertocat/Hello-World";
const OPENAI_KEY = "sk-e2e-cluster-0123456789abcdef";
const ANSWER = "X fails because its config file is missing.";
const signed = { secret: TEST_WEBHOOK_SECRET };
// A dead instance's job goes to another after this; short, so the test does not wait long.
const LEASE_MS = 2_000;

const available = await requireRedis("the multi-instance tests");
const withDatabase = available && (await requirePostgres("the multi-instance tests' budgets"));

/**
 * Three `node dist/main.js` processes (what `npm start` runs) sharing one Redis, with the GitHub
 * and OpenAI stand-ins: the scale-out issue's multi-instance checks for the job queue.
 */
describe.runIf(available)("several instances sharing Redis", () => {
  let github: GitHubStandIn;
  let llm: OpenAIStandIn;
  const prefix = `talos-e2e-${randomUUID()}`;
  const schema = freshSchema("talos_e2e");
  const servers: ServerProcess[] = [];
  const workDir = makeWorkDir();

  async function start(
    redisUrl = TEST_REDIS_URL,
    extra: Record<string, string> = {},
  ): Promise<ServerProcess> {
    const env = await standInServerEnv(github.host, {
      OPENAI_API_KEY: OPENAI_KEY,
      OPENAI_BASE_URL: llm.baseUrl,
      TALOS_MODEL: "local-model",
      REDIS_URL: redisUrl,
      TALOS_REDIS_PREFIX: prefix,
      // The budgets in PostgreSQL, as `REDIS_URL=… DATABASE_URL=… npm start` runs.
      ...(withDatabase ? { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema } : {}),
      TALOS_JOB_LEASE_MS: String(LEASE_MS),
      LOG_LEVEL: "debug",
      ...extra,
    });
    const server = await startServerProcess(env, { cwd: workDir });
    servers.push(server);
    return server;
  }

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    llm = await startOpenAIStandIn();
    llm.fallback({ content: ANSWER });
    // Triage reads the repository's labels (through the cache) for every new issue.
    // The hourly automation budget is the cluster's: room for every issue these tests open.
    github.setFile(
      REPO,
      ".github/talos.yml",
      "triage:\n  enabled: true\nautomation:\n  max_runs_per_hour: 100\n",
    );
    github.labels.set(REPO, ["bug", "documentation"]);
    await Promise.all([start(), start(), start()]);
  }, 120_000);

  beforeEach((context) =>
    context.onTestFailed(() => {
      for (const server of servers) console.log(server.output().slice(-20_000));
    }),
  );

  afterAll(async () => {
    llm?.release();
    for (const server of servers)
      if (server.child.exitCode === null && server.child.signalCode === null)
        await server.kill("SIGKILL");
    await github?.close();
    await llm?.close();
    await deleteKeys(prefix);
    if (withDatabase) {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });

  const ask = askDelivery;
  const replies = (number: number, commentId: number) => repliesTo(github, REPO, number, commentId);
  const created = (number: number) =>
    github
      .writes()
      .filter((w) => w.method === "POST" && w.path.endsWith(`/issues/${number}/comments`)).length;
  const ranOn = (delivery: string) =>
    servers.filter((s) =>
      s
        .output()
        .split("\n")
        .some(
          (line) =>
            line.includes(`"delivery":"${delivery}"`) && line.includes('"msg":"job started"'),
        ),
    );

  const finished = (server: ServerProcess, delivery: string) =>
    server
      .output()
      .split("\n")
      .some(
        (line) =>
          line.includes(`"delivery":"${delivery}"`) && line.includes('"msg":"job finished"'),
      );
  /** How an instance's cache served its reads of the labels, from its metrics. */
  async function labelReads(server: ServerProcess) {
    const text = await (await fetch(`${server.metricsUrl}/metrics`)).text();
    const count = (result: string) =>
      Number(
        new RegExp(`talos_cache_requests_total\\{kind="labels",result="${result}"\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    return { hit: count("hit"), miss: count("miss"), revalidated: count("revalidated") };
  }

  it("gives one reply to a delivery sent to every instance at once", async () => {
    const delivery = ask("cluster-duplicate", 5001, 51);
    const answers = await Promise.all(
      servers.slice(0, 3).map((s) => sendWebhook(s.url, delivery, signed)),
    );
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    await eventually(() => replies(51, 5001).length === 1, "the reply");
    // Every instance has polled the queue a few times since: nothing else runs it.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(replies(51, 5001)).toHaveLength(1);
    expect(created(51)).toBe(1);
    expect(ranOn("cluster-duplicate")).toHaveLength(1);
    const skipped = servers
      .slice(0, 3)
      .flatMap((s) => s.output().split("\n"))
      .filter((line) => line.includes("ignored: this delivery was already accepted"));
    expect(skipped).toHaveLength(2);
  }, 60_000);

  it("runs the commands of one thread one at a time, in order, whichever instance they arrive at", async () => {
    llm.latency(400);
    const before = llm.arrivals.length;
    const ids = [6001, 6002, 6003, 6004, 6005, 6006];
    // Sent in order, each to the next instance, each acknowledged before the next is sent.
    for (const [i, commentId] of ids.entries()) {
      const res = await sendWebhook(
        servers[i % 3]!.url,
        ask(`cluster-order-${commentId}`, commentId, 61),
        signed,
      );
      expect(res.status).toBe(200);
    }
    await eventually(() => ids.every((id) => replies(61, id).length === 1), "six replies", 30_000);
    llm.latency(0);
    const posted = (github.comments.get(`${REPO}#61`) ?? []).map(
      (c) => /talos:reply:(\d+)/.exec(c.body)?.[1],
    );
    expect(posted).toEqual(ids.map(String));
    // One at a time: each model call began after the one before it was answered (400 ms).
    const arrivals = llm.arrivals.slice(before);
    expect(arrivals).toHaveLength(6);
    for (let i = 1; i < arrivals.length; i++)
      expect(arrivals[i]! - arrivals[i - 1]!).toBeGreaterThanOrEqual(380);
    for (const id of ids) expect(ranOn(`cluster-order-${id}`)).toHaveLength(1);
  }, 60_000);

  it("evicts every instance's cached labels when one of them is told a label changed", async () => {
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    let number = 100;
    const opened = async (server: ServerProcess) => {
      const payload = webhookExample("issues", "opened");
      payload.issue.number = ++number;
      // Read again before triage: GitHub has it, as opened.
      github.issues.set(`${REPO}#${number}`, {
        number,
        title: payload.issue.title,
        body: payload.issue.body,
        state: "open",
        user: { login: payload.issue.user.login },
        labels: [],
      });
      const id = `cluster-labels-${number}`;
      expect((await sendWebhook(server.url, { id, event: "issues", payload }, signed)).status).toBe(
        200,
      );
      await eventually(
        () => ranOn(id).length === 1 && finished(ranOn(id)[0]!, id),
        `the job of ${id}`,
      );
      return ranOn(id)[0]!;
    };
    // Each instance reads the labels once at least, and keeps them (misses, then hits).
    const warmed = new Set<ServerProcess>();
    for (let round = 0; round < 5 && warmed.size < 3; round++)
      for (const server of [a, b, c]) warmed.add(await opened(server));
    expect(warmed.size).toBe(3);
    const before = await Promise.all([a, b, c].map((s) => labelReads(s)));
    // A label is created on GitHub; only A is told.
    github.labels.set(REPO, ["bug", "documentation", "crash"]);
    const label = webhookExample("label", "created");
    expect(
      (
        await sendWebhook(
          a.url,
          { id: "cluster-label-created", event: "label", payload: label },
          signed,
        )
      ).status,
    ).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Every instance that triages after that reads the labels from GitHub again.
    const ran = new Set<ServerProcess>();
    for (let round = 0; round < 5 && (!ran.has(b) || !ran.has(c)); round++)
      for (const server of [b, c]) ran.add(await opened(server));
    expect(ran.has(b) && ran.has(c)).toBe(true);
    for (const [i, server] of [a, b, c].entries()) {
      if (!ran.has(server)) continue;
      const after = await labelReads(server);
      expect(after.miss + after.revalidated).toBeGreaterThan(
        before[i]!.miss + before[i]!.revalidated,
      );
    }
  }, 90_000);

  it("SIGKILL of the instance running a job: another finishes it, with exactly one reply", async () => {
    llm.hold();
    const arrived = llm.chatArrivals();
    const res = await sendWebhook(servers[0]!.url, ask("cluster-sigkill", 7001, 71), signed);
    expect(res.status).toBe(200);
    await llm.waitForChat(arrived + 1);
    const [holder] = ranOn("cluster-sigkill");
    expect(holder).toBeDefined();
    await holder!.kill("SIGKILL");
    // The held completion's client is gone: it is dropped, unanswered.
    llm.release();
    await eventually(
      () => replies(71, 7001).length === 1,
      "the reply from another instance",
      30_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(replies(71, 7001)).toHaveLength(1);
    expect(replies(71, 7001)[0]!.body).toBe(`${ANSWER}\n\n<!-- talos:reply:7001 -->`);
    const finisher = ranOn("cluster-sigkill").filter((s) => s !== holder);
    expect(finisher).toHaveLength(1);
    expect(created(71)).toBe(1);
  }, 60_000);

  it("refuses deliveries with 503 while its Redis is away, and takes the redelivery once it is back", async () => {
    const port = Number(new URL(TEST_REDIS_URL).port || 6379);
    const proxy = await startCuttableProxy({ host: new URL(TEST_REDIS_URL).hostname, port });
    try {
      const server = await start(proxy.url);
      proxy.cut();
      const delivery = ask("cluster-outage", 8001, 81);
      await eventually(async () => {
        const res = await sendWebhook(server.url, delivery, signed);
        if (res.status === 503) expect(res.headers.get("retry-after")).toBe("60");
        return res.status === 503;
      }, "a 503");
      expect(server.output()).toContain("Redis unreachable: new deliveries are refused with 503");
      proxy.restore();
      // GitHub's redelivery, until the instance has reconnected.
      await eventually(
        async () => (await sendWebhook(server.url, delivery, signed)).status === 200,
        "a 200",
        30_000,
      );
      await eventually(() => replies(81, 8001).length === 1, "the reply", 30_000);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(created(81)).toBe(1);
    } finally {
      await proxy.close();
    }
  }, 90_000);

  it.runIf(withDatabase)("finds through one instance a memory added through another", async () => {
    // Two instances still running (an earlier test killed one).
    const [first, second] = servers.filter(
      (s) => s.child.exitCode === null && s.child.signalCode === null,
    );
    const payload = webhookExample("issues", "opened", 2);
    const title = "Crash when saving a file on Windows";
    const body = `${title}. Steps to reproduce are in the attached log.`;
    Object.assign(payload.issue, {
      number: 300,
      title,
      body,
      html_url: `https://github.com/${REPO}/issues/300`,
    });
    // On GitHub too: a similar issue is read before it is named.
    github.issues.set(`${REPO}#300`, {
      number: 300,
      title,
      body,
      state: "open",
      user: { login: "octocat" },
      labels: [],
    });
    const added = await sendWebhook(
      first!.url,
      { id: `memory-${randomUUID()}`, event: "issues", payload },
      signed,
    );
    expect(added.status).toBe(200);
    // Remembered through the first instance: in PostgreSQL, where every instance reads.
    await eventually(async () => {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        const { rows } = await client.query(
          `SELECT 1 FROM "${schema}".memory_records WHERE id = 'issue-300' AND NOT removed`,
        );
        return rows.length === 1;
      } finally {
        await client.end();
      }
    }, "issue #300 to be remembered");
    // Asked on another issue through the second instance.
    const similar = askDelivery(`similar-${randomUUID()}`, 3001, 301);
    const issue = similar.payload as { comment: { body: string }; issue: object };
    issue.comment.body = "/talos similar";
    Object.assign(issue.issue, { title: `${title} 11`, body: `${title} 11. Steps in the log.` });
    expect((await sendWebhook(second!.url, similar, signed)).status).toBe(200);
    await eventually(() => replies(301, 3001).length === 1, "the reply to /talos similar");
    expect(replies(301, 3001)[0]!.body).toContain(`**Possibly related**: #300 (${title}).`);
  });

  it.runIf(withDatabase)(
    "counted what every instance's model calls spent in PostgreSQL",
    async () => {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        const { rows } = await client.query<{
          installation_id: string;
          repository_id: string;
          tokens: string;
        }>(
          `SELECT installation_id, repository_id, tokens FROM "${schema}".budget_counts ORDER BY repository_id`,
        );
        // The fixture's installation and repository: its own row (0) and the repository's, equal.
        expect(rows.map((r) => [r.installation_id, r.repository_id])).toEqual([
          ["2", "0"],
          ["2", "186853002"],
        ]);
        expect(Number(rows[0]!.tokens)).toBeGreaterThan(0);
        expect(rows[0]!.tokens).toBe(rows[1]!.tokens);
      } finally {
        await client.end();
      }
    },
  );
  it("a Redis outage longer than the lease while the model answers: the cut-off instance writes nothing, even once Redis is back, and another replies, once", async () => {
    // A cluster of its own (its own queue), so that the job runs where the test says.
    const own = { TALOS_REDIS_PREFIX: `talos-e2e-fence-${randomUUID()}` };
    const port = Number(new URL(TEST_REDIS_URL).port || 6379);
    const proxy = await startCuttableProxy({ host: new URL(TEST_REDIS_URL).hostname, port });
    try {
      const cutOff = await start(proxy.url, own);
      llm.hold();
      const arrived = llm.chatArrivals();
      expect((await sendWebhook(cutOff.url, ask("cluster-fence", 9001, 91), signed)).status).toBe(
        200,
      );
      await llm.waitForChat(arrived + 1);
      const other = await start(TEST_REDIS_URL, own);
      proxy.cut();
      // Unrenewed, the cut-off instance gives the job up before its lease lapses; the other
      // takes it once it has (its model call is held too).
      await eventually(
        () => cutOff.output().includes("job lease lost (its lease was not renewed in time)"),
        "the cut-off instance to give the job up",
        10_000,
      );
      await llm.waitForChat(arrived + 2);
      expect(ranOn("cluster-fence")).toEqual([cutOff, other]);
      // Redis is back, and with it the cut-off instance's write queue: only its lost lease now
      // keeps it from writing. Both answers come: its reply is refused as it is sent.
      proxy.restore();
      await eventually(
        () => cutOff.output().includes("Redis answers again: deliveries are accepted"),
        "the cut-off instance to reach Redis again",
        15_000,
      );
      llm.release();
      await eventually(() => replies(91, 9001).length === 1, "the reply", 30_000);
      await eventually(
        () =>
          cutOff.output().includes("job left: this instance lost its lease, and another runs it"),
        "the cut-off instance to leave the job",
        30_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(created(91)).toBe(1);
      expect(finished(other, "cluster-fence")).toBe(true);
      expect(finished(cutOff, "cluster-fence")).toBe(false);
      await cutOff.kill("SIGKILL");
      await other.kill("SIGKILL");
    } finally {
      llm.release();
      await proxy.close();
    }
  }, 90_000);
});

import { spawnSync } from "node:child_process";
import { createPublicKey } from "node:crypto";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { systemClock } from "../../src/clock.js";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { eventually } from "../helpers/eventually.js";
import {
  startGitHubStandIn,
  type GitHubStandIn,
  type StandInHookDelivery,
} from "../helpers/github-stand-in.js";
import { createRestDescription } from "../helpers/rest-description.js";
import {
  buildDist,
  getFreePort,
  makeWorkDir,
  ROOT,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import {
  loadFixture,
  makeDataDir,
  TEST_PRIVATE_KEY,
  TEST_WEBHOOK_SECRET,
} from "../helpers/test-app.js";

const REPO = "Codertocat/Hello-World";
const HOUR = 3_600_000;
const SUMMARY = "asked GitHub to redeliver missed deliveries";
const ATTEMPTS = /^\/app\/hook\/deliveries\/\d+\/attempts$/;

/** An attempt at delivering `guid`, `hoursAgo` hours ago, answered `statusCode`. */
function attempt(
  id: number,
  guid: string,
  hoursAgo: number,
  statusCode: number,
  redelivery = false,
): StandInHookDelivery {
  return {
    id,
    guid,
    delivered_at: new Date(Date.now() - hoursAgo * HOUR).toISOString(),
    redelivery,
    duration: 10,
    status: statusCode === 200 ? "OK" : statusCode === 502 ? "failed to connect" : "Bad Request",
    status_code: statusCode,
    event: "issue_comment",
    action: "created",
    installation_id: 2,
    repository_id: 1296269,
  };
}

function logLines(server: ServerProcess, msg: string) {
  return server
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{") && line.includes(`"msg":${JSON.stringify(msg)}`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * `npm start` after an outage: GitHub could not deliver while Talos was down, and keeps the
 * failed attempts; the started server asks for each missed one again, once.
 */
describe("missed deliveries at start", () => {
  let github: GitHubStandIn;
  const servers: ServerProcess[] = [];
  const workDir = makeWorkDir();

  beforeAll(async () => {
    buildDist();
    // App JWTs are checked against the app's key, as GitHub does.
    github = await startGitHubStandIn({ publicKey: createPublicKey(TEST_PRIVATE_KEY) });
  });

  afterAll(async () => {
    for (const server of servers) {
      if (server.child.exitCode === null && server.child.signalCode === null)
        await server.kill("SIGKILL");
    }
    await github?.close();
  });

  async function start(env: Record<string, string>): Promise<ServerProcess> {
    const server = await startServerProcess(env, { cwd: workDir });
    servers.push(server);
    onTestFailed(() => console.log(server.output()));
    return server;
  }

  const redeliveries = () =>
    github.requests.filter((r) => r.method === "POST" && ATTEMPTS.test(r.path)).map((r) => r.path);

  it("asks, once the server listens, for the delivery it missed, and not for one its journal holds, one delivered or one asked for before", async () => {
    const dataDir = makeDataDir();
    // The ledger: a delivery Talos accepted (its job parked) though GitHub saw its answer fail.
    const journal = await JobJournal.open({
      file: join(dataDir, "jobs", "journal.log"),
      maxQueued: 100,
      retentionMs: 72 * HOUR,
      maxFinished: 100,
      clock: systemClock,
      log: pino({ level: "silent" }),
    });
    const accepted = {
      id: "e2e-redeliver-accepted",
      kind: "comment",
      event: "issue_comment.created",
      thread: `2/1296269#1`,
      repository: REPO,
      installation: 2,
      payload: {},
    };
    expect(await journal.enqueue(accepted)).toEqual({ status: "accepted" });
    await journal.fail(accepted.id, "HttpError: Validation Failed", undefined);
    await journal.close();
    github.hookDeliveries.push(
      attempt(199, "e2e-redeliver-expired", 30, 502),
      attempt(201, "e2e-redeliver-missed", 2, 502),
      attempt(202, "e2e-redeliver-accepted", 1.9, 502),
      attempt(203, "e2e-redeliver-fine", 1.8, 200),
      attempt(204, "e2e-redeliver-doomed", 1.7, 400),
      attempt(205, "e2e-redeliver-doomed", 1.6, 400, true),
    );
    const env = await standInServerEnv(github.host, { TALOS_DATA_DIR: dataDir, LOG_LEVEL: "info" });

    const server = await start(env);
    await eventually(() => logLines(server, SUMMARY).length === 1, "the redelivery run");

    expect(redeliveries()).toEqual(["/app/hook/deliveries/201/attempts"]);
    expect(logLines(server, SUMMARY)[0]).toMatchObject({
      seen: 5,
      deliveries: 4,
      redelivered: 1,
      skipped: { delivered: 1, redeliveredBefore: 1, accepted: 1, left: 0, refused: 0 },
    });
    // Asked for once the server listened: GitHub's redelivery has somewhere to go.
    const listeningAt = Number(
      server
        .output()
        .split("\n")
        .filter((line) => line.includes('"msg":"Listening on http://'))
        .map((line) => (JSON.parse(line) as { time: number }).time)[0],
    );
    const listedAt = github.requests.find((r) => r.path === "/app/hook/deliveries")?.at ?? 0;
    expect(listeningAt).toBeGreaterThan(0);
    expect(listedAt).toBeGreaterThanOrEqual(listeningAt);

    // GitHub redelivers it: the command Talos missed is answered.
    const help = loadFixture("issue_comment.created.help.json");
    const res = await sendWebhook(
      server.url,
      { id: "e2e-redeliver-missed", event: "issue_comment", payload: help },
      { secret: TEST_WEBHOOK_SECRET },
    );
    expect(res.status).toBe(200);
    const thread = () => github.comments.get(`${REPO}#1`) ?? [];
    await eventually(() => thread().length === 1, "the reply to the redelivered command");
    expect(thread()[0]?.body).toMatch(/<!-- talos:reply:492700400 -->$/);
    github.hookDeliveries.push(attempt(206, "e2e-redeliver-missed", 0, 200, true));

    // The next start asks for nothing more.
    await server.kill("SIGTERM");
    // Fresh ports: another test file may have bound the old ones meanwhile.
    const again = await start({
      ...env,
      PORT: String(await getFreePort()),
      TALOS_METRICS_PORT: String(await getFreePort()),
    });
    await eventually(() => logLines(again, SUMMARY).length === 1, "the second redelivery run");
    expect(redeliveries()).toEqual(["/app/hook/deliveries/201/attempts"]);
    expect(logLines(again, SUMMARY)[0]).toMatchObject({ redelivered: 0 });
    expect(createRestDescription().checkAll(github.requests)).toEqual([]);
  }, 120_000);

  it("works on with a warning when GitHub will not list the deliveries", async () => {
    github.failNext({ method: "GET", path: /^\/app\/hook\/deliveries$/, status: 404 });
    const before = redeliveries().length;
    const server = await start(await standInServerEnv(github.host, { LOG_LEVEL: "info" }));

    await eventually(
      () =>
        logLines(server, "cannot list the app's webhook deliveries; none redelivered").length > 0,
      "the warning",
    );
    expect(logLines(server, "cannot list the app's webhook deliveries; none redelivered")).toEqual([
      expect.objectContaining({ level: 40, status: 404 }),
    ]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(redeliveries()).toHaveLength(before);
  }, 60_000);

  it("asks for nothing with TALOS_REDELIVER_HOURS=0", async () => {
    const listed = github.count("GET", "/app/hook/deliveries");
    const server = await start(
      await standInServerEnv(github.host, { LOG_LEVEL: "debug", TALOS_REDELIVER_HOURS: "0" }),
    );
    // A delivery runs to its end after start: a redelivery run would have listed by then.
    const res = await sendWebhook(
      server.url,
      {
        id: "e2e-redeliver-off",
        event: "issue_comment",
        payload: loadFixture("issue_comment.created.bot.json"),
      },
      { secret: TEST_WEBHOOK_SECRET },
    );
    expect(res.status).toBe(200);
    await eventually(
      () => server.output().includes("TALOS_REDELIVER_HOURS is 0"),
      "the debug line saying the run is off",
    );
    expect(github.count("GET", "/app/hook/deliveries")).toBe(listed);
  }, 60_000);

  it("stops npm start with exit code 2 and one line naming TALOS_REDELIVER_HOURS past 72", () => {
    const result = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
      cwd: makeWorkDir(),
      env: {
        PATH: process.env.PATH ?? "",
        TALOS_DATA_DIR: makeDataDir(),
        TALOS_REDELIVER_HOURS: "96",
      },
      encoding: "utf8",
      // Were the value taken, the server would start (its setup page) and never exit.
      timeout: 20_000,
    });
    expect(result.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^talos: Invalid environment: TALOS_REDELIVER_HOURS: .*72/),
    ]);
    expect(result.status).toBe(2);
  });
});

import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { Probot, ProbotOctokit } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import {
  createRedeliverySweeps,
  SWEEP_DELAY_MS,
  SWEEP_INTERVAL_MS,
} from "../../src/github/create-redelivery-sweeps.js";
import { createWebhookBodyBudget } from "../../src/http/create-webhook-body-budget.js";
import { limitWebhookBodies } from "../../src/http/limit-webhook-bodies.js";
import { eventually } from "../helpers/eventually.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { githubScope } from "../helpers/github-mocks.js";
import { appClient, attempt, LIST } from "../helpers/hook-deliveries.js";
import {
  captureLogs,
  TEST_APP_ID,
  TEST_PRIVATE_KEY,
  TEST_WEBHOOK_SECRET,
} from "../helpers/test-app.js";

const iso = (ms: number) => new Date(ms).toISOString();

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

describe("redelivery sweeps while running", () => {
  it("asks again for a delivery refused just before a sweep starts (GitHub lists an attempt a few seconds after it, well within SWEEP_DELAY_MS)", async () => {
    // The sweeps' own premise: GitHub lists a refused attempt some time after the refusal, which
    // SWEEP_DELAY_MS waits out. Here GitHub lists one 5 s after it was made.
    const LAG_MS = 5_000;
    const clock = createManualClock();
    const logs = await captureLogs("info");
    const stop = new AbortController();
    const sweeps = createRedeliverySweeps({
      auth: appClient,
      queue: { has: () => Promise.resolve(false) },
      hours: 24,
      ledgerRetentionHours: 72,
      clock,
      log: logs.log,
      signal: stop.signal,
    });
    const recorded: ReturnType<typeof attempt>[] = [];
    const posted: string[] = [];
    const scope = githubScope();
    scope
      .get(LIST)
      .query(true)
      .reply(() => [
        200,
        recorded
          .filter((a) => clock.now() - Date.parse(a.delivered_at) >= LAG_MS)
          .sort((a, b) => b.id - a.id),
      ])
      .persist();
    scope
      .post(/\/app\/hook\/deliveries\/\d+\/attempts$/)
      .reply((uri) => {
        posted.push(uri);
        return [202, {}];
      })
      .persist();

    await sweeps.start();
    await clock.advance(SWEEP_INTERVAL_MS);

    // A burst of load: the first delivery refused, and the last just before the sweep starts.
    recorded.push(attempt(1, "guid-first", iso(clock.now()), { statusCode: 503 }));
    sweeps.refused();
    await clock.advance(SWEEP_DELAY_MS - 1);
    recorded.push(attempt(2, "guid-last", iso(clock.now()), { statusCode: 503 }));
    sweeps.refused();
    await clock.advance(1);
    await eventually(() => posted.length === 1, "the first sweep asked", 10_000);
    expect(posted).toEqual([`${LIST}/1/attempts`]);

    // No other refusal: the last one is still asked for, by the next sweep.
    await clock.advance(SWEEP_INTERVAL_MS);
    await sweeps.idle();
    stop.abort();
    scope.persist(false);
    expect(posted).toContain(`${LIST}/2/attempts`);
  });

  it("tells a delivery whose handler failed (500) after GitHub hung up at its 10 s limit as refused: GitHub recorded it failed", async () => {
    let refusals = 0;
    const logs = await captureLogs("warn");
    const probot = new Probot({
      appId: TEST_APP_ID,
      privateKey: TEST_PRIVATE_KEY,
      secret: TEST_WEBHOOK_SECRET,
      log: logs.log,
      Octokit: ProbotOctokit.defaults((o: Record<string, any>) => ({
        ...o,
        retry: { enabled: false },
        throttle: { ...o.throttle, enabled: false },
      })),
    });
    limitWebhookBodies(probot, {
      maxBytes: 1024 * 1024,
      budget: createWebhookBodyBudget(1024 * 1024),
      refused: () => refusals++,
    });
    const middleware = await probot.getNodeMiddleware();
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handling = false;
    // The journal's write is slow (Redis retrying), then fails: the middleware answers 500.
    probot.on("issues.opened", async () => {
      handling = true;
      await gate;
      throw new Error("the journal could not write the job");
    });
    let served: Promise<boolean> | undefined;
    let clientGone = false;
    let answered = "";
    const server = createServer((req, res) => {
      req.socket.once("close", () => (clientGone = true));
      served = middleware(req, res).then(
        (s) => ((answered = `${res.headersSent} ${res.statusCode}`), s),
      );
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;

    // GitHub sends the whole delivery...
    const body = JSON.stringify({ action: "opened", padding: "x".repeat(2_000) });
    const signature = createHmac("sha256", TEST_WEBHOOK_SECRET).update(body).digest("hex");
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => undefined);
    sockets.push(socket);
    socket.write(
      "POST /api/github/webhooks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
        "x-github-event: issues\r\nx-github-delivery: slow-then-failed\r\n" +
        `x-hub-signature-256: sha256=${signature}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n` +
        body,
    );
    await eventually(() => handling, "the handler started", 10_000);
    // ...and gives up at 10 s, recording the delivery failed.
    socket.destroy();
    await eventually(() => clientGone, "the server saw the connection close", 10_000);
    release();
    await served;

    // The middleware did answer it 500 (to a connection already gone).
    expect(answered).toBe("true 500");
    expect(refusals).toBe(1);
  });
});

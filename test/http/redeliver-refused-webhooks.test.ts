import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { Probot, ProbotOctokit } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import {
  createRedeliverySweeps,
  SWEEP_INTERVAL_MS,
} from "../../src/github/create-redelivery-sweeps.js";
import { createWebhookBodyBudget } from "../../src/http/create-webhook-body-budget.js";
import { limitWebhookBodies, type WebhookLimits } from "../../src/http/limit-webhook-bodies.js";
import { eventually } from "../helpers/eventually.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { githubScope } from "../helpers/github-mocks.js";
import { attempt, LIST, mockPage, mockRedeliveries } from "../helpers/hook-deliveries.js";
import {
  captureLogs,
  TEST_APP_ID,
  TEST_PRIVATE_KEY,
  TEST_WEBHOOK_SECRET,
} from "../helpers/test-app.js";

const MB = 1024 * 1024;
const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** Probot's webhook route as the server builds it (limitWebhookBodies), on a port of its own. */
async function serveWebhooks(limits: WebhookLimits, app: (probot: Probot) => void) {
  const logs = await captureLogs("info");
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
  limitWebhookBodies(probot, limits);
  const middleware = await probot.getNodeMiddleware();
  app(probot);
  const server = createServer((req, res) => {
    void middleware(req, res).then((served) => {
      if (!served) res.writeHead(404).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { probot, logs, port: (server.address() as AddressInfo).port };
}

/** A signed `issues.opened` delivery of about `bytes` (too many to come with its headers). */
function deliver(port: number, id: string, bytes = MB / 2) {
  const body = JSON.stringify({ action: "opened", padding: "x".repeat(bytes) });
  return fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "issues",
      "x-github-delivery": id,
      "x-hub-signature-256": `sha256=${createHmac("sha256", TEST_WEBHOOK_SECRET).update(body).digest("hex")}`,
    },
    body,
  });
}

/** An upload whose body never ends: it holds its declared length of the budget. */
function stalledUpload(port: number, bytes: number): Socket {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  sockets.push(socket);
  socket.write(
    "POST /api/github/webhooks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
      "x-github-event: issues\r\nx-github-delivery: stalled\r\n" +
      `x-hub-signature-256: sha256=${"0".repeat(64)}\r\ncontent-length: ${bytes}\r\n\r\n`,
  );
  socket.write(Buffer.alloc(1024, 0x61));
  return socket;
}

describe("a delivery Talos refuses while it runs", () => {
  it("answered 503 for TALOS_WEBHOOK_INFLIGHT_MB, is asked for again without a restart, and is accepted when GitHub redelivers it", async () => {
    const clock = createManualClock();
    const stop = new AbortController();
    const budget = createWebhookBodyBudget(MB);
    const received: string[] = [];
    const { probot, logs, port } = await serveWebhooks(
      { maxBytes: MB, budget, refused: () => sweeps.refused() },
      (app) => app.on("issues.opened", ({ id }) => void received.push(id)),
    );
    const sweeps = createRedeliverySweeps({
      auth: () => probot.auth(),
      queue: { has: (id) => Promise.resolve(received.includes(id)) },
      hours: 24,
      ledgerRetentionHours: 72,
      clock,
      log: logs.log,
      signal: stop.signal,
    });
    const scope = githubScope();
    mockPage(scope, []);
    await sweeps.start();

    // Bodies being received fill the budget: the delivery is refused, and GitHub records it so.
    const stalled = stalledUpload(port, MB);
    await eventually(() => budget.used() === MB, "the stalled upload held", 5_000);
    const refused = await deliver(port, "refused-while-running");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("60");
    stalled.destroy();
    await eventually(() => budget.used() === 0, "the stalled upload given back", 5_000);

    mockPage(scope, [
      attempt(6, "refused-while-running", new Date(clock.now()).toISOString(), {
        statusCode: 503,
      }),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [6], posted);
    await clock.advance(SWEEP_INTERVAL_MS);
    await sweeps.idle();
    expect(posted).toEqual([`${LIST}/6/attempts`]);

    // GitHub redelivers it: now accepted.
    expect((await deliver(port, "refused-while-running")).status).toBe(200);
    expect(received).toEqual(["refused-while-running"]);
    // A delivery refused for good (a bad signature: 400) is no reason to sweep.
    const unsigned = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "issues",
        "x-github-delivery": "unsigned",
        "x-hub-signature-256": `sha256=${"0".repeat(64)}`,
      },
      body: "{}",
    });
    expect(unsigned.status).toBe(400);
    // Nothing more to sweep: no refusal since.
    await sweeps.idle();
    expect(scope.pendingMocks()).toEqual([]);
    stop.abort();
  });

  it("answered 500 by its handler (a job not journaled: the queue full), is told as a refusal; one answered 200 is not", async () => {
    let refusals = 0;
    const { port } = await serveWebhooks(
      { maxBytes: MB, budget: createWebhookBodyBudget(MB), refused: () => refusals++ },
      (app) =>
        app.on("issues.opened", ({ id }) => {
          if (id === "queue-full") throw new Error("delivery refused (queue-full)");
        }),
    );

    expect((await deliver(port, "accepted", 1_000)).status).toBe(200);
    expect(refusals).toBe(0);
    expect((await deliver(port, "queue-full", 1_000)).status).toBe(500);
    expect(refusals).toBe(1);
  });
});

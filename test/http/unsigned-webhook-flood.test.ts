import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import type { Logger } from "pino";
import { Probot } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import { createWebhookBodyBudget } from "../../src/http/create-webhook-body-budget.js";
import {
  limitWebhookBodies,
  WEBHOOK_MAX_BYTES,
  type WebhookLimits,
} from "../../src/http/limit-webhook-bodies.js";
import { eventually } from "../helpers/eventually.js";
import { ROOT } from "../helpers/server-process.js";
import { captureLogs, TEST_PRIVATE_KEY, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** Runs the child server with one unsigned delivery of `bytes`; its exit and what it said. */
function flood(bytes: number) {
  const child = spawnSync(
    process.execPath,
    ["--import", "tsx", join(ROOT, "test/helpers/unsigned-flood-child.ts"), String(bytes)],
    { cwd: ROOT, encoding: "utf8", timeout: 120_000 },
  );
  return {
    status: child.status,
    signal: child.signal,
    said: child.stdout.trim(),
    fatal: /Fatal JavaScript invalid size error/.test(child.stderr),
  };
}

describe("one unsigned delivery under the 25 MB cap (anyone who can reach the public port)", () => {
  it("does not end the server: its body, logged whole, is not scrubbed into a V8 fatal error", () => {
    // Under the cap, so the limit lets it through to the signature check.
    const bytes = WEBHOOK_MAX_BYTES - 1024;
    const result = flood(bytes);
    expect(result.fatal).toBe(false);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.said || "{}")).toMatchObject({ status: 400 });
  }, 180_000);
});

const MB = 1024 * 1024;

/** The Probot webhook route as limitWebhookBodies builds it, on a server of its own. */
async function serveWebhooks(limits: WebhookLimits, log: Logger) {
  const probot = new Probot({
    appId: 1,
    privateKey: TEST_PRIVATE_KEY,
    secret: TEST_WEBHOOK_SECRET,
    log,
  });
  limitWebhookBodies(probot, limits);
  const middleware = await probot.getNodeMiddleware();
  const server = createServer((req, res) => {
    void middleware(req, res).then((served) => {
      if (!served) res.writeHead(404).end();
    });
  });
  servers.push(server);
  const accepted: Socket[] = [];
  server.on("connection", (socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  /** What Node has taken from the kernel into the process, all connections together. */
  const bytesRead = () => accepted.reduce((sum, socket) => sum + socket.bytesRead, 0);
  return { port, bytesRead };
}

interface Upload {
  socket: Socket;
  /** The answer's head, once it has come. */
  answer(): { status: number; retryAfter: string | undefined } | undefined;
}

/**
 * A delivery with a bad signature whose body is sent up to `bytes` and then stalls: the last byte
 * (with a Content-Length) or the last chunk never comes.
 */
function stalledUpload(port: number, bytes: number, chunked: boolean): Upload {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  sockets.push(socket);
  let head = "";
  socket.on("data", (data: Buffer) => (head += data.toString("latin1")));
  const length = chunked ? "transfer-encoding: chunked" : `content-length: ${bytes + 1}`;
  socket.write(
    "POST /api/github/webhooks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
      "x-github-event: issues\r\nx-github-delivery: stalled\r\n" +
      `x-hub-signature-256: sha256=${"0".repeat(64)}\r\n${length}\r\n\r\n`,
  );
  const body = Buffer.alloc(bytes, 0x61);
  socket.write(chunked ? Buffer.concat([Buffer.from(`${bytes.toString(16)}\r\n`), body]) : body);
  return {
    socket,
    answer: () => {
      if (!head.includes("\r\n\r\n")) return undefined;
      const retryAfter = /\r\nretry-after: ([^\r]*)/i.exec(head)?.[1];
      return { status: Number(head.slice(9, 12)), retryAfter };
    },
  };
}

/** A signed delivery of about `bytes`, sent with its Content-Length. */
function signedDelivery(port: number, bytes: number): Promise<Response> {
  const body = JSON.stringify({ action: "opened", padding: "x".repeat(bytes) });
  return fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "issues",
      "x-github-delivery": `signed-${bytes}`,
      "x-hub-signature-256": `sha256=${createHmac("sha256", TEST_WEBHOOK_SECRET).update(body).digest("hex")}`,
    },
    body,
  });
}

describe("unsigned webhook bodies received at the same time (anyone on the public port)", () => {
  it("are held within one budget: past it each is answered 503 with retry-after, and an abort gives its part back", async () => {
    // Scaled down so the test stays light: 1 MB bodies (GitHub's cap is 25) and a budget of 4
    // of them, as TALOS_WEBHOOK_INFLIGHT_MB's default (100) is of 25 MB.
    const budget = createWebhookBodyBudget(4 * MB);
    const logs = await captureLogs("warn");
    const { port, bytesRead } = await serveWebhooks({ maxBytes: MB, budget }, logs.log);

    // 24 uploads of 0.9 MB (each within the limit), chunked and with a Content-Length in turn,
    // none ever finishing: 21.6 MB, all read and held until Node's requestTimeout (300 s) before.
    const each = Math.floor(0.9 * MB);
    const uploads: Upload[] = [];
    for (let i = 0; i < 24; i++) {
      const held = budget.used();
      const upload = stalledUpload(port, each, i % 2 === 0);
      uploads.push(upload);
      // The next once this one is refused, or held whole.
      await eventually(
        () => upload.answer() !== undefined || budget.used() >= held + each,
        `upload ${i} refused or held whole`,
        5_000,
      );
    }

    // Four fit (chunked ones hold what came, the others their declared length); the rest were
    // answered 503, those with a Content-Length before their body was read.
    expect(uploads.map((u) => u.answer())).toEqual([
      ...[undefined, undefined, undefined, undefined],
      ...Array.from({ length: 20 }, () => ({ status: 503, retryAfter: "60" })),
    ]);
    expect(budget.used()).toBe(4 * each + 2);
    // Read from the connections (each body whole before): the four held; of each refused chunked
    // one what came until it no longer fitted, the budget's room, then dropped; and of every
    // refused one what a socket had read before the answer stopped it (64 KB here).
    const room = budget.maxBytes - budget.used();
    expect(bytesRead()).toBeLessThan(budget.used() + 10 * room + 20 * 128 * 1024);
    const refusals = logs
      .lines()
      .filter((l) => l.msg?.toString().startsWith("webhook delivery refused"));
    expect(refusals).toHaveLength(20);
    expect(refusals[0]).toMatchObject({ level: 40, delivery: "stalled", budgetBytes: 4 * MB });
    expect(logs.text()).not.toContain("aaaa");

    // A real delivery of 0.5 MB does not fit either, until the stalled uploads are aborted.
    expect((await signedDelivery(port, MB / 2)).status).toBe(503);
    for (const upload of uploads.slice(0, 4)) upload.socket.destroy();
    await eventually(() => budget.used() === 0, "the aborted uploads given back", 5_000);
    const accepted = await signedDelivery(port, MB / 2);
    expect(accepted.status).toBe(200);
    // Each request gave back exactly what it held: none twice.
    expect(budget.used()).toBe(0);
  });

  it("are cut off once they have taken too long to come, and give their part back", async () => {
    // GitHub gives up at 10 s; the route cuts a body off at 30 s, here 300 ms.
    const budget = createWebhookBodyBudget(4 * MB);
    const logs = await captureLogs("info");
    const { port } = await serveWebhooks({ maxBytes: MB, budget, receiveTimeoutMs: 300 }, logs.log);
    const uploads = [stalledUpload(port, 1000, true), stalledUpload(port, 1000, false)];
    await eventually(() => budget.used() === 2 * 1000 + 1, "both uploads held", 5_000);
    await Promise.all(
      uploads.map((u) => new Promise((resolve) => u.socket.once("close", resolve))),
    );
    expect(budget.used()).toBe(0);
    // The middleware reading the Content-Length one was told, so it holds nothing either.
    await eventually(() => logs.text().includes("webhook body not received within 300 ms"));
  });
});

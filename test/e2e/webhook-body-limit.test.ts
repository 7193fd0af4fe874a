import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEBHOOK_MAX_BYTES } from "../../src/http/limit-webhook-bodies.js";
import { eventually } from "../helpers/eventually.js";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import {
  buildDist,
  getFreePort,
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import { loadFixture, makeDataDir, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

const BIG = 30_000_000;
/** Chunked, the server reads 25 MB before it refuses: a body it could never take whole. */
const ENDLESS = 100_000_000;
const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MiB`;

/** Polls `check`; the test's own timeout bounds the wait. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** The server process's resident set, from /proc (Linux). */
function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  return Number(/(\d+)/.exec(line ?? "")?.[1]) * 1024;
}

/** Bytes the server process has read, sockets included (Linux `rchar`). */
function readBy(pid: number): number {
  return Number(/rchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
}

interface Sent {
  status: number;
  body: string;
  /** Bytes of body the client had written when the answer came. */
  written: number;
}

/**
 * POSTs a webhook of `size` bytes to `path` over a plain socket (no HTTP client, so nothing in
 * the test process buffers or intercepts it), with a Content-Length or chunked, without holding
 * the body in memory: one 64 KB piece is written again and again, as fast as the server reads,
 * until its answer comes. `body` sends that text instead, signed, or signed as `signed` says.
 */
function post(
  url: string,
  path: string,
  {
    size,
    chunked,
    body,
    signed = body,
  }: { size: number; chunked: boolean; body?: string; signed?: string | undefined },
): Promise<Sent> {
  const { hostname, port } = new URL(url);
  const content = body === undefined ? undefined : Buffer.from(body);
  const length = content?.length ?? size;
  const signature = `sha256=${signed === undefined ? "0".repeat(64) : createHmac("sha256", TEST_WEBHOOK_SECRET).update(signed).digest("hex")}`;
  const head = [
    `POST ${path} HTTP/1.1`,
    `host: ${hostname}:${port}`,
    "content-type: application/json",
    "x-github-event: issue_comment",
    `x-github-delivery: big-${path}-${chunked}-${length}`,
    `x-hub-signature-256: ${signature}`,
    chunked ? "transfer-encoding: chunked" : `content-length: ${length}`,
    "",
    "",
  ].join("\r\n");
  const frame = (data: Buffer) =>
    chunked ? [Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from("\r\n")] : [data];
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let written = 0;
    let answer: Sent | undefined;
    let received = Buffer.alloc(0);
    socket.on("data", (data: Buffer) => {
      received = Buffer.concat([received, data]);
      const text = received.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return;
      const bodyLength = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (received.length < end + 4 + bodyLength) return;
      answer = {
        status: Number(text.slice(9, 12)),
        body: received.subarray(end + 4, end + 4 + bodyLength).toString(),
        written,
      };
      resolve(answer);
      socket.destroy();
    });
    socket.on("error", (error) => {
      // The server may close the connection once it has answered.
      if (!answer) reject(error);
    });
    socket.on("close", () => {
      if (!answer) reject(new Error(`closed with no answer after ${written} bytes`));
    });
    const send = (parts: Buffer[]) => parts.reduce((ok, part) => socket.write(part) && ok, true);
    socket.write(head);
    if (content) {
      // A real delivery, in two pieces (two chunks when chunked).
      send([...frame(content.subarray(0, 100)), ...frame(content.subarray(100))]);
      if (chunked) socket.write("0\r\n\r\n");
      return;
    }
    const piece = Buffer.alloc(64 * 1024, "a");
    const pump = () => {
      while (!answer && !socket.destroyed && written < size) {
        const n = Math.min(piece.length, size - written);
        written += n;
        if (!send(frame(piece.subarray(0, n)))) return void socket.once("drain", pump);
      }
      if (written >= size && chunked && !socket.destroyed) socket.write("0\r\n\r\n");
    };
    pump();
  });
}

/**
 * A delivery that says it is 25 MB long, sends a few bytes of it, and stalls: the server holds
 * its length of the budget of bodies being received until it is aborted.
 */
function stall(url: string, path: string): Socket {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on("error", () => undefined);
  socket.write(
    `POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\n` +
      "x-github-event: issue_comment\r\nx-github-delivery: stalled\r\n" +
      `x-hub-signature-256: sha256=${"0".repeat(64)}\r\ncontent-length: ${WEBHOOK_MAX_BYTES}\r\n\r\n{"a"`,
  );
  return socket;
}

describe("webhook bodies over 25 MB", () => {
  let github: GitHubStandIn;
  let server: ServerProcess;

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    // No look for missed deliveries at start: its allocations would land in the RSS measured.
    server = await startServerProcess(
      { ...(await standInServerEnv(github.host)), TALOS_REDELIVER_HOURS: "0" },
      { cwd: makeWorkDir() },
    );
  });

  afterAll(async () => {
    await server?.kill();
    await github?.close();
  });

  const pid = () => server.child.pid!;

  it("are answered 413 on both routes, before the body is read, and the server does not grow", async () => {
    // Warm both routes up, so that what follows measures bodies, not code loaded for the first time.
    for (const path of ["/api/github/webhooks", "/"])
      expect((await post(server.url, path, { size: BIG, chunked: false })).status).toBe(413);
    const before = rssOf(pid());

    const results: Array<Sent & { read: number }> = [];
    for (let i = 0; i < 3; i++) {
      for (const path of ["/api/github/webhooks", "/"]) {
        const read = readBy(pid());
        const sent = await post(server.url, path, { size: BIG, chunked: false });
        results.push({ ...sent, read: readBy(pid()) - read });
      }
    }

    const growth = rssOf(pid()) - before;
    console.info(
      `413 by Content-Length, 6 × 30 MB: server RSS ${mb(before)} → +${mb(growth)}; the server read at most ${mb(Math.max(...results.map((r) => r.read)))} of each`,
    );
    for (const result of results) {
      expect(result.status).toBe(413);
      expect(JSON.parse(result.body)).toEqual({
        error: `Payload Too Large: webhook bodies are at most ${WEBHOOK_MAX_BYTES} bytes`,
      });
      // The answer comes from the headers alone: the body is not read.
      expect(result.read).toBeLessThan(1 * MB);
    }
    expect(growth).toBeLessThan(10 * MB);
    expect(github.requests).toEqual([]);
  });

  it("stop being read at 25 MB when chunked, and are answered 413 on both routes", async () => {
    const before = rssOf(pid());
    const results: Array<Sent & { read: number }> = [];
    for (const path of ["/api/github/webhooks", "/"]) {
      const read = readBy(pid());
      const sent = await post(server.url, path, { size: ENDLESS, chunked: true });
      results.push({ ...sent, read: readBy(pid()) - read });
    }
    // What the server holds once it has let go of the chunks it read: when its collector runs is
    // its own affair (on a loaded machine, later), and the chunks of both requests were still
    // counted, so the RSS is read until it is under the bound, for 3 s at most.
    const bound = WEBHOOK_MAX_BYTES + 10 * MB;
    let growth = rssOf(pid()) - before;
    for (let i = 0; i < 30 && growth >= bound; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      growth = Math.min(growth, rssOf(pid()) - before);
    }
    console.info(
      `413 of chunked bodies, 2 × 100 MB: server RSS ${mb(before)} → +${mb(growth)}; the server read ${results.map((r) => mb(r.read)).join(" and ")}`,
    );
    expect(results.map((r) => r.status)).toEqual([413, 413]);
    for (const result of results) {
      // 25 MB, and no more.
      expect(result.read).toBeGreaterThan(WEBHOOK_MAX_BYTES);
      expect(result.read).toBeLessThan(WEBHOOK_MAX_BYTES + 1 * MB);
      expect(result.written).toBeLessThan(ENDLESS / 2);
    }
    // At most the limit was held, once (the two requests came one after the other).
    expect(growth).toBeLessThan(bound);
    expect(github.requests).toEqual([]);
  });

  it("still takes an ordinary signed webhook, with a Content-Length or chunked, on both routes", async () => {
    const payload = loadFixture<{ comment: { id: number; body: string } }>(
      "issue_comment.created.help.json",
    );
    const signed = await sendWebhook(
      server.url,
      { id: "limit-help", event: "issue_comment", payload },
      { secret: TEST_WEBHOOK_SECRET },
    );
    expect(signed.status).toBe(200);
    const replies = () => github.comments.get("Codertocat/Hello-World#1") ?? [];
    // Deliveries are journaled, answered, then run as jobs: the reply follows the 200.
    await until(() => replies().length === 1);
    expect(replies()[0]?.body).toMatch(/Talos commands in this repository/);

    // Chunked: the body is read by the limit and handed to Probot whole.
    payload.comment.id = 4321;
    payload.comment.body = "/talos config";
    const body = JSON.stringify(payload);
    for (const path of ["/", "/api/github/webhooks"]) {
      const sent = await post(server.url, path, { size: body.length, chunked: true, body });
      expect(sent.status).toBe(200);
    }
    // The same comment twice: one reply, edited the second time.
    const edits = (id: number | undefined) =>
      github.writes().filter((w) => w.method === "PATCH" && w.path.endsWith(`/comments/${id}`));
    const config = () => replies().filter((c) => c.body.endsWith("<!-- talos:reply:4321 -->"));
    await until(() => edits(config()[0]?.id).length === 1);
    expect(config()).toHaveLength(1);
    expect(config()[0]?.body).toContain("talos.yml");

    // Other routes are untouched.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    // And its signature is still checked, over the bytes that came.
    const forged = body.replace("/talos config", "/talos help!");
    const bad = await post(server.url, "/", { size: 0, chunked: true, body: forged, signed: body });
    expect(bad.status).toBe(400);
  });

  it("are received 100 MB at a time at most (TALOS_WEBHOOK_INFLIGHT_MB), both routes together: past it, 503 with retry-after until one is aborted", async () => {
    // Four deliveries of 25 MB that never finish hold the whole budget, each its declared length.
    const stalled = ["/", "/", "/api/github/webhooks", "/api/github/webhooks"].map((path) =>
      stall(server.url, path),
    );
    try {
      // An unsigned probe is answered 400 (its signature) while it fits, 503 once nothing does.
      const probeUntil = (status: number) =>
        eventually(async () => {
          const probe = { size: 0, chunked: false, body: "{}", signed: "" };
          return (await post(server.url, "/api/github/webhooks", probe)).status === status;
        }, `an unsigned probe answered ${status}`);
      await probeUntil(503);
      const payload = loadFixture<{ comment: { id: number; body: string } }>(
        "issue_comment.created.help.json",
      );
      payload.comment.id = 5678;
      const delivery = { id: "inflight-help", event: "issue_comment", payload };
      const refused = await sendWebhook(server.url, delivery, { secret: TEST_WEBHOOK_SECRET });
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("60");
      expect(server.output()).toContain("webhook delivery refused");

      // One aborted gives its 25 MB back: the same delivery, redelivered, is taken.
      stalled[0]!.destroy();
      await probeUntil(400);
      const accepted = await sendWebhook(server.url, delivery, { secret: TEST_WEBHOOK_SECRET });
      expect(accepted.status).toBe(200);
    } finally {
      for (const socket of stalled) socket.destroy();
    }
    const replies = () => github.comments.get("Codertocat/Hello-World#1") ?? [];
    await until(() => replies().some((c) => c.body.endsWith("<!-- talos:reply:5678 -->")));
  });
});

describe("webhook bodies over 25 MB in setup mode (no credentials yet)", () => {
  it("are answered 413 too, chunked ones once 25 MB have come: the app is not loaded, Probot's route is; /healthz answers", async () => {
    buildDist();
    const server = await startServerProcess(
      { PORT: String(await getFreePort()), NO_SMEE_SETUP: "true", TALOS_DATA_DIR: makeDataDir() },
      { cwd: makeWorkDir(), readyPath: "/probot" },
    );
    try {
      const pid = server.child.pid!;
      const declared = await post(server.url, "/api/github/webhooks", {
        size: BIG,
        chunked: false,
      });
      const read = readBy(pid);
      const chunked = await post(server.url, "/api/github/webhooks", {
        size: ENDLESS,
        chunked: true,
      });
      expect([declared.status, chunked.status]).toEqual([413, 413]);
      // Read up to the limit, and no more: it was read whole, 4 GB of RSS for 150 MB.
      expect(readBy(pid) - read).toBeLessThan(WEBHOOK_MAX_BYTES + 1 * MB);
      // The setup page's import of an existing app's credentials: Probot read any body whole
      // (100 MB chunked: read to its end, answered 500). One that says its length still goes.
      const beforeImport = readBy(pid);
      const imported = await post(server.url, "/probot/import", { size: ENDLESS, chunked: true });
      expect(imported.status).toBe(413);
      expect(readBy(pid) - beforeImport).toBeLessThan(1 * MB);
      const small = await fetch(`${server.url}/probot/import`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ appId: 1 }),
      });
      expect(small.status).toBe(400);
      expect(await small.text()).toMatch(/appId and\/or pem and\/or webhook_secret missing/);
      // The health check a deployment makes passes while someone registers the app (it was 404).
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: "ok" });
    } finally {
      await server.kill();
    }
  });
});

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Probot } from "probot";
import { afterEach, describe, expect, it } from "vitest";
import { limitWebhookBodies } from "../../src/http/limit-webhook-bodies.js";
import { captureLogs, TEST_PRIVATE_KEY, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

describe("a delivery with a bad signature (anyone on the public port)", () => {
  it("is not logged with its payload: the log does not grow with the unsigned body", async () => {
    const logs = await captureLogs("info");
    const probot = new Probot({
      appId: 1,
      privateKey: TEST_PRIVATE_KEY,
      secret: TEST_WEBHOOK_SECRET,
      log: logs.log,
    });
    limitWebhookBodies(probot);
    const middleware = await probot.getNodeMiddleware();
    const server = createServer((req, res) => {
      void middleware(req, res).then((served) => {
        if (!served) res.writeHead(404).end();
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;

    // 2 MB of an attacker's text, well under the 25 MB cap, signed with nothing.
    const marker = "UNSIGNED-ATTACKER-TEXT-";
    const body = JSON.stringify({ junk: marker + "x".repeat(2 * 1024 * 1024) });
    const response = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "issues",
        "x-github-delivery": "bad-signature-1",
        "x-hub-signature-256": `sha256=${"0".repeat(64)}`,
      },
      body,
    });
    expect(response.status).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 200));

    const text = logs.text();
    // What is logged of a refused unsigned delivery should be a line or two, not its body (here
    // it is the body three times over: Probot's error handler, and the middleware's AggregateError
    // with the inner error inside it).
    const copies = text.split(marker).length - 1;
    expect({ copies, logBytes: text.length }).toEqual({ copies: 0, logBytes: expect.any(Number) });
    expect(text.length).toBeLessThan(64 * 1024);
  });
});

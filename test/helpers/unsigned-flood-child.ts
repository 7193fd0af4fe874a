/**
 * A Probot server as `npm start` builds its webhook route: Talos's logger (JSON, scrubbed),
 * limitWebhookBodies, Probot's own webhooks and error handler. It sends itself one delivery with
 * a bad signature whose body is `body` bytes of "a,", then says that it survived and how long the
 * event loop stalled (for a reader; the test asserts no time).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createWriteStream } from "node:fs";
import { Probot } from "probot";
import { createLogger } from "../../src/create-logger.js";
import { limitWebhookBodies } from "../../src/http/limit-webhook-bodies.js";
import { TEST_PRIVATE_KEY, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

const size = Number(process.argv[2]);
const log = await createLogger({
  level: "info",
  format: "json",
  secrets: [TEST_WEBHOOK_SECRET],
  destination: createWriteStream("/dev/null"),
});
const probot = new Probot({
  appId: 1,
  privateKey: TEST_PRIVATE_KEY,
  secret: TEST_WEBHOOK_SECRET,
  log,
});
limitWebhookBodies(probot);
const middleware = await probot.getNodeMiddleware();
const server = createServer((req, res) => {
  void middleware(req, res).then((served) => {
    if (!served) res.writeHead(404).end();
  });
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

let longest = 0;
let last = performance.now();
const ticker = setInterval(() => {
  const now = performance.now();
  longest = Math.max(longest, now - last);
  last = now;
}, 10);

const response = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
  method: "POST",
  headers: {
    "content-type": "application/json",
    "x-github-event": "issues",
    "x-github-delivery": "flood-1",
    "x-hub-signature-256": `sha256=${"0".repeat(64)}`,
  },
  body: "a,".repeat(Math.floor(size / 2)),
});
// The log lines are written (and scrubbed) as the error is handled: give them time.
await new Promise((resolve) => setTimeout(resolve, 3_000));
clearInterval(ticker);
process.stdout.write(
  JSON.stringify({ status: response.status, stallMs: Math.round(longest) }) + "\n",
);
server.close();
process.exit(0);

import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { Probot, Server } from "probot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHealthRoute } from "../../src/http/create-health-route.js";
import { createMetricsRoute } from "../../src/metrics/create-metrics-route.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { TEST_PRIVATE_KEY, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

const TOKEN = "metrics-token-0123456789abcdef";

/** One raw HTTP/1.1 request, so that request targets fetch would normalize go as written. */
function raw(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.on("data", (chunk) => (data += chunk.toString("latin1")));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
    socket.write(`${head}\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}

// The main port as Probot serves it: its own handlers first, Talos's added ones, then 404.
describe("/metrics on the main port behind TALOS_METRICS_TOKEN: no request-target variant gets past it", () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    const metrics = createMetrics();
    metrics.llmTokens.inc({ installation: "1", kind: "ask", direction: "input" }, 5);
    server = new Server({
      Probot: Probot.defaults({
        appId: 1,
        privateKey: TEST_PRIVATE_KEY,
        secret: TEST_WEBHOOK_SECRET,
      }),
      port: 0,
      host: "127.0.0.1",
      log: (await import("pino")).pino({ level: "silent" }) as never,
    });
    server.addHandler(createHealthRoute({ version: "1.2.3", stopping: () => false }));
    server.addHandler(createMetricsRoute(metrics.registry, { token: TOKEN }));
    const http = await server.start();
    port = (http.address() as AddressInfo).port;
  });
  afterAll(async () => server.stop());

  it.each([
    "GET /metrics HTTP/1.1",
    "GET /metrics/ HTTP/1.1",
    "GET //metrics HTTP/1.1",
    "GET /METRICS HTTP/1.1",
    "GET /metrics?x HTTP/1.1",
    "GET /metrics?token=x HTTP/1.1",
    "GET /metrics#x HTTP/1.1",
    "GET /%6detrics HTTP/1.1",
    "GET /./metrics HTTP/1.1",
    "GET /x/../metrics HTTP/1.1",
    "GET http://x/metrics HTTP/1.1",
    "HEAD /metrics HTTP/1.1",
    "GET /metrics HTTP/1.0",
    "GET /metrics HTTP/1.1\r\nAuthorization: Bearer\u0020",
    "GET /metrics HTTP/1.1\r\nAuthorization: Bearer metrics-token-0123456789abcde",
    "GET /metrics HTTP/1.1\r\nAuthorization: Bearer metrics-token-0123456789abcdef x",
    "GET /metrics HTTP/1.1\r\nAuthorization: Basic bWV0cmljcy10b2tlbi0wMTIzNDU2Nzg5YWJjZGVm",
  ])("%s without the right token shows no metric", async (head) => {
    const answer = await raw(port, head);
    expect(answer).not.toContain("talos_llm_tokens_total");
    expect(answer).not.toContain("process_cpu");
  });

  it("serves them with the token", async () => {
    const answer = await raw(port, `GET /metrics HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}`);
    expect(answer).toContain("talos_llm_tokens_total");
  });

  it("/healthz says status and version only", async () => {
    const answer = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await answer.text()).toBe('{"status":"ok","version":"1.2.3"}');
  });
});

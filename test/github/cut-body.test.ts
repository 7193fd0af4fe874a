import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createOctokitClass } from "../../src/github/create-octokit.js";
import type { Octokit } from "../../src/github/octokit.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { RateLimitTracker } from "../../src/metrics/rate-limit-plugin.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs, createTestApp } from "../helpers/test-app.js";

const REPO_BODY = JSON.stringify({
  full_name: "Codertocat/Hello-World",
  default_branch: "main",
  description: "x".repeat(2_000),
});
const JSON_TYPE = { "content-type": "application/json; charset=utf-8" };

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A local GitHub on 127.0.0.1 answering with `handle`; its base URL. */
async function serve(
  handle: (method: string, etag: string | undefined, res: ServerResponse) => void,
) {
  server = createServer((req, res) =>
    handle(req.method ?? "GET", req.headers["if-none-match"], res),
  );
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("a GitHub answer whose body does not arrive whole", () => {
  it("is not cached when the connection drops mid-body: read again, and no 304 revives it", async () => {
    // Octokit reads a cut body as "" without an error: the cache kept "" as the repository, and
    // with its real ETag a 304 refreshed it after each TTL, until an event evicted it.
    let reads = 0;
    const baseUrl = await serve((method, etag, res) => {
      if (method === "POST") {
        res.writeHead(201, JSON_TYPE);
        res.end(JSON.stringify({ token: "ghs_local", expires_at: "2999-01-01T00:00:00Z" }));
        return;
      }
      reads++;
      if (etag === '"v1"') {
        res.writeHead(304, { etag: '"v1"' });
        res.end();
      } else if (reads === 1) {
        res.writeHead(200, {
          ...JSON_TYPE,
          "content-length": String(REPO_BODY.length),
          etag: '"v1"',
        });
        res.write(REPO_BODY.slice(0, 100));
        setTimeout(() => res.socket?.destroy(), 20);
      } else {
        res.writeHead(200, { ...JSON_TYPE, etag: '"v1"' });
        res.end(REPO_BODY);
      }
    });
    const clock = createFakeClock();
    const app = await createTestApp({ baseUrl, clock, env: { TALOS_CACHE_TTL_MS: "60000" } });
    const octokit = await app.probot.auth(2);
    const read = () =>
      octokit.rest.repos.get({ owner: "Codertocat", repo: "Hello-World" }).then(
        (r) => (r.data as { default_branch?: string }).default_branch,
        (e: Error) => `error: ${e.name}`,
      );

    const first = await read();
    const second = await read();
    clock.advance(120_000);
    const third = await read();
    expect(first).toMatch(/^error: /);
    expect({ second, third, reads }).toEqual({ second: "main", third: "main", reads: 3 });
  });

  it("times out when the body stalls after its headers, rather than hold the job for good", async () => {
    const baseUrl = await serve((_method, _etag, res) => {
      res.writeHead(200, { ...JSON_TYPE, "content-length": String(REPO_BODY.length) });
      res.write(REPO_BODY.slice(0, 100));
    });
    const { log } = await captureLogs("warn");
    const metrics = createMetrics();
    const Octokit = createOctokitClass({
      cache: undefined,
      metrics,
      rateLimits: new RateLimitTracker(metrics),
      limits: {
        maxRetries: 0,
        maxRetryWaitSeconds: 60,
        writeIntervalMs: 0,
        notificationIntervalMs: 0,
      },
      requestTimeoutMs: 300,
    });
    const octokit = new Octokit({
      auth: "ghs_stalledBodyTest",
      baseUrl,
      log,
    } as never) as unknown as Octokit;

    const outcome = await octokit.rest.repos.get({ owner: "Codertocat", repo: "Hello-World" }).then(
      () => "answered",
      (e: Error) => e.message,
    );
    expect(outcome).toMatch(/did not answer GET \/repos\/\{owner\}\/\{repo\} within 300 ms/);
  });
});

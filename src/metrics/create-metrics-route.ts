import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

/**
 * `GET /metrics`: Prometheus text exposition of the registry. With a `token`, only requests that
 * carry it as `Authorization: Bearer <token>` are served (401 otherwise); that is how metrics are
 * served on the public webhook port.
 */
export function createMetricsRoute(registry: Registry, options: { token?: string } = {}) {
  const expected = options.token === undefined ? undefined : digest(options.token);
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") return false;
    if (expected && !isAuthorized(req.headers.authorization, expected)) {
      res
        .writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" })
        .end("a bearer token is required\n");
      return true;
    }
    const body = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType }).end(body);
    return true;
  };
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Compares in constant time, on digests so that the token's length does not show either. The
 * token is all that follows the scheme: one with a space (the config allows it) was cut there
 * and refused for ever, and words after a token without one were let through.
 */
function isAuthorized(header: string | undefined, expected: Buffer): boolean {
  const space = (header ?? "").indexOf(" ");
  if (space === -1 || header!.slice(0, space).toLowerCase() !== "bearer") return false;
  const token = header!.slice(space + 1);
  return token !== "" && timingSafeEqual(digest(token), expected);
}

/**
 * The metrics on a listener of their own, the Prometheus convention for an app whose main port is
 * public: bound to 127.0.0.1 unless `host` says otherwise, serving `GET /metrics` and nothing
 * else. Resolves once it listens.
 */
export async function startMetricsServer(options: {
  registry: Registry;
  port: number;
  host: string;
  log: Logger;
}): Promise<Server> {
  const route = createMetricsRoute(options.registry);
  const server = createServer((req, res) => {
    void route(req, res).then(
      (served) => {
        if (!served) res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      },
      (error: unknown) => {
        options.log.error({ err: error }, "serving /metrics failed");
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  options.log.info({ url: `http://${address}:${port}/metrics` }, "metrics listening");
  return server;
}

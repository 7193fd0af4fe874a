import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";

/** `GET /metrics`: Prometheus text exposition of the registry. */
export function createMetricsRoute(registry: Registry) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") return false;
    const body = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType }).end(body);
    return true;
  };
}

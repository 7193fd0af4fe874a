import type { IncomingMessage, ServerResponse } from "node:http";

export interface HealthRouteOptions {
  version: string;
}

/**
 * `GET /healthz`: 200 with `{status, version}` while the process serves. It is public, so it says
 * nothing more: no uptime, no configuration, no counts.
 */
export function createHealthRoute(options: HealthRouteOptions) {
  const body = JSON.stringify({ status: "ok", version: options.version });
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/healthz") return false;
    res
      .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
      .end(body);
    return true;
  };
}

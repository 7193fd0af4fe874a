import type { IncomingMessage, ServerResponse } from "node:http";

export interface HealthRouteOptions {
  version: string;
  /** True once the process is shutting down. */
  stopping: () => boolean;
}

/**
 * `GET /healthz` (or HEAD): 200 with `{status, version}` while the process serves, 503
 * `stopping` once it shuts down, so that a load balancer sends it nothing more. It is public, so
 * it says nothing more: no uptime, no configuration, no counts.
 */
export function createHealthRoute(options: HealthRouteOptions) {
  const ok = JSON.stringify({ status: "ok", version: options.version });
  const stopping = JSON.stringify({ status: "stopping", version: options.version });
  const headers = { "content-type": "application/json", "cache-control": "no-store" };
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    // HEAD too, as some probers send it (Node leaves the body out): it fell through to Probot.
    const probe = req.method === "GET" || req.method === "HEAD";
    if (!probe || req.url?.split("?")[0] !== "/healthz") return false;
    if (!options.stopping()) res.writeHead(200, headers).end(ok);
    // The connection goes too: a prober that keeps one alive would keep the server from closing.
    else res.writeHead(503, { ...headers, connection: "close" }).end(stopping);
    return true;
  };
}

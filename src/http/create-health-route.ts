import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock } from "../clock.js";

export interface HealthRouteOptions {
  version: string;
  clock: Clock;
  startedAt: number;
}

/** `GET /healthz`: 200 with `{status, version, uptime}` (uptime in seconds) while the process serves. */
export function createHealthRoute(options: HealthRouteOptions) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/healthz") return false;
    const uptime = Math.max(0, Math.round((options.clock.now() - options.startedAt) / 1000));
    res
      .writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
      .end(JSON.stringify({ status: "ok", version: options.version, uptime }));
    return true;
  };
}

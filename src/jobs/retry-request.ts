import type { Logger } from "pino";
import { z } from "zod";
import type { RequestHandler } from "../server-requests.js";

/*
 * `talos jobs retry` beside a running server: the journal has one writer, the server, so the
 * command asks it (server-requests.ts) to make the parked jobs wait again, and it runs them at
 * once. Retrying twice is safe: a job retried already is no longer parked.
 */

// Delivery ids (GUIDs), at most the journal's bound on jobs.
const RetryRequest = z.object({ ids: z.array(z.string().min(1).max(200)).max(100_000) });
/** The answer: the ids retried. */
export const Retried = z.array(z.string());

/** The server's side: `retryParked` makes a parked job wait again; false when it is not parked. */
export function retryRequestHandler(
  retryParked: (id: string) => Promise<boolean>,
  log: Logger,
): RequestHandler {
  return async (request) => {
    const { ids } = RetryRequest.parse(request);
    const retried: string[] = [];
    for (const delivery of new Set(ids)) if (await retryParked(delivery)) retried.push(delivery);
    log.info({ retried: retried.length, asked: ids.length }, "parked jobs retried on request");
    return retried;
  };
}

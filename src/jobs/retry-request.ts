import type { Logger } from "pino";
import { z } from "zod";
import type { Clock } from "../clock.js";
import { sendRequest, type RequestHandler } from "../server-requests.js";

/*
 * `talos jobs retry` beside a running server: the journal has one writer, the server, so the
 * command asks it (server-requests.ts) to make the parked jobs wait again, and it runs them at
 * once. Retrying twice is safe: a job retried already is no longer parked.
 */

// Delivery ids (GUIDs), at most the journal's bound on jobs.
const RetryRequest = z.object({ ids: z.array(z.string().min(1).max(200)).max(100_000) });
const Retried = z.array(z.string());

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

/**
 * Asks the server to retry `ids`: the ids it retried, or undefined when it did not take the
 * request in time (nothing was retried).
 */
export async function requestRetries(options: {
  directory: string;
  ids: string[];
  clock: Clock;
  timeoutMs?: number;
  answerTimeoutMs?: number;
}): Promise<string[] | undefined> {
  const answer = await sendRequest({
    directory: options.directory,
    request: { kind: "retry", ids: options.ids },
    clock: options.clock,
    timeoutMs: options.timeoutMs,
    answerTimeoutMs: options.answerTimeoutMs ?? options.timeoutMs,
    unanswered:
      "the server took the retry request but did not answer; `talos jobs` shows what is parked",
  });
  return answer && Retried.parse(answer.value);
}

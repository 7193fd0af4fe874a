import { z } from "zod";
import type { RequestHandler } from "../server-requests.js";
import type { BackfillState } from "./backfill-repository.js";
import type { BackfillRunner } from "./backfill-runner.js";
import type { MemoryService } from "./memory-service.js";
import { MemoryDeletedError } from "./memory-store.js";

/*
 * `talos backfill` beside a running server on disk: the server holds the memory, and its
 * events may open the repository's at any time, so the command does not open it (a store it
 * held for the length of a backfill would fail those events until their jobs were parked). It
 * asks the server (server-requests.ts), which queues the backfill behind its own, and runs it
 * as it runs those: with its retries and rate limits, and resumed after a restart.
 */

const Id = z.number().int().positive();
const BackfillRequest = z.object({
  installation: Id,
  repository: Id,
  name: z.string().max(300),
  createdAt: z.string().max(100).optional(),
  max: z.number().int().min(1).max(1_000_000),
  since: z.string().max(100).optional(),
  /** GitHub says the installation holds the repository now: a deleted memory may open again. */
  readmit: z.boolean(),
});
export type BackfillRequest = z.infer<typeof BackfillRequest>;

export type BackfillAnswer =
  /** Its memory was deleted with the repository, and the command could not say it is back. */
  | { removed: true }
  | {
      removed: false;
      readmitted: boolean;
      /** False when one was queued or running already, or it is done. */
      queued: boolean;
      /** Its progress before this request. */
      state: BackfillState | null;
    };

/** The server's side: queues the backfill, a deleted memory readmitted when GitHub says so. */
export function backfillRequestHandler(
  memory: MemoryService,
  runner: Pick<BackfillRunner, "request">,
): RequestHandler {
  return async (body): Promise<BackfillAnswer> => {
    const { max, since, readmit, ...ref } = BackfillRequest.parse(body);
    let readmitted = false;
    // Opened now, so that a deleted memory is told rather than skipped in the background.
    const removed = await memory.open(ref).then(
      () => false,
      (error: unknown) => {
        if (!(error instanceof MemoryDeletedError)) throw error;
        return true;
      },
    );
    if (removed) {
      if (!readmit) return { removed: true };
      await memory.readmit(ref);
      await memory.open(ref);
      readmitted = true;
    }
    const state = (await memory.readBackfillState(ref)) ?? null;
    // Done is done (the command says how to index it again), unless issues were off then.
    const done = !since && state?.status === "done" && !state.issuesDisabledAt;
    const queued = !done && (await runner.request(ref, { max, ...(since ? { since } : {}) }));
    return { removed: false, readmitted, queued, state };
  };
}

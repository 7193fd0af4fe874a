import { mkdir } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { lockDirectory, MemoryLockedError } from "./memory/directory-lock.js";
import { answersRequests, requestsDirectory } from "./server-requests.js";

/** Another live server has this data directory. */
export class DataDirectoryInUseError extends Error {
  override name = "DataDirectoryInUseError";
}

/** How long a start waits for a command (`talos memory stats`, say) to finish with the directory. */
const COMMAND_WAIT_MS = 30_000;

/**
 * Keeps `TALOS_DATA_DIR` to one server for its life: two would each replay and run the jobs one
 * journal holds (a reply posted twice), and write over each other's budgets and alive mark. The
 * memory stores lock their own directories, but only while open. The lock is the memory's
 * (directory-lock.ts): proper-lockfile removes it as the process exits, and one that a server
 * killed on this host left is taken over at once. A command holds it for a moment (`talos
 * memory`, `talos jobs retry` with the server stopped): a restart then waits for it rather than
 * failing, and only a server, which answers requests, is refused at once.
 */
export async function lockDataDirectory(
  directory: string,
  log: Logger,
  { commandWaitMs = COMMAND_WAIT_MS } = {},
): Promise<void> {
  await mkdir(directory, { recursive: true });
  const deadline = Date.now() + commandWaitMs;
  let waiting = false;
  for (;;) {
    try {
      await lockDirectory(directory, {
        // Only after this process stalled past the stale time and another took the directory:
        // stopping now would drop the jobs under way, which the journal keeps either way.
        onCompromised: (error) =>
          log.error(
            { err: error, directory },
            "TALOS_DATA_DIR's lock was taken by another process: two servers may now share it",
          ),
      });
      return;
    } catch (error) {
      if (!(error instanceof MemoryLockedError)) throw error;
      const server =
        !error.owner || (await answersRequests(requestsDirectory(directory), error.owner));
      if (server || Date.now() >= deadline)
        throw new DataDirectoryInUseError(
          `TALOS_DATA_DIR: ${error.message}; each server needs a data directory of its own`,
        );
      if (!waiting)
        log.info(
          { directory, pid: error.owner?.pid },
          "TALOS_DATA_DIR is held by a command; waiting for it to finish",
        );
      waiting = true;
      await sleep(250);
    }
  }
}

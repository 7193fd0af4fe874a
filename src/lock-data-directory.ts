import { mkdir } from "node:fs/promises";
import type { Logger } from "pino";
import { lockDirectory, MemoryLockedError } from "./memory/directory-lock.js";

/** Another live server has this data directory. */
export class DataDirectoryInUseError extends Error {
  override name = "DataDirectoryInUseError";
}

/**
 * Keeps `TALOS_DATA_DIR` to one server for its life: two would each replay and run the jobs one
 * journal holds (a reply posted twice), and write over each other's budgets and alive mark. The
 * memory stores lock their own directories, but only while open. The lock is the memory's
 * (directory-lock.ts): proper-lockfile removes it as the process exits, and one that a server
 * killed on this host left is taken over at once.
 */
export async function lockDataDirectory(directory: string, log: Logger): Promise<void> {
  await mkdir(directory, { recursive: true });
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
  } catch (error) {
    if (!(error instanceof MemoryLockedError)) throw error;
    throw new DataDirectoryInUseError(
      `TALOS_DATA_DIR: ${error.message}; each server needs a data directory of its own`,
    );
  }
}

import { hostname } from "node:os";
import { systemClock } from "../clock.js";
import {
  isAlive,
  lockDirectory,
  MemoryLockedError,
  type LockOwner,
} from "../memory/directory-lock.js";
import { answersRequests, requestsDirectory, sendRequest } from "../server-requests.js";

/**
 * On disk the data directory has one writer. A command that writes or opens the memory holds it
 * for its length (a server starting meanwhile waits for it); when a running server holds it and
 * answers requests, the command is to ask that server instead (`server`). Any other holder
 * (another command, a server of an earlier version) throws the lock's MemoryLockedError, which
 * names it: exit 2.
 */
export async function holdDataDirectory(
  dataDir: string,
): Promise<{ release: () => Promise<void> } | { server: LockOwner }> {
  try {
    return { release: await lockDirectory(dataDir) };
  } catch (error) {
    if (
      error instanceof MemoryLockedError &&
      error.owner &&
      (await answersRequests(requestsDirectory(dataDir), error.owner))
    )
      return { server: error.owner };
    throw error;
  }
}

/**
 * Asks the server holding `dataDir` (see server-requests.ts) and returns its answer; throws when
 * it does not take the request within `timeoutMs` (it is stopping, or hung), nothing done.
 */
export async function askServer(
  dataDir: string,
  server: LockOwner,
  request: { kind: string } & Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<unknown> {
  const answer = await sendRequest({
    directory: requestsDirectory(dataDir),
    request,
    clock: systemClock,
    timeoutMs,
    serving: () => server.host !== hostname() || isAlive(server.pid),
  });
  if (!answer)
    throw new Error(
      `the server holding ${dataDir} did not take the request within ${timeoutMs / 1_000} s (is it stopping?); nothing was done`,
    );
  return answer.value;
}

import type { MemoryAccess, PayloadRepository } from "./open-repo-memory.js";
import { MemoryDeletedError, type MemoryStore } from "./memory-store.js";

/**
 * Runs `forget` on the memory a repository whose memory is off kept from before, if it kept one:
 * switched on again, `ask` had recalled what GitHub no longer shows. Undefined when there is none
 * (a repository that never had a memory gets none).
 */
export async function forgetInMemoryOff<T>(
  deps: Pick<MemoryAccess, "memory">,
  event: { installation: number; repository: PayloadRepository },
  forget: (store: MemoryStore) => Promise<T>,
): Promise<T | undefined> {
  const namespace = { installation: event.installation, repository: event.repository.id };
  // This repository's alone: listing every memory made each such event cost more with every
  // other repository's (one transaction each in PostgreSQL; found by a review).
  if (!(await deps.memory.has(namespace))) return undefined;
  const ref = { ...namespace, name: event.repository.full_name };
  try {
    return await deps.memory.look(ref, forget);
  } catch (error) {
    // Deleted with its repository: nothing left to forget.
    if (!(error instanceof MemoryDeletedError)) throw error;
    return undefined;
  }
}

import type { RepoConfig } from "../config.js";
import type { MemoryService } from "./memory-service.js";
import type { MemoryStore } from "./memory-store.js";

/** The parts of a webhook payload's `repository` that name its memory. */
export interface PayloadRepository {
  id: number;
  full_name: string;
  /** ISO 8601, or Unix seconds in push payloads. */
  created_at?: string | number | undefined;
}

/**
 * The memory of the event's repository, or undefined when its config switches memory off. The
 * namespace comes from the webhook payload (installation id and repository id), never from
 * text; the name it carries now is recorded for display, so a rename keeps the memory.
 */
export async function openRepoMemory(
  registry: MemoryService,
  event: { installation: number; repository: PayloadRepository },
  config: RepoConfig,
): Promise<MemoryStore | undefined> {
  if (!config.memory.enabled) return undefined;
  return registry.open({
    installation: event.installation,
    repository: event.repository.id,
    name: event.repository.full_name,
    createdAt: event.repository.created_at,
  });
}

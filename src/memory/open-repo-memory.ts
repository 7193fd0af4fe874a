import type { RepoConfig } from "../config.js";
import type { MemoryRegistry } from "./memory-registry.js";
import type { MemoryStore } from "./memory-store.js";

/**
 * The memory of the event's repository, or undefined when its config switches memory off. The
 * namespace comes from the webhook payload (installation id and repository), never from text.
 */
export async function openRepoMemory(
  registry: MemoryRegistry,
  event: { installation: number; repository: string },
  config: RepoConfig,
): Promise<MemoryStore | undefined> {
  if (!config.memory.enabled) return undefined;
  return registry.open({
    installation: String(event.installation),
    repo: event.repository.toLowerCase(),
  });
}

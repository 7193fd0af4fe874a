import type { Context } from "probot";
import { z } from "zod";
import type { BackfillRunner } from "../memory/backfill-runner.js";
import type { MemoryService } from "../memory/memory-service.js";
import { InstallationPayload, readPayload, RepositoryPayload } from "./read-payload.js";

export type RepositoryChangedEvent =
  "repository.deleted" | "repository.renamed" | "repository.transferred";

const RepositoryChanged = z.object({
  action: z.enum(["deleted", "renamed", "transferred"]),
  repository: RepositoryPayload,
  installation: InstallationPayload,
});

/**
 * A repository's memory follows the repository: a deleted one's memory goes (with its backfill),
 * and a renamed or transferred one keeps its memory, which is kept by id, under its new name.
 * Only the event's installation is touched: a transfer to another owner's installation carries
 * nothing across, and that installation starts from an empty memory.
 */
export function createRepositoryChangedHandler(deps: {
  backfill: BackfillRunner;
  memory: MemoryService;
}) {
  return async (context: Context<RepositoryChangedEvent>): Promise<void> => {
    const { action, repository, installation } = readPayload(RepositoryChanged, context.payload);
    const ref = {
      installation: installation.id,
      repository: repository.id,
      name: repository.full_name,
      createdAt: repository.created_at,
    };
    if (action === "deleted") {
      await deps.backfill.cancel(ref);
      // Its id never comes back: nothing (a job journaled before this) opens its memory again.
      const deleted = await deps.memory.delete(ref);
      return context.log.info({ deleted }, "repository deleted: its memory is gone");
    }
    const renamed = await deps.memory.rename(ref);
    context.log.info(
      { renamed },
      renamed ? "memory renamed with its repository" : "no memory of this repository to rename",
    );
  };
}

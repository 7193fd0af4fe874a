import type { Context } from "probot";
import { z } from "zod";
import type { BackfillRunner } from "../memory/backfill-runner.js";
import type { RepositoryRef } from "../memory/memory-registry.js";
import type { MemoryService } from "../memory/memory-service.js";
import type { Readmission } from "../memory/open-repo-memory.js";
import { InstallationPayload, readPayload, RepositoryPayload } from "./read-payload.js";

export type RepositoryChangedEvent =
  "repository.deleted" | "repository.renamed" | "repository.transferred";

const Login = z.object({ login: z.string() });

const RepositoryChanged = z.object({
  action: z.enum(["deleted", "renamed", "transferred"]),
  repository: RepositoryPayload,
  installation: InstallationPayload,
  // What the repository was called: only a hint, so a part GitHub left out is no error.
  changes: z
    .object({
      repository: z.object({ name: z.object({ from: z.string() }) }).optional(),
      owner: z
        .object({ from: z.object({ organization: Login.optional(), user: Login.optional() }) })
        .optional(),
    })
    .optional()
    .catch(undefined),
});

/**
 * A repository's memory follows the repository: a deleted one's memory goes (with its backfill),
 * and a renamed one keeps its memory, which is kept by id, under its new name. A transferred one
 * keeps it only if the event's installation still holds it (GitHub is asked): an installation is
 * on one account, so a repository transferred to another account has left it, and its memory
 * goes as a removed repository's does. Only the event's installation is touched: a transfer to
 * another owner's installation carries nothing across, and that installation starts from an
 * empty memory.
 */
export function createRepositoryChangedHandler(deps: {
  backfill: BackfillRunner;
  memory: MemoryService;
  readmission: Pick<Readmission, "holds">;
}) {
  return async (context: Context<RepositoryChangedEvent>): Promise<void> => {
    const { action, repository, installation, changes } = readPayload(
      RepositoryChanged,
      context.payload,
    );
    const ref = {
      installation: installation.id,
      repository: repository.id,
      name: repository.full_name,
      createdAt: repository.created_at,
    };
    // A memory kept by the old name before the upgrade, which no event opened since, is its
    // too: no later event names it.
    const previousName = previousNameOf(repository.full_name, changes);
    if (action === "deleted") {
      const deleted = await forget(deps, ref);
      return context.log.info({ deleted }, "repository deleted: its memory is gone");
    }
    // GitHub unable to answer throws: the event is retried, and nothing is renamed or deleted
    // on a guess.
    if (action === "transferred" && !(await deps.readmission.holds(installation.id, repository))) {
      // Its memory kept by name before the upgrade waits under the name it had here.
      const deleted = await forget(deps, { ...ref, name: previousName ?? ref.name });
      return context.log.info(
        { deleted, previousName },
        "repository transferred out of the installation: its memory is gone",
      );
    }
    const renamed = await deps.memory.rename({ ...ref, previousName });
    context.log.info(
      { renamed },
      renamed ? "memory renamed with its repository" : "no memory of this repository to rename",
    );
  };
}

/**
 * Deletes a repository's memory and cancels its backfill, as its removal from the installation
 * does. Its id never comes back to this installation but by its `installation_repositories.added`
 * (or a readmission GitHub confirms): nothing journaled before this opens its memory again.
 */
async function forget(
  deps: { backfill: BackfillRunner; memory: MemoryService },
  ref: RepositoryRef,
): Promise<boolean> {
  await deps.backfill.cancel(ref);
  return deps.memory.delete(ref);
}

/** `owner/name` before a rename (`changes.repository.name`) or a transfer (`changes.owner`). */
function previousNameOf(
  fullName: string,
  changes: z.infer<typeof RepositoryChanged>["changes"],
): string | undefined {
  const [owner, name] = fullName.split("/");
  const from = changes?.owner?.from;
  const previousOwner = from?.organization?.login ?? from?.user?.login;
  const previous = changes?.repository?.name.from;
  if (previousOwner === undefined && previous === undefined) return undefined;
  return `${previousOwner ?? owner}/${previous ?? name}`;
}

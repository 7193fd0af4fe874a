import type { Context } from "probot";
import { z } from "zod";
import type { Clock } from "../clock.js";
import type { BackfillRunner } from "../memory/backfill-runner.js";
import type { MemoryService } from "../memory/memory-service.js";
import type { Readmission } from "../memory/open-repo-memory.js";
import { CLOCK_SKEW_MS } from "../memory/outage-catch-up.js";
import type { SuspensionMarks } from "../memory/suspension-marks.js";
import type { RateLimitTracker } from "../metrics/rate-limit-plugin.js";
import { InstallationPayload, readPayload, RepositoryPayload } from "./read-payload.js";

type InstallationEvent = "installation" | "installation_repositories";

type Repository = z.infer<typeof RepositoryPayload>;

const Repositories = z.array(RepositoryPayload).nullable().optional();

// Checked before anything is done: an uninstall without its installation's id, or a removed
// repository without its id, cannot name the memory to delete, and no retry can fix it.
const InstallationChanged = z.object({
  action: z.string(),
  installation: InstallationPayload.extend({
    account: z.object({ login: z.string().optional() }).nullable().optional(),
    // Read leniently: a time in another form must not park an uninstall that carries it.
    suspended_at: z.unknown().optional(),
  }),
  repositories: Repositories,
  repositories_added: Repositories,
  repositories_removed: Repositories,
});

/**
 * Installs, uninstalls and changes to the set of repositories. Repositories the app gains are
 * queued for a memory backfill of their existing issues and pull requests; the memory of those
 * it loses goes, with their backfill: all of an uninstalled installation's, and each removed
 * repository's, which stays refused (to jobs journaled before) until the repository is added
 * back, as GitHub confirms (see `admitRepository`). A suspension is marked with its time; at
 * the unsuspension, the installation's memories are caught up with what changed since, which
 * GitHub did not send meanwhile.
 */
export function createInstallationChangedHandler(deps: {
  backfill: BackfillRunner;
  memory: MemoryService;
  readmission: Pick<Readmission, "holds">;
  suspensions: SuspensionMarks;
  rateLimits: Pick<RateLimitTracker, "forget">;
  clock: Clock;
}) {
  return async (context: Context<InstallationEvent>): Promise<void> => {
    const payload = readPayload(InstallationChanged, context.payload);
    const names = (list?: Repository[] | null) => (list ?? []).map((r) => r.full_name);
    context.log.info(
      {
        account: payload.installation.account?.login,
        repositories: names(payload.repositories),
        added: names(payload.repositories_added),
        removed: names(payload.repositories_removed),
      },
      "installation changed",
    );
    const installation = payload.installation.id;
    const event = `${context.name}.${payload.action}`;
    if (event === "installation.deleted") {
      await deps.backfill.cancelInstallation(installation);
      await deps.memory.deleteInstallation(installation);
      await deps.rateLimits.forget(String(installation));
      // Its time alone, of an installation gone: kept, it harms nothing, so the uninstall is not
      // failed over it (after its memories went).
      await deps.suspensions
        .clear(installation)
        .catch((error: unknown) =>
          context.log.warn({ err: error, installation }, "suspension mark not cleared"),
        );
      return;
    }
    if (event === "installation.suspend") {
      const { suspended_at: time } = payload.installation;
      const given = typeof time === "string" ? Date.parse(time.slice(0, 100)) : Number.NaN;
      // GitHub's time, or ours a clock difference earlier.
      const at = Number.isFinite(given) ? given : deps.clock.now() - CLOCK_SKEW_MS;
      await deps.suspensions.record(installation, new Date(at).toISOString());
      return;
    }
    if (event === "installation.unsuspend") {
      const since = await deps.suspensions.since(installation);
      if (since === undefined) {
        context.log.warn(
          { installation },
          "installation unsuspended, but when it was suspended is not known here: its memories are not caught up; `talos backfill <owner/repo> --since <time>` catches one up",
        );
        return;
      }
      // Queued durably before the mark goes: a crash between the two queues them again, once.
      const queued = await deps.backfill.catchUpInstallation(installation, since);
      await deps.suspensions.clear(installation);
      context.log.info({ installation, since, queued }, "catching up a suspended installation");
      return;
    }
    if (event === "installation_repositories.removed") {
      // Each repository is deleted even when another's deletion fails (its memory locked by
      // another process, say): stopping at the first left every later one's memory and backfill
      // in place. The failures are thrown after, so that the event is retried.
      await forEachRepository(payload.repositories_removed, "memories not deleted", async (r) => {
        const namespace = { installation, repository: r.id, name: r.full_name };
        await deps.backfill.cancel(namespace);
        await deps.memory.delete(namespace);
      });
      return;
    }
    const gained =
      event === "installation.created"
        ? payload.repositories
        : event === "installation_repositories.added"
          ? payload.repositories_added
          : [];
    // As for removals, one that GitHub cannot answer about holds up no other.
    await forEachRepository(gained, "memories not readmitted", (repository) =>
      admitRepository(deps, context.log, installation, repository),
    );
  };
}

/**
 * A repository the installation gained: its memory may open again, and its backfill is queued.
 * One whose memory was deleted with it is readmitted only if GitHub says the installation holds
 * it now: the event may be a late redelivery (GitHub redelivers the failed ones, oldest first),
 * its repository removed since, and that removal handled already; readmitted, a job journaled
 * before would write its memory again, and its backfill refill it. GitHub unable to answer
 * throws, and the event is retried. One never deleted asks GitHub nothing.
 */
async function admitRepository(
  deps: {
    backfill: BackfillRunner;
    memory: MemoryService;
    readmission: Pick<Readmission, "holds">;
  },
  log: Context["log"],
  installation: number,
  repository: Repository,
): Promise<void> {
  const target = { installation, repository: repository.id, name: repository.full_name };
  if (await deps.memory.isRefused(target)) {
    if (!(await deps.readmission.holds(installation, repository))) {
      log.info(
        { installation, repository: repository.full_name },
        "memory kept deleted: the repository was added, but GitHub says the installation no longer holds it (a late delivery, older than its removal)",
      );
      return;
    }
    await deps.memory.readmit(target);
    log.info({ installation, repository: repository.full_name }, "memory readmitted, empty");
  }
  deps.backfill.enqueue(target);
}

/** Runs `work` for each repository, every one even when some fail; then throws the failures. */
async function forEachRepository(
  repositories: Repository[] | null | undefined,
  what: string,
  work: (repository: Repository) => Promise<void>,
): Promise<void> {
  const failures: unknown[] = [];
  for (const repository of repositories ?? []) {
    try {
      await work(repository);
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1)
    throw new AggregateError(failures, `${failures.length} repositories' ${what}`);
}

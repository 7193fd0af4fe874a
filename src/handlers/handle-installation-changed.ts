import type { Context } from "probot";
import type { BackfillRunner } from "../memory/backfill-runner.js";

type InstallationEvent = "installation" | "installation_repositories";

interface InstallationPayload {
  action?: string;
  installation?: { id?: number; account?: { login?: string } | null };
  repositories?: Array<{ full_name: string }>;
  repositories_added?: Array<{ full_name: string }>;
  repositories_removed?: Array<{ full_name: string }>;
}

/**
 * Installs, uninstalls and changes to the set of repositories: logged, and repositories the app
 * gains are queued for a memory backfill of their existing issues and pull requests.
 */
export function createInstallationChangedHandler(deps: { backfill: BackfillRunner }) {
  return async (context: Context<InstallationEvent>): Promise<void> => {
    const payload = context.payload as InstallationPayload;
    const names = (list?: Array<{ full_name: string }>) => (list ?? []).map((r) => r.full_name);
    context.log.info(
      {
        account: payload.installation?.account?.login,
        repositories: names(payload.repositories),
        added: names(payload.repositories_added),
        removed: names(payload.repositories_removed),
      },
      "installation changed",
    );
    const gained =
      context.name === "installation" && payload.action === "created"
        ? names(payload.repositories)
        : context.name === "installation_repositories" && payload.action === "added"
          ? names(payload.repositories_added)
          : [];
    const installation = payload.installation?.id;
    if (installation === undefined) return;
    for (const repo of gained) deps.backfill.enqueue({ installation: String(installation), repo });
  };
}

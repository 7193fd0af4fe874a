import type { Context } from "probot";

type InstallationEvent = "installation" | "installation_repositories";

/**
 * Installs, uninstalls and changes to the set of repositories. Logged so an operator can see
 * where the app runs.
 */
export async function handleInstallationChanged(
  context: Context<InstallationEvent>,
): Promise<void> {
  const payload = context.payload as {
    installation?: { account?: { login?: string } | null };
    repositories?: Array<{ full_name: string }>;
    repositories_added?: Array<{ full_name: string }>;
    repositories_removed?: Array<{ full_name: string }>;
  };
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
}

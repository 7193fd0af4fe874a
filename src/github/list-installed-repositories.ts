import type { Logger } from "pino";
import { statusOf, type Octokit } from "./octokit.js";

/** A repository an installation of the app holds: its ids, and `owner/name` as GitHub has it. */
export interface InstalledRepository {
  installation: number;
  repository: number;
  name: string;
}

/** What the app's installations hold now, as GitHub lists them. */
export interface InstalledRepositories {
  /** Every installation listed, suspended ones included. */
  installations: number[];
  /** The installations whose repositories were read (not suspended). */
  read: number[];
  repositories: InstalledRepository[];
  /** The installations listed as suspended, and since when (GitHub's `suspended_at`). */
  suspended?: Array<{ installation: number; at: string }>;
}

/**
 * Every repository the app's installations hold now, as GitHub lists them: the installations with
 * the app's JWT (https://docs.github.com/en/rest/apps/apps#list-installations-for-the-authenticated-app),
 * then each one's repositories with its token
 * (https://docs.github.com/en/rest/apps/installations#list-repositories-accessible-to-the-app-installation).
 * A suspended installation (403) holds none for Talos and its repositories are not read; any
 * other failure throws, as a partial list would pass for the whole.
 */
export async function listInstalledRepositories(
  app: Octokit,
  auth: (installation: number) => Promise<Octokit>,
  log: Logger,
): Promise<InstalledRepositories> {
  const installations = await app.paginate(app.rest.apps.listInstallations, { per_page: 100 });
  const result: InstalledRepositories = {
    installations: installations.map((installation) => installation.id),
    read: [],
    repositories: [],
    suspended: [],
  };
  for (const { id, suspended_at } of installations) {
    if (suspended_at) {
      result.suspended!.push({ installation: id, at: suspended_at });
      continue;
    }
    let repositories;
    try {
      // The token exchange fails too for an installation suspended since it was listed.
      repositories = await listRepositoriesOf(await auth(id), id);
    } catch (error) {
      if (statusOf(error) !== 403) throw error;
      log.warn(
        { installation: id },
        "an installation's repositories cannot be listed (suspended?)",
      );
      continue;
    }
    result.read.push(id);
    result.repositories.push(...repositories);
  }
  return result;
}

/** The repositories one installation holds now, read with its own client. */
export async function listRepositoriesOf(
  octokit: Octokit,
  installation: number,
): Promise<InstalledRepository[]> {
  const repositories = await octokit.paginate(octokit.rest.apps.listReposAccessibleToInstallation, {
    per_page: 100,
  });
  return repositories.map((repository) => ({
    installation,
    repository: repository.id,
    name: repository.full_name,
  }));
}

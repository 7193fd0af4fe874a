import { statusOf, type Octokit } from "./octokit.js";

/**
 * Whether installation `installation` of the app holds the repository now, as GitHub says.
 * `app` is authenticated as the app itself (a JWT, not an installation token): GitHub then
 * answers 404 for a repository the app is not installed on, or that an installation of
 * selected repositories was not given, and otherwise names the installation that holds it.
 * That answer is by name, and a name outlives its repository: one deleted and created again
 * under the same name is another repository, with another id. So the installation's client
 * then reads the repository, and it is held only if its id is still `repository.id`.
 */
export async function holdsRepository(
  app: Octokit,
  installation: { id: number; client: () => Promise<Octokit> },
  repository: { id: number; full_name: string },
): Promise<boolean> {
  const [owner = "", repo = ""] = repository.full_name.split("/");
  try {
    const holder = (await app.rest.apps.getRepoInstallation({ owner, repo })).data;
    if (holder.id !== installation.id) return false;
    const octokit = await installation.client();
    // GitHub's answer now, not the cache's: this is asked when Talos missed the events that
    // evict it (a repository removed, deleted or made again), so a cached read, even a 404
    // cached while the app could not see it, may be of what the name meant then. The answer
    // replaces the cached one, for the job that goes on once the repository is readmitted.
    const { data } = await octokit.rest.repos.get({
      owner,
      repo,
      headers: { "cache-control": "max-age=0" },
    });
    return data.id === repository.id;
  } catch (error) {
    if (statusOf(error) === 404) return false;
    throw error;
  }
}

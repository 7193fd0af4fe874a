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
    const { data } = await app.rest.apps.getRepoInstallation({ owner, repo });
    if (data.id !== installation.id) return false;
    const octokit = await installation.client();
    return (await octokit.rest.repos.get({ owner, repo })).data.id === repository.id;
  } catch (error) {
    if (statusOf(error) === 404) return false;
    throw error;
  }
}

import { statusOf, type Octokit } from "./octokit.js";

/**
 * Whether installation `installation` of the app holds the repository now, as GitHub says.
 * `app` is authenticated as the app itself (a JWT, not an installation token): GitHub then
 * answers 404 for a repository the app is not installed on, or that an installation of
 * selected repositories was not given, and otherwise names the installation that holds it.
 */
export async function holdsRepository(
  app: Octokit,
  installation: number,
  fullName: string,
): Promise<boolean> {
  const [owner = "", repo = ""] = fullName.split("/");
  try {
    const { data } = await app.rest.apps.getRepoInstallation({ owner, repo });
    return data.id === installation;
  } catch (error) {
    if (statusOf(error) === 404) return false;
    throw error;
  }
}

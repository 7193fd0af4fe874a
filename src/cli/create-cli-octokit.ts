import { getGitHubApiUrl } from "../config.js";
import type { Services } from "../create-services.js";
import type { Octokit } from "../github/octokit.js";

/** How a `talos` subcommand authenticates: a token, or the app (and one of its installations). */
export type CliAuth =
  { token: string } | { appId: string; privateKey: string; installationId?: number };

/**
 * A GitHub client for a `talos` subcommand: the server's client class from the same services
 * (cache, rate-limit metrics, throttling and retries from the environment), pointed at GHE_HOST
 * when set. `auth` defaults to GITHUB_TOKEN when it is set, otherwise none (public only).
 */
export function createCliOctokit(
  services: Pick<Services, "env" | "log" | "Octokit">,
  auth?: CliAuth,
): Octokit {
  const { env, log } = services;
  const chosen = auth ?? (env.GITHUB_TOKEN ? { token: env.GITHUB_TOKEN } : undefined);
  return new services.Octokit({
    baseUrl: getGitHubApiUrl(env),
    log,
    ...(chosen ? { auth: chosen } : {}),
  }) as unknown as Octokit;
}

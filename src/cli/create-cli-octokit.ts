import type { Logger } from "pino";
import { systemClock } from "../clock.js";
import { getGitHubApiUrl, type Env } from "../config.js";
import { createOctokitClass } from "../github/create-octokit.js";
import { GitHubCache } from "../github/github-cache.js";
import type { Octokit } from "../github/octokit.js";
import { createMetrics, type Metrics } from "../metrics/create-metrics.js";

/** How a `talos` subcommand authenticates: a token, or the app (and one of its installations). */
export type CliAuth =
  { token: string } | { appId: string; privateKey: string; installationId?: number };

export interface CliOctokitOptions {
  env: Env;
  log: Logger;
  /** By default GITHUB_TOKEN when it is set, otherwise none (public repositories only). */
  auth?: CliAuth | undefined;
  /** The metrics the client reports into; a registry of its own by default. */
  metrics?: Metrics;
}

/**
 * A GitHub client for a `talos` subcommand, configured as the server's are (cache, rate-limit
 * metrics, throttling and retries from the environment) and pointed at GHE_HOST when set.
 */
export function createCliOctokit(options: CliOctokitOptions): Octokit {
  const { env, log } = options;
  const metrics = options.metrics ?? createMetrics();
  const Octokit = createOctokitClass({
    cache: new GitHubCache({
      ttlMs: env.TALOS_CACHE_TTL_MS,
      max: env.TALOS_CACHE_MAX,
      maxBytes: env.TALOS_CACHE_MAX_MB * 1024 * 1024,
      clock: systemClock,
      onResult: (kind, result) => metrics.cacheRequests.inc({ kind, result }),
      onSize: (bytes) => metrics.cacheBytes.set(bytes),
    }),
    metrics,
    limits: {
      maxRetries: env.TALOS_GITHUB_MAX_RETRIES,
      maxRetryWaitSeconds: env.TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS,
      writeIntervalMs: env.TALOS_GITHUB_WRITE_INTERVAL_MS,
      notificationIntervalMs: env.TALOS_GITHUB_NOTIFICATION_INTERVAL_MS,
    },
  });
  const auth = options.auth ?? (env.GITHUB_TOKEN ? { token: env.GITHUB_TOKEN } : undefined);
  return new Octokit({ baseUrl: getGitHubApiUrl(env), log, ...(auth ? { auth } : {}) });
}

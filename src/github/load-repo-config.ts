import type { Logger } from "pino";
import type { Context } from "probot";
import { REPO_CONFIG_PATH } from "../config.js";
import { parseRepoConfig, restrictiveConfig, type ParsedRepoConfig } from "../parse-repo-config.js";
import type { Octokit, RepoRef } from "./octokit.js";

export interface LoadedRepoConfig extends ParsedRepoConfig {
  /** False when neither the repository nor the owner's `.github` repository has the file. */
  found: boolean;
}

/** `.github/talos.yml` of the event's repository, read with `context.config`. */
export function loadRepoConfig(context: Context): Promise<LoadedRepoConfig> {
  return readRepoConfig(
    () => context.config(REPO_CONFIG_PATH.replace(/^\.github\//, "")),
    context.log,
  );
}

/** The same outside an event (a backfill, say), through the installation's client. */
export function loadRepoConfigOf(
  octokit: Octokit,
  repo: RepoRef,
  log: Logger,
): Promise<LoadedRepoConfig> {
  return readRepoConfig(async () => {
    const { config, files } = await octokit.config.get({ ...repo, path: REPO_CONFIG_PATH });
    return files.some((file) => file.config !== null) ? config : null;
  }, log);
}

/**
 * Reads `.github/talos.yml` (falling back to the owner's `.github` repository, following
 * `_extends`) and validates it. Unparseable YAML or invalid values never fail the event: they
 * fall back toward less power (parse-repo-config.ts) and come back as `errors`, which are logged
 * and shown to maintainers.
 * Errors reading GitHub (an outage, say) do propagate: defaults then could switch features on
 * that the repository switched off.
 */
async function readRepoConfig(
  read: () => Promise<unknown>,
  log: Logger,
): Promise<LoadedRepoConfig> {
  let raw: unknown;
  try {
    raw = await read();
  } catch (error) {
    if (!isConfigParseError(error)) throw error;
    const reason = String((error as Error).message).replace(
      /^\[@probot\/octokit-plugin-config\]\s*/,
      "",
    );
    // A file that exists but cannot be read may have narrowed anything: assume it did.
    const parsed = { config: restrictiveConfig(), errors: [] as string[], found: true };
    parsed.errors.push(`${REPO_CONFIG_PATH}: ${reason}; using the most restrictive settings`);
    log.warn({ errors: parsed.errors }, "repository config is invalid");
    return parsed;
  }
  const parsed = { ...parseRepoConfig(raw), found: raw !== null };
  if (parsed.errors.length > 0)
    log.warn({ errors: parsed.errors }, "repository config has invalid values");
  return parsed;
}

function isConfigParseError(error: unknown): boolean {
  return (
    error instanceof Error &&
    !("status" in error) &&
    error.message.startsWith("[@probot/octokit-plugin-config]")
  );
}

import type { Logger } from "pino";
import type { Context } from "probot";
import { REPO_CONFIG_PATH } from "../config.js";
import { quotedCode } from "../markdown/safe-text.js";
import {
  parseRepoConfig,
  parseRepoConfigFiles,
  restrictiveConfig,
  type ParsedRepoConfig,
} from "../parse-repo-config.js";
import {
  ConfigChainTooLargeError,
  ConfigChainTooLongError,
  ConfigTooDeepError,
  ConfigTooLargeError,
  MAX_CONFIG_CHAIN_CHARS,
  MAX_CONFIG_CHARS,
  MAX_CONFIG_DEPTH,
  MAX_CONFIG_FILES,
} from "./config-memo-plugin.js";
import type { Octokit, RepoRef } from "./octokit.js";

export interface LoadedRepoConfig extends ParsedRepoConfig {
  /** False when neither the repository nor the owner's `.github` repository has the file. */
  found: boolean;
}

/**
 * `.github/talos.yml` of the event's repository, read as `context.config` reads it (Probot's
 * config plugin: the default branch, the owner's `.github` fallback, `_extends`), but with the
 * files it read, so that an `_extends` naming a file that cannot be read is seen.
 */
export function loadRepoConfig(context: Context): Promise<LoadedRepoConfig> {
  return loadRepoConfigOf(context.octokit as unknown as Octokit, context.repo(), context.log);
}

/** The same outside an event (a backfill, say), through the installation's client. */
export function loadRepoConfigOf(
  octokit: Octokit,
  repo: RepoRef,
  log: Logger,
): Promise<LoadedRepoConfig> {
  return readRepoConfig(
    () => octokit.config.get({ owner: repo.owner, repo: repo.repo, path: REPO_CONFIG_PATH }),
    log,
  );
}

interface ConfigFile {
  owner: string;
  repo: string;
  path: string;
  config: unknown;
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
  read: () => Promise<{ files: ConfigFile[] }>,
  log: Logger,
): Promise<LoadedRepoConfig> {
  let files: ConfigFile[];
  try {
    ({ files } = await read());
  } catch (error) {
    if (error instanceof ConfigTooLargeError) {
      return restrictive(
        `is ${error.chars} characters long (or a file it extends is), over the ${MAX_CONFIG_CHARS} Talos reads; using the most restrictive settings`,
        log,
      );
    }
    if (error instanceof ConfigTooDeepError) {
      return restrictive(
        `nests ${error.depth} levels deep (or a file it extends does), over the ${MAX_CONFIG_DEPTH} Talos reads; using the most restrictive settings`,
        log,
      );
    }
    if (error instanceof ConfigChainTooLongError) {
      return restrictive(
        `its \`_extends\` chain goes past the ${MAX_CONFIG_FILES} files Talos reads (one found missing counted), to ${quotedCode(error.next)}; using the most restrictive settings`,
        log,
      );
    }
    if (error instanceof ConfigChainTooLargeError) {
      return restrictive(
        `with the files it extends, is at least ${error.chars} characters long, over the ${MAX_CONFIG_CHAIN_CHARS} Talos reads across an \`_extends\` chain; using the most restrictive settings`,
        log,
      );
    }
    if (!isConfigParseError(error)) throw error;
    // The parser's first line says what is wrong; the lines after it quote the file.
    const message = String((error as Error).message).slice(0, 1_000);
    const reason = message.replace(/^\[@probot\/octokit-plugin-config\]\s*/, "").split("\n")[0]!;
    // A file that exists but cannot be read may have narrowed anything: assume it did.
    return restrictive(
      `cannot be read as YAML (${quotedCode(reason, 200)}); using the most restrictive settings`,
      log,
    );
  }
  const first = files.findIndex((file) => file.config !== null);
  if (first === -1) return { ...parseRepoConfig(null), found: false };
  // Every file after the first found one was named by `_extends`; the plugin reads a missing one
  // (or one of a repository the installation cannot see: a 404 too) as no file. What it held
  // may have narrowed anything, so assume it did.
  const missing = files.slice(first).find((file) => file.config === null);
  if (missing) {
    return restrictive(
      `\`_extends\` names ${quotedCode(`${missing.owner}/${missing.repo}:${missing.path}`)}, which does not exist or Talos cannot read; using the most restrictive settings`,
      log,
    );
  }
  const configs = files.slice(first).map((file) => file.config);
  const parsed = { ...parseRepoConfigFiles(configs), found: true };
  if (parsed.errors.length > 0)
    log.warn({ errors: parsed.errors }, "repository config has invalid values");
  return parsed;
}

function restrictive(reason: string, log: Logger): LoadedRepoConfig {
  const parsed = {
    config: restrictiveConfig(),
    errors: [`${REPO_CONFIG_PATH}: ${reason}`],
    found: true,
  };
  log.warn({ errors: parsed.errors }, "repository config is invalid");
  return parsed;
}

function isConfigParseError(error: unknown): boolean {
  return (
    error instanceof Error &&
    !("status" in error) &&
    error.message.startsWith("[@probot/octokit-plugin-config]")
  );
}

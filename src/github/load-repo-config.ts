import type { Context } from "probot";
import { parseRepoConfig, REPO_CONFIG_PATH, type ParsedRepoConfig } from "../config.js";

export interface LoadedRepoConfig extends ParsedRepoConfig {
  /** False when neither the repository nor the owner's `.github` repository has the file. */
  found: boolean;
}

/**
 * Reads `.github/talos.yml` (falling back to the owner's `.github` repository, following
 * `_extends`) and validates it. Unparseable YAML or invalid values never fail the event: they
 * fall back to the defaults and come back as `errors`, which are logged and shown to maintainers.
 * Errors reading GitHub (an outage, say) do propagate: defaults then could switch features on
 * that the repository switched off.
 */
export async function loadRepoConfig(context: Context): Promise<LoadedRepoConfig> {
  let raw: unknown;
  try {
    raw = await context.config(REPO_CONFIG_PATH.replace(/^\.github\//, ""));
  } catch (error) {
    if (!isConfigParseError(error)) throw error;
    const reason = String((error as Error).message).replace(
      /^\[@probot\/octokit-plugin-config\]\s*/,
      "",
    );
    const parsed = { ...parseRepoConfig(null), found: true };
    parsed.errors.push(`${REPO_CONFIG_PATH}: ${reason}; using the defaults`);
    context.log.warn({ errors: parsed.errors }, "repository config is invalid");
    return parsed;
  }
  const parsed = { ...parseRepoConfig(raw), found: raw !== null };
  if (parsed.errors.length > 0) {
    context.log.warn({ errors: parsed.errors }, "repository config has invalid values");
  }
  return parsed;
}

function isConfigParseError(error: unknown): boolean {
  return (
    error instanceof Error &&
    !("status" in error) &&
    error.message.startsWith("[@probot/octokit-plugin-config]")
  );
}

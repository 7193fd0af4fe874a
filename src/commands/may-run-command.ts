import type { RepoConfig } from "../config.js";
import type { ParsedRepoConfig } from "../parse-repo-config.js";

/**
 * Commands spend the app's budget and act in the repository, so only the associations the
 * repository allows (maintainers by default) may run them. `help` can be opened to everyone.
 */
export function mayRunCommand(name: string, association: string, config: RepoConfig): boolean {
  const { allowed_associations, help_for_everyone } = config.commands;
  if (name === "help" && help_for_everyone) return true;
  return allowed_associations.some((allowed) => allowed === association);
}

/** Whether the author may run any command at all: `help`, when it is open to everyone, counts. */
export function mayRunAnyCommand(association: string, config: RepoConfig): boolean {
  const { allowed_associations, help_for_everyone } = config.commands;
  return help_for_everyone || allowed_associations.some((allowed) => allowed === association);
}

/**
 * Whether an author the associations refuse may still run `name` as an admin of the repository
 * (any command, when undefined: before the parse). Only `config`, and only while
 * `.github/talos.yml` has errors: its fallback lets OWNER alone run commands, and in an
 * organization's repository nobody comments as OWNER (its admins arrive as MEMBER), so one
 * mistake in the file had silenced every maintainer, the command that shows it included. GitHub
 * is asked the author's permission (`permissionOf`, cached) only for a `config` command.
 */
export async function mayReadBrokenConfig(
  name: string | undefined,
  config: ParsedRepoConfig,
  permissionOf: () => Promise<string>,
): Promise<boolean> {
  if (config.errors.length === 0 || config.config.commands.disabled.includes("config"))
    return false;
  if (name === undefined) return true;
  return name === "config" && (await permissionOf()) === "admin";
}

/**
 * What a webhook says of an organization member whose membership is private: GitHub computes
 * `author_association` for no viewer, so one who reaches the repository through a team arrives
 * as a contributor, or as nobody.
 */
const MAYBE_PRIVATE_MEMBER = new Set([
  "CONTRIBUTOR",
  "FIRST_TIME_CONTRIBUTOR",
  "FIRST_TIMER",
  "NONE",
]);

/**
 * The author's association as commands see it. When the repository lets members run commands
 * and the payload's association does not, GitHub is asked the author's permission here
 * (`permissionOf`, cached): write or admin is a member's, whose membership is private. Anything
 * else (read, none, a deleted account) leaves the payload's association.
 */
export async function commandAssociation(
  association: string,
  config: RepoConfig,
  permissionOf: () => Promise<string>,
): Promise<{ association: string; seenAs?: string }> {
  const allowed: readonly string[] = config.commands.allowed_associations;
  if (allowed.includes(association)) return { association };
  if (!allowed.includes("MEMBER") || !MAYBE_PRIVATE_MEMBER.has(association)) return { association };
  const permission = await permissionOf();
  return permission === "admin" || permission === "write"
    ? { association: "MEMBER", seenAs: permission }
    : { association };
}

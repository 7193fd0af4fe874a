import type { RepoConfig } from "../config.js";

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

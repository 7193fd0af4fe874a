import type { Logger } from "pino";
import type { CommandName } from "../config.js";
import type { LoadedRepoConfig } from "../github/load-repo-config.js";
import type { RepoRef } from "../github/octokit.js";

/** What a command gets to work with. The repository is fixed by the event, never by arguments. */
export interface CommandContext {
  args: string;
  repo: RepoRef;
  issueNumber: number;
  isPullRequest: boolean;
  config: LoadedRepoConfig;
  registry: CommandRegistry;
  /** The app's slug, for `@<slug>` in help texts. */
  slug: string;
  log: Logger;
}

export interface Command {
  name: CommandName;
  /** Shown by `help`, e.g. `/talos ask <question>`. */
  usage: string;
  summary: string;
  /** Returns the Markdown of the reply. */
  run(context: CommandContext): Promise<string>;
}

export interface CommandRegistry {
  get(name: string): Command | undefined;
  /** The commands a repository's config leaves switched on, in registration order. */
  enabled(config: LoadedRepoConfig): Command[];
  isEnabled(name: string, config: LoadedRepoConfig): boolean;
}

/** The place later capabilities add commands (`ask`, `summarize`, `similar`, …). */
export function createCommandRegistry(commands: Command[]): CommandRegistry {
  const byName = new Map<string, Command>();
  for (const command of commands) {
    if (byName.has(command.name)) throw new Error(`command "${command.name}" is registered twice`);
    byName.set(command.name, command);
  }
  const isEnabled = (name: string, { config }: LoadedRepoConfig) =>
    byName.has(name) && !config.commands.disabled.some((disabled) => disabled === name);
  return {
    get: (name) => byName.get(name),
    enabled: (config) => [...byName.values()].filter((c) => isEnabled(c.name, config)),
    isEnabled,
  };
}

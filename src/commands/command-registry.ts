import type { Logger } from "pino";
import type { Assistant } from "../agent/assistant.js";
import type { Clock } from "../clock.js";
import type { CommandName, RepoConfig } from "../config.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import type { CommentInfo, IssueInfo, RepoClient } from "../github/create-repo-client.js";
import type { LoadedRepoConfig } from "../github/load-repo-config.js";
import type { PullRequestClient } from "../github/create-pull-request-client.js";
import type { RepoRef } from "../github/octokit.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import type { AnswerSource } from "../memory/memory-inputs.js";
import type { MemoryInput, MemoryStore } from "../memory/memory-store.js";

/** What a command gets to work with. The repository is fixed by the event, never by arguments. */
export interface CommandContext {
  args: string;
  repo: RepoRef;
  /** The issue or pull request commented on, as the webhook payload describes it. */
  issue: IssueInfo;
  config: LoadedRepoConfig;
  registry: CommandRegistry;
  /** Reads of this repository (cached). */
  github: RepoClient;
  /** Pull-request reads and the review write, for commands on a pull request. */
  pulls: PullRequestClient;
  /** The language model and its tools; absent when none is configured. */
  assistant: Assistant | undefined;
  /** The comment that holds the command. */
  comment: { id: number; author: string; url: string };
  /** This repository's memory, opened on first use; undefined when its config switches it off. */
  memory: () => Promise<MemoryStore | undefined>;
  /** The app's slug, for `@<slug>` in help texts. */
  slug: string;
  /** Talos's own login (`<slug>[bot]`): the author of the comments and reviews it may edit. */
  botLogin: string;
  /** Everything a command posts itself (a review) goes through `toSafeMarkdown` here. */
  markdown: MarkdownService;
  /** Retries of what a command posts itself (a review) after a rate limit. */
  limits: GitHubLimits;
  clock: Clock;
  log: Logger;
}

/** Where a command's answer is given, for remembering it. */
export function answerSource(
  context: Pick<CommandContext, "github" | "issue" | "comment" | "slug" | "clock">,
): AnswerSource {
  return {
    repo: `${context.github.repo.owner}/${context.github.repo.repo}`,
    number: context.issue.number,
    slug: context.slug,
    url: context.comment.url,
    createdAt: new Date(context.clock.now()).toISOString(),
  };
}

/**
 * A command's answer. By default it is the reply to the command's comment; a `marker` names a
 * comment the thread keeps one of (a summary, say), which is edited in place on every run.
 * `seen` hands over the thread's comments when the command has just read them all, so the
 * reply's marker is looked for there instead of in a second listing.
 */
export type CommandReply =
  | string
  | {
      body: string;
      marker?: string;
      seen?: CommentInfo[];
      /** Stored in memory once the reply is posted (an answer, say). */
      remember?: MemoryInput;
      /** Issues and pull requests the reply names that Talos found outside `github` (memory). */
      references?: number[];
      /** Nothing to post: the command's answer is elsewhere (a review), or deliberately none. */
      silent?: boolean;
      /** Posted only if the reply is not there yet (see `UpsertReplyOptions.keepExisting`). */
      keepExisting?: boolean;
      /** Posted only if this says yes, asked as it would be (see `UpsertReplyOptions.claim`). */
      claim?: () => Promise<boolean>;
    };

export interface Command {
  name: CommandName;
  /** Shown by `help`, e.g. `/talos ask <question>`. */
  usage: string;
  summary: string;
  /** Whether the repository's config switches the command on, besides `commands.disabled`. */
  isEnabled?(config: RepoConfig): boolean;
  run(context: CommandContext): Promise<CommandReply>;
}

export interface CommandRegistry {
  get(name: string): Command | undefined;
  /** The commands a repository's config leaves switched on, in registration order. */
  enabled(config: LoadedRepoConfig): Command[];
  isEnabled(name: string, config: LoadedRepoConfig): boolean;
}

/** The place capabilities add commands (`ask`, `summarize`, `similar`, …). */
export function createCommandRegistry(commands: Command[]): CommandRegistry {
  const byName = new Map<string, Command>();
  for (const command of commands) {
    if (byName.has(command.name)) throw new Error(`command "${command.name}" is registered twice`);
    byName.set(command.name, command);
  }
  const isEnabled = (name: string, { config }: LoadedRepoConfig) => {
    const command = byName.get(name);
    if (!command || config.commands.disabled.some((disabled) => disabled === name)) return false;
    return command.isEnabled?.(config) ?? true;
  };
  return {
    get: (name) => byName.get(name),
    enabled: (config) => [...byName.values()].filter((c) => isEnabled(c.name, config)),
    isEnabled,
  };
}

import type { Logger } from "pino";
import type { Assistant } from "../agent/assistant.js";
import type { Clock } from "../clock.js";
import { replyMarker } from "../github/comment-markers.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import { createPullRequestClient } from "../github/create-pull-request-client.js";
import { createRepoClient, type IssueInfo } from "../github/create-repo-client.js";
import type { LoadedRepoConfig } from "../github/load-repo-config.js";
import type { Octokit, RepoRef } from "../github/octokit.js";
import { upsertReply } from "../github/upsert-reply.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import type { MemoryInput, MemoryStore } from "../memory/memory-store.js";
import type { CommandContext, CommandRegistry } from "./command-registry.js";
import type { ParsedCommand } from "./parse-command.js";
import { runCommand } from "./run-command.js";

export interface AnswerCommandOptions {
  parsed: ParsedCommand;
  octokit: Octokit;
  repo: RepoRef;
  issue: IssueInfo;
  comment: CommandContext["comment"] & { createdAt: string };
  config: LoadedRepoConfig;
  registry: CommandRegistry;
  assistant: Assistant | undefined;
  memory: () => Promise<MemoryStore | undefined>;
  identity: { slug: string; botLogin: string };
  markdown: MarkdownService;
  limits: GitHubLimits;
  clock: Clock;
  log: Logger;
}

/**
 * An accepted command: a 👀 reaction, the command, then exactly one reply (edited in place if it
 * already exists), and whatever the command asked to remember once the reply is up (a failure
 * to remember it does not fail the job: see `remember`).
 */
export async function answerCommand(options: AnswerCommandOptions): Promise<void> {
  const { octokit, repo, issue, comment, log } = options;
  await octokit.rest.reactions.createForIssueComment({
    ...repo,
    comment_id: comment.id,
    content: "eyes",
  });
  const github = createRepoClient(octokit, repo);
  const pulls = createPullRequestClient(octokit, repo);
  const reply = await runCommand(options.parsed, {
    repo,
    issue,
    comment: { id: comment.id, author: comment.author, url: comment.url },
    config: options.config,
    registry: options.registry,
    github,
    pulls,
    assistant: options.assistant,
    memory: options.memory,
    slug: options.identity.slug,
    botLogin: options.identity.botLogin,
    markdown: options.markdown,
    limits: options.limits,
    clock: options.clock,
    log,
  });
  // A review answers for itself; an over-budget command gets one notice a day (its claim), then
  // silence.
  if (reply.silent) return log.info("command answered without a reply comment");
  const result = await upsertReply({
    octokit,
    ...repo,
    issueNumber: issue.number,
    // A reply is found again after this comment; a thread-wide comment anywhere in the thread.
    ...(reply.marker
      ? { marker: reply.marker }
      : { marker: replyMarker(comment.id), since: comment.createdAt }),
    body: reply.body,
    // What this event read: the thread, the issues its tools fetched, what memory recalled.
    references: [...github.retrieved, ...(reply.references ?? [])],
    markdown: options.markdown,
    knownComments: reply.seen,
    botLogin: options.identity.botLogin,
    limits: options.limits,
    clock: options.clock,
    keepExisting: reply.keepExisting,
    claim: reply.claim,
  });
  log.info(result, "command answered");
  if (reply.remember) await remember(reply.remember, options);
}

/**
 * Stores what the command asked to remember, once its reply is posted. A failure (an embeddings
 * or memory outage) is logged and the job ends: a retry would run the model again, charge the
 * budget again and rewrite the reply maintainers may already have read, for a copy that only a
 * later `ask` recalls.
 */
async function remember(
  input: MemoryInput,
  options: Pick<AnswerCommandOptions, "memory" | "log">,
): Promise<void> {
  try {
    const memory = await options.memory();
    if (memory) await memory.add(input);
  } catch (error) {
    options.log.error(
      { err: error, memory: input.id },
      "the reply is posted but was not remembered: a later ask will not recall it",
    );
  }
}

import type { Context } from "probot";
import { z } from "zod";
import type { CommandRegistry } from "../commands/command-registry.js";
import { mayRunCommand } from "../commands/may-run-command.js";
import { parseCommand } from "../commands/parse-command.js";
import { runCommand } from "../commands/run-command.js";
import type { Assistant } from "../agent/assistant.js";
import type { Clock } from "../clock.js";
import type { AppIdentityLoader } from "../github/app-identity.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import { hasTalosMarker, replyMarker } from "../github/comment-markers.js";
import { createRepoClient, toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { upsertReply } from "../github/upsert-reply.js";
import { IssuePayload, readPayload } from "./read-payload.js";

const CommentCreated = z.object({
  comment: z.object({
    id: z.number(),
    body: z.string().nullable(),
    author_association: z.string(),
    created_at: z.string(),
  }),
  issue: IssuePayload,
  repository: z.object({ name: z.string(), owner: z.object({ login: z.string() }) }),
});

export interface CommentHandlerDeps {
  identity: AppIdentityLoader;
  commands: CommandRegistry;
  limits: GitHubLimits;
  clock: Clock;
  assistant: Assistant | undefined;
}

/** A comment on an issue or pull request: run the first `/talos` command in it, if any. */
export function createIssueCommentCreatedHandler(deps: CommentHandlerDeps) {
  return async (context: Context<"issue_comment.created">): Promise<void> => {
    const { comment, issue, repository } = readPayload(CommentCreated, context.payload);
    const body = comment.body ?? "";
    if (hasTalosMarker(body))
      return context.log.debug("ignored: the comment carries a Talos marker");
    const identity = await deps.identity.get();
    const parsed = parseCommand(body, { slug: identity.slug });
    if (!parsed) return context.log.debug("ignored: the comment holds no command");
    const log = context.log.child({ command: parsed.name });
    const config = await loadRepoConfig(context);
    if (!mayRunCommand(parsed.name, comment.author_association, config.config)) {
      return log.info(
        { association: comment.author_association },
        "ignored: this author may not run commands here",
      );
    }

    const repo = { owner: repository.owner.login, repo: repository.name };
    await context.octokit.rest.reactions.createForIssueComment({
      ...repo,
      comment_id: comment.id,
      content: "eyes",
    });
    const reply = await runCommand(parsed, {
      repo,
      issue: toIssueInfo(issue),
      config,
      registry: deps.commands,
      github: createRepoClient(context.octokit, repo),
      assistant: deps.assistant,
      slug: identity.slug,
      log,
    });
    const result = await upsertReply({
      octokit: context.octokit,
      ...repo,
      issueNumber: issue.number,
      // A reply is found again after this comment; a thread-wide comment anywhere in the thread.
      ...(reply.marker
        ? { marker: reply.marker }
        : { marker: replyMarker(comment.id), since: comment.created_at }),
      body: reply.body,
      knownComments: reply.seen,
      botLogin: identity.botLogin,
      limits: deps.limits,
      clock: deps.clock,
    });
    log.info(result, "command answered");
  };
}

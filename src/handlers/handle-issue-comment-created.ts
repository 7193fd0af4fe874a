import type { Context } from "probot";
import { z } from "zod";
import type { Assistant } from "../agent/assistant.js";
import type { TokenBudgets } from "../agent/token-budgets.js";
import type { Clock } from "../clock.js";
import { answerCommand } from "../commands/answer-command.js";
import type { CommandRegistry } from "../commands/command-registry.js";
import {
  commandAssociation,
  mayReadBrokenConfig,
  mayRunAnyCommand,
  mayRunCommand,
} from "../commands/may-run-command.js";
import { hasCommandCandidate } from "../commands/parse-command.js";
import type { AppIdentityLoader } from "../github/app-identity.js";
import { isTalosComment } from "../github/comment-markers.js";
import type { GitHubLimits } from "../github/create-octokit.js";
import { toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { statusOf } from "../github/octokit.js";
import type { JobRun } from "../jobs/job-runner.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import { openRepoMemory, type MemoryAccess } from "../memory/open-repo-memory.js";
import { jobAssistant } from "./job-assistant.js";
import {
  InstallationPayload,
  IssuePayload,
  OwnedRepositoryPayload,
  readPayload,
  SenderPayload,
} from "./read-payload.js";
import { isBotSender } from "./guard-event.js";

const CommentCreated = z.object({
  comment: z.object({
    id: z.number(),
    body: z.string().nullable(),
    author_association: z.string(),
    created_at: z.string(),
    html_url: z.string(),
    user: SenderPayload.nullable(),
    // Set when an app posted the comment, also for a user (with a user-to-server token).
    // Any value but null is an app, whatever its shape (an app without a slug was parked): an
    // odd one must not let the comment run as a maintainer's.
    performed_via_github_app: z.unknown().optional(),
  }),
  issue: IssuePayload,
  repository: OwnedRepositoryPayload,
  installation: InstallationPayload,
});

/** What `commentWithoutWork` reads: a comment as the payload holds it. */
const CommentBody = z.object({
  comment: CommentCreated.shape.comment.pick({
    body: true,
    performed_via_github_app: true,
    user: true,
  }),
});

/**
 * Why a comment is no work for Talos, told from the payload alone, or undefined when it may be:
 * a comment of its own (it ends with a marker), one posted through a GitHub App, or, once the
 * app's slug is known, one without a line that could be a command (most comments). A payload
 * it cannot read may be work: its job parks it with the error. The guard uses it so that such
 * comments are never journaled, and the job (for one journaled before) to end early.
 */
export function commentWithoutWork(
  payload: unknown,
  slug: string | undefined,
): { reason: string; app?: string } | undefined {
  const parsed = CommentBody.safeParse(payload);
  if (!parsed.success) return undefined;
  const { body, performed_via_github_app: viaApp, user } = parsed.data.comment;
  if (isTalosComment(body ?? "")) return { reason: "the comment ends with a Talos marker" };
  // The sender is checked before; its author too, should the two ever differ.
  if (isBotSender(user)) return { reason: "the comment's author is a bot" };
  // Bots never trigger anything: an app acting for a maintainer keeps their login and
  // association, but may be an automation that anyone's text drives (another AI agent).
  if (viaApp !== null && viaApp !== undefined) {
    const slug = (viaApp as { slug?: unknown }).slug;
    return {
      reason: "the comment was posted through a GitHub App",
      ...(typeof slug === "string" ? { app: slug } : {}),
    };
  }
  // A cheap scan: most comments hold no line that could be a command.
  if (slug !== undefined && !hasCommandCandidate(body ?? "", { slug }))
    return { reason: "the comment holds no command" };
  return undefined;
}

export interface CommentHandlerDeps extends MemoryAccess {
  identity: AppIdentityLoader;
  budgets: TokenBudgets;
  commands: CommandRegistry;
  assistant: Assistant | undefined;
  markdown: MarkdownService;
  limits: GitHubLimits;
  clock: Clock;
}

/**
 * A comment on an issue or pull request: run the first `/talos` command in it, if any, unless
 * the comment was posted through a GitHub App.
 */
export function createIssueCommentCreatedHandler(deps: CommentHandlerDeps) {
  return async (context: Context<"issue_comment.created">, run: JobRun): Promise<void> => {
    const { comment, issue, repository, installation } = readPayload(
      CommentCreated,
      context.payload,
    );
    const body = comment.body ?? "";
    // Those the guard let through before the app's slug was known, or journaled before.
    const early = commentWithoutWork(context.payload, undefined);
    if (early) return context.log.debug({ app: early.app }, `ignored: ${early.reason}`);
    const identity = await deps.identity.get();
    // A cheap scan first: most comments hold no line that could be a command.
    if (!hasCommandCandidate(body, { slug: identity.slug }))
      return context.log.debug("ignored: the comment holds no command");
    const config = await loadRepoConfig(context);
    const askPermission = () => permissionOf(context, repository, comment.user?.login);
    // GitHub is asked only when the payload's association is refused, and once.
    let resolved: Promise<string> | undefined;
    const association = () =>
      (resolved ??= commandAssociation(
        comment.author_association,
        config.config,
        askPermission,
      ).then(({ association, seenAs }) => {
        if (seenAs) {
          context.log.info(
            { association: comment.author_association, permission: seenAs },
            "author taken as a member: their repository permission says so (private membership)",
          );
        }
        return association;
      }));
    const mayRun = async (name?: string) => {
      const may = (as: string) =>
        name === undefined
          ? mayRunAnyCommand(as, config.config)
          : mayRunCommand(name, as, config.config);
      if (may(comment.author_association) || may(await association())) return true;
      const admin = await mayReadBrokenConfig(name, config, askPermission);
      if (admin && name !== undefined) {
        context.log.info(
          { association: comment.author_association, permission: "admin" },
          "author may read the broken config: their repository permission is admin",
        );
      }
      return admin;
    };
    // Checked before the Markdown parse, so that nobody else's text is parsed for one (but while
    // the config is broken, when an admin, whatever their association, may run `config`).
    if (!(await mayRun())) {
      return context.log.info(
        { association: comment.author_association },
        "ignored: this author may not run commands here",
      );
    }
    const parsed = await deps.markdown.parseCommand(body, { slug: identity.slug });
    if (!parsed) return context.log.debug("ignored: the comment holds no command");
    const log = context.log.child({ command: parsed.name });
    if (!(await mayRun(parsed.name))) {
      return log.info(
        { association: comment.author_association },
        "ignored: this author may not run commands here",
      );
    }
    const event = { installation: installation.id, repository };
    await answerCommand({
      ...deps,
      parsed,
      octokit: context.octokit,
      repo: { owner: repository.owner.login, repo: repository.name },
      issue: toIssueInfo(issue),
      comment: {
        id: comment.id,
        author: comment.user?.login ?? "",
        url: comment.html_url,
        createdAt: comment.created_at,
      },
      config,
      registry: deps.commands,
      assistant: await jobAssistant(deps.assistant, deps.budgets, {
        installation: installation.id,
        repository: repository.id,
        repositoryTokens: config.config.budget.daily_tokens,
        job: run,
      }),
      memory: () => openRepoMemory(deps, event, config.config),
      identity,
      log,
    });
  };
}

/**
 * The author's permission on the repository (admin, write, read or none), as GitHub says it to
 * the installation; a user GitHub does not know (a deleted account) has none.
 */
async function permissionOf(
  context: Context<"issue_comment.created">,
  repository: { name: string; owner: { login: string } },
  login: string | undefined,
): Promise<string> {
  if (!login) return "none";
  try {
    const { data } = await context.octokit.rest.repos.getCollaboratorPermissionLevel({
      owner: repository.owner.login,
      repo: repository.name,
      username: login,
    });
    return data.permission;
  } catch (error) {
    if (statusOf(error) === 404) return "none";
    throw error;
  }
}

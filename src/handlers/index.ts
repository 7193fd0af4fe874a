import { emitterEventNames } from "@octokit/webhooks";
import type { Probot } from "probot";
import type { BackfillRunner } from "../memory/backfill-runner.js";
import type { SuspensionMarks } from "../memory/suspension-marks.js";
import type { RateLimitTracker } from "../metrics/rate-limit-plugin.js";
import { guardEvent, watchEvent, type EventPipelineDeps } from "./guard-event.js";
import { createInstallationChangedHandler } from "./handle-installation-changed.js";
import { createIssuesOpenedHandler, type IssuesOpenedDeps } from "./handle-issues-opened.js";
import {
  commentWithoutWork,
  createIssueCommentCreatedHandler,
  type CommentHandlerDeps,
} from "./handle-issue-comment-created.js";
import {
  commentChangeWithoutWork,
  createIssueCommentChangedHandler,
} from "./handle-issue-comment-changed.js";
import {
  createRepositoryChangedHandler,
  type RepositoryChangedEvent,
} from "./handle-repository-changed.js";
import {
  createPullRequestChangedHandler,
  isBaseChange,
  type PullRequestChangedEvent,
} from "./handle-pull-request-changed.js";
import { createThreadChangedHandler, type ThreadChangedEvent } from "./handle-thread-changed.js";

export type HandlerDeps = EventPipelineDeps &
  CommentHandlerDeps &
  IssuesOpenedDeps & {
    backfill: BackfillRunner;
    suspensions: SuspensionMarks;
    rateLimits: Pick<RateLimitTracker, "forget">;
  };

const THREAD_CHANGES: ThreadChangedEvent[] = [
  "issues.edited",
  "issues.closed",
  "issues.reopened",
  "issues.deleted",
  "issues.transferred",
  "pull_request.closed",
];

const PULL_REQUEST_CHANGES: Exclude<PullRequestChangedEvent, "pull_request.edited">[] = [
  "pull_request.opened",
  "pull_request.reopened",
  "pull_request.ready_for_review",
  "pull_request.synchronize",
];

const REPOSITORY_CHANGES: RepositoryChangedEvent[] = [
  "repository.deleted",
  "repository.renamed",
  "repository.transferred",
];

/** Every action of an event that no feature handler takes (an event fires one handler). */
function otherActionsOf(event: "issues" | "pull_request" | "repository", taken: string[]) {
  return emitterEventNames.filter(
    (name): name is Extract<typeof name, `${typeof event}.${string}`> =>
      name.startsWith(`${event}.`) && !taken.includes(name),
  );
}

/**
 * The single list of webhook subscriptions. Keep `app.yml`'s `default_events` in step: a test
 * fails when the two disagree.
 */
export function registerHandlers(app: Pick<Probot, "on">, deps: HandlerDeps): void {
  // A comment's only work is a command, which a bot never runs: one that holds none is not
  // journaled (told once the app's slug is known: the first comment's job reads it).
  app.on(
    "issue_comment.created",
    guardEvent(deps, "comment", createIssueCommentCreatedHandler(deps), {
      bots: "ignore",
      noWork: (payload) => commentWithoutWork(payload, deps.identity.known()?.slug),
    }),
  );
  // Talos's answer or summary deleted, or edited by someone else, leaves memory, whoever did it
  // (a bot too), as does the question of an `ask` comment deleted or edited, and the thread's
  // summary and answers made since a comment that lost words (deleted, or edited out); a change
  // that took out no words is no work and is not journaled. On the issue's thread, so an answer
  // still being written is stored before it goes.
  app.on(
    ["issue_comment.deleted", "issue_comment.edited"],
    guardEvent(deps, "comment-changed", createIssueCommentChangedHandler(deps), {
      bots: "follow",
      noWork: (payload) => commentChangeWithoutWork(payload, deps.identity.known()),
    }),
  );
  app.on(
    "issues.opened",
    guardEvent(deps, "issue-opened", createIssuesOpenedHandler(deps), { bots: "follow" }),
  );
  const threadChanged = guardEvent(deps, "thread-changed", createThreadChangedHandler(deps), {
    bots: "follow",
  });
  app.on(THREAD_CHANGES, threadChanged);
  // Bots' pull requests are remembered; their summaries and reviews are skipped in the handler.
  const pullRequestChanged = guardEvent(
    deps,
    "pull-request",
    createPullRequestChangedHandler(deps),
    { bots: "follow" },
  );
  app.on(PULL_REQUEST_CHANGES, pullRequestChanged);
  // A retarget changes the pull request's diff though not its head: it is journaled as the
  // pull request's work, which remembers it and writes its summary again (it had only updated
  // memory, and the summary went on describing the diff against the old base until the next
  // push). Any other edit (title, body) only updates memory. One registration, so that one
  // delivery still runs one handler.
  app.on("pull_request.edited", (context) =>
    isBaseChange(context.payload) ? pullRequestChanged(context) : threadChanged(context),
  );
  app.on(
    [
      "installation.created",
      "installation.deleted",
      "installation.suspend",
      "installation.unsuspend",
      "installation.new_permissions_accepted",
      "installation_repositories.added",
      "installation_repositories.removed",
    ],
    guardEvent(deps, "installation-changed", createInstallationChangedHandler(deps), {
      bots: "follow",
    }),
  );
  // Memory follows its repository; guardEvent evicts the cache for these as watchEvent does.
  app.on(
    REPOSITORY_CHANGES,
    guardEvent(deps, "repository-changed", createRepositoryChangedHandler(deps), {
      bots: "follow",
    }),
  );
  // Heard only to keep the cache true to GitHub (see github/get-cache-evictions.ts).
  const taken = [
    "issues.opened",
    ...THREAD_CHANGES,
    ...PULL_REQUEST_CHANGES,
    "pull_request.edited",
    ...REPOSITORY_CHANGES,
  ];
  app.on(
    [
      "label",
      "push",
      "member",
      ...otherActionsOf("issues", taken),
      ...otherActionsOf("pull_request", taken),
      ...otherActionsOf("repository", taken),
    ],
    watchEvent(deps),
  );
}

import { emitterEventNames } from "@octokit/webhooks";
import type { Probot } from "probot";
import type { BackfillRunner } from "../memory/backfill-runner.js";
import { guardEvent, watchEvent, type EventPipelineDeps } from "./guard-event.js";
import { createInstallationChangedHandler } from "./handle-installation-changed.js";
import { createIssuesOpenedHandler, type IssuesOpenedDeps } from "./handle-issues-opened.js";
import {
  createIssueCommentCreatedHandler,
  type CommentHandlerDeps,
} from "./handle-issue-comment-created.js";
import { createThreadChangedHandler, type ThreadChangedEvent } from "./handle-thread-changed.js";

export type HandlerDeps = EventPipelineDeps &
  CommentHandlerDeps &
  IssuesOpenedDeps & { backfill: BackfillRunner };

const THREAD_CHANGES: ThreadChangedEvent[] = [
  "issues.edited",
  "issues.closed",
  "issues.reopened",
  "issues.deleted",
  "issues.transferred",
  "pull_request.opened",
  "pull_request.edited",
  "pull_request.closed",
  "pull_request.reopened",
];

/** Every action of an event that no feature handler takes (an event fires one handler). */
function otherActionsOf(event: "issues" | "pull_request", taken: string[]) {
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
  app.on("issue_comment.created", guardEvent(deps, createIssueCommentCreatedHandler(deps)));
  app.on("issues.opened", guardEvent(deps, createIssuesOpenedHandler(deps)));
  app.on(THREAD_CHANGES, guardEvent(deps, createThreadChangedHandler(deps)));
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
    guardEvent(deps, createInstallationChangedHandler(deps)),
  );
  // Heard only to keep the cache true to GitHub (see github/get-cache-evictions.ts).
  const taken = ["issues.opened", ...THREAD_CHANGES];
  app.on(
    [
      "label",
      "repository",
      "push",
      "member",
      ...otherActionsOf("issues", taken),
      ...otherActionsOf("pull_request", taken),
    ],
    watchEvent(deps),
  );
}

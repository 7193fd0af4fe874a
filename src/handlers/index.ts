import { emitterEventNames } from "@octokit/webhooks";
import type { Probot } from "probot";
import { guardEvent, watchEvent, type EventPipelineDeps } from "./guard-event.js";
import { handleInstallationChanged } from "./handle-installation-changed.js";
import { createIssuesOpenedHandler, type IssuesOpenedDeps } from "./handle-issues-opened.js";
import {
  createIssueCommentCreatedHandler,
  type CommentHandlerDeps,
} from "./handle-issue-comment-created.js";

export type HandlerDeps = EventPipelineDeps & CommentHandlerDeps & IssuesOpenedDeps;

/** Every action of an event except those a feature handler takes (an event fires one handler). */
function actionsOf(event: "issues" | "pull_request", except: string[] = []) {
  return emitterEventNames.filter(
    (name): name is Extract<typeof name, `${typeof event}.${string}`> =>
      name.startsWith(`${event}.`) && !except.includes(name),
  );
}

/**
 * The single list of webhook subscriptions. Keep `app.yml`'s `default_events` in step: a test
 * fails when the two disagree.
 */
export function registerHandlers(app: Pick<Probot, "on">, deps: HandlerDeps): void {
  app.on("issue_comment.created", guardEvent(deps, createIssueCommentCreatedHandler(deps)));
  app.on("issues.opened", guardEvent(deps, createIssuesOpenedHandler(deps)));
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
    guardEvent(deps, handleInstallationChanged),
  );
  // Heard only to keep the cache true to GitHub (see github/get-cache-evictions.ts).
  app.on(
    [
      "label",
      "repository",
      "push",
      "member",
      ...actionsOf("issues", ["issues.opened"]),
      ...actionsOf("pull_request"),
    ],
    watchEvent(deps),
  );
}

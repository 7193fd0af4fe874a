import type { Probot } from "probot";
import type { DeliveryLedger } from "../delivery-ledger.js";
import { guardEvent } from "./guard-event.js";
import { handleInstallationChanged } from "./handle-installation-changed.js";
import {
  createIssueCommentCreatedHandler,
  type CommentHandlerDeps,
} from "./handle-issue-comment-created.js";

export interface HandlerDeps extends CommentHandlerDeps {
  ledger: DeliveryLedger;
}

/**
 * The single list of webhook subscriptions. Keep `app.yml`'s `default_events` in step: a test
 * fails when the two disagree.
 */
export function registerHandlers(app: Pick<Probot, "on">, deps: HandlerDeps): void {
  const { ledger } = deps;
  app.on("issue_comment.created", guardEvent(ledger, createIssueCommentCreatedHandler(deps)));
  app.on(
    [
      "installation.created",
      "installation.deleted",
      "installation.suspend",
      "installation.unsuspend",
      "installation_repositories.added",
      "installation_repositories.removed",
    ],
    guardEvent(ledger, handleInstallationChanged),
  );
}

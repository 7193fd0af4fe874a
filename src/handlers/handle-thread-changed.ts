import type { Context } from "probot";
import { z } from "zod";
import { toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { toIssueMemory } from "../memory/memory-inputs.js";
import { forgetInMemoryOff } from "../memory/forget-in-memory-off.js";
import { openRepoMemory, type MemoryAccess } from "../memory/open-repo-memory.js";
import {
  InstallationPayload,
  IssuePayload,
  MalformedPayloadError,
  OwnedRepositoryPayload,
  readPayload,
} from "./read-payload.js";

export type ThreadChangedEvent =
  | "issues.edited"
  | "issues.closed"
  | "issues.reopened"
  | "issues.deleted"
  | "issues.transferred"
  | "pull_request.edited"
  | "pull_request.closed";

const ThreadChanged = z.object({
  action: z.string(),
  issue: IssuePayload.optional(),
  pull_request: IssuePayload.optional(),
  // Owned: the config is read from the repository by its owner and name.
  repository: OwnedRepositoryPayload,
  installation: InstallationPayload,
});

/**
 * Keeps memory in step with GitHub: an edited, closed or reopened issue, and an edited or closed
 * pull request, update their record; a deleted or transferred issue leaves for good, with the
 * answers Talos gave in its thread (its notes stay). (An opened or reopened pull request is
 * remembered by the pull-request handler.)
 */
export function createThreadChangedHandler(deps: MemoryAccess) {
  return async (context: Context<ThreadChangedEvent>): Promise<void> => {
    const payload = readPayload(ThreadChanged, context.payload);
    const isPullRequest = payload.pull_request !== undefined;
    const thread = payload.pull_request ?? payload.issue;
    // Malformed, so parked at once: a plain error was retried, the config read again each time.
    if (!thread)
      throw new MalformedPayloadError(
        "malformed webhook payload: it holds neither an issue nor a pull request",
      );
    const info = { ...toIssueInfo(thread), isPullRequest };
    const gone = payload.action === "deleted" || payload.action === "transferred";
    const { config } = await loadRepoConfig(context);
    const event = { installation: payload.installation.id, repository: payload.repository };
    const memory = await openRepoMemory(deps, event, config);
    if (!memory) {
      // What memory held from before it was switched off leaves all the same: switched on
      // again, `ask` had recalled the deleted issue's summary and answers.
      const removed = gone
        ? await forgetInMemoryOff(deps, event, (store) => store.forgetThread(info.number))
        : undefined;
      if (removed !== undefined) {
        context.log.info(
          { number: info.number, removed },
          "issue forgotten (memory is off in this repository)",
        );
      }
      return context.log.debug("memory is off in this repository");
    }
    if (gone) {
      // The issue, Talos's answers there and its summary (found by the thread's number, not by
      // their texts) may quote what it said, and a deleted issue is often spam or a leaked
      // secret: `ask` elsewhere would go on recalling it. Later writes of the thread (an edit
      // redelivered after this, an answer being written) are refused. Notes stay: a
      // maintainer wrote them to be kept.
      const removed = await memory.forgetThread(info.number);
      return context.log.info({ number: info.number, removed }, "issue forgotten");
    }
    // Events may come out of order (a redelivery, say): an older copy leaves a newer one.
    await memory.add(toIssueMemory(payload.repository.full_name, info));
    context.log.info(
      { number: info.number, kind: isPullRequest ? "pull_request" : "issue" },
      "memory updated",
    );
  };
}

import type { Context } from "probot";
import { z } from "zod";
import { toIssueInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { issueMemoryId, toIssueMemory } from "../memory/memory-inputs.js";
import type { MemoryService } from "../memory/memory-service.js";
import { openRepoMemory } from "../memory/open-repo-memory.js";
import {
  InstallationPayload,
  IssuePayload,
  readPayload,
  RepositoryPayload,
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
  repository: RepositoryPayload,
  installation: InstallationPayload,
});

/**
 * Keeps memory in step with GitHub: an edited, closed or reopened issue, and an edited or closed
 * pull request, update their record; a deleted or transferred issue leaves. (An opened or
 * reopened pull request is remembered by the pull-request handler.)
 */
export function createThreadChangedHandler(deps: { memory: MemoryService }) {
  return async (context: Context<ThreadChangedEvent>): Promise<void> => {
    const payload = readPayload(ThreadChanged, context.payload);
    const { config } = await loadRepoConfig(context);
    const memory = await openRepoMemory(
      deps.memory,
      { installation: payload.installation.id, repository: payload.repository },
      config,
    );
    if (!memory) return context.log.debug("memory is off in this repository");
    const isPullRequest = payload.pull_request !== undefined;
    const thread = payload.pull_request ?? payload.issue;
    if (!thread) throw new Error("the payload holds neither an issue nor a pull request");
    const info = { ...toIssueInfo(thread), isPullRequest };
    if (payload.action === "deleted" || payload.action === "transferred") {
      await memory.remove(issueMemoryId(info.number, false));
      return context.log.info({ number: info.number }, "issue forgotten");
    }
    await memory.add(toIssueMemory(payload.repository.full_name, info));
    context.log.info(
      { number: info.number, kind: isPullRequest ? "pull_request" : "issue" },
      "memory updated",
    );
  };
}

import type { Context } from "probot";
import { z } from "zod";
import type { AppIdentityLoader } from "../github/app-identity.js";
import { readMarker } from "../github/comment-markers.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { forgetInMemoryOff } from "../memory/forget-in-memory-off.js";
import { answerId, summaryId } from "../memory/memory-inputs.js";
import { openRepoMemory, type MemoryAccess } from "../memory/open-repo-memory.js";
import {
  InstallationPayload,
  OwnedRepositoryPayload,
  readPayload,
  SenderPayload,
} from "./read-payload.js";
import { isBotSender } from "./guard-event.js";

export type IssueCommentChangedEvent = "issue_comment.deleted" | "issue_comment.edited";

const CommentChange = z.object({
  action: z.string(),
  comment: z.object({ body: z.string().nullable(), user: SenderPayload.nullable() }),
  // Present on an edit of the body: what it said before.
  changes: z.object({ body: z.object({ from: z.string() }).optional() }).optional(),
  issue: z.object({ number: z.number() }),
  sender: SenderPayload,
});

const CommentChanged = CommentChange.extend({
  repository: OwnedRepositoryPayload,
  installation: InstallationPayload,
});

type CommentChange = z.infer<typeof CommentChange>;

/**
 * The memory Talos's comment was remembered as (`answer-<command comment id>` for a reply,
 * `summary-<number>` for the thread's summary), which its deletion, or an edit by someone else,
 * makes untrue to GitHub; or why there is none. The marker is read from the body as Talos wrote
 * it (an edit may have cut the marker too), on its last line only: a quoted one is text.
 */
export function rememberedAs(
  { action, comment, changes, issue, sender }: CommentChange,
  botLogin: string | undefined,
): { id: string } | { reason: string } {
  const author = comment.user?.login;
  if (botLogin === undefined ? !isBotSender(comment.user) : author !== botLogin)
    return { reason: "the comment is not Talos's" };
  // Talos edits its own replies and summaries as it refreshes them.
  if (action === "edited" && sender.login === author)
    return { reason: "the comment's author edited it" };
  const body = action === "edited" ? changes?.body?.from : comment.body;
  if (body === undefined) return { reason: "the comment's body did not change" };
  const marker = readMarker(body);
  const [value = ""] = marker?.values ?? [];
  if (marker?.kind === "reply" && /^\d+$/.test(value)) return { id: answerId(Number(value)) };
  if (marker?.kind === "summary") return { id: summaryId(issue.number) };
  return { reason: "the comment is no answer or summary of Talos's" };
}

/**
 * Why a deleted or edited comment is no work, told from the payload alone (and Talos's bot
 * login once known), so that nobody else's comment is journaled; undefined when it may be (a
 * payload it cannot read too: its job parks it with the error).
 */
export function commentChangeWithoutWork(
  payload: unknown,
  botLogin: string | undefined,
): { reason: string } | undefined {
  const parsed = CommentChange.safeParse(payload);
  if (!parsed.success) return undefined;
  const found = rememberedAs(parsed.data, botLogin);
  return "reason" in found ? found : undefined;
}

/**
 * Talos's answer or summary comment deleted, or edited by someone else (a maintainer takes out
 * a wrong answer or a leaked secret): its memory goes too, also one kept while memory is off,
 * or `ask` elsewhere would go on recalling what GitHub no longer shows.
 */
export function createIssueCommentChangedHandler(
  deps: MemoryAccess & { identity: AppIdentityLoader },
) {
  return async (context: Context<IssueCommentChangedEvent>): Promise<void> => {
    const payload = readPayload(CommentChanged, context.payload);
    const found = rememberedAs(payload, (await deps.identity.get()).botLogin);
    if ("reason" in found) return context.log.debug(`ignored: ${found.reason}`);
    const { config } = await loadRepoConfig(context);
    const event = { installation: payload.installation.id, repository: payload.repository };
    const forget = (store: { remove(id: string): Promise<boolean> }) => store.remove(found.id);
    const memory = await openRepoMemory(deps, event, config);
    const removed = memory ? await forget(memory) : await forgetInMemoryOff(deps, event, forget);
    context.log.info(
      { id: found.id, removed: removed ?? false },
      `Talos's comment ${payload.action}: its memory forgotten`,
    );
  };
}

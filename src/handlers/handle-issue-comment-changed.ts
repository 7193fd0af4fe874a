import type { Context } from "probot";
import { z } from "zod";
import { hasCommandCandidate, type ParsedCommand } from "../commands/parse-command.js";
import type { AppIdentity, AppIdentityLoader } from "../github/app-identity.js";
import { readMarker } from "../github/comment-markers.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { MAX_USER_TEXT } from "../markdown/create-markdown-parser.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
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
  comment: z.object({
    id: z.number(),
    body: z.string().nullable(),
    user: SenderPayload.nullable(),
  }),
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

/** Whether the comment may be Talos's own: by its login, or any bot's while that is unknown. */
function isTalosAuthor(comment: CommentChange["comment"], botLogin: string | undefined): boolean {
  return botLogin === undefined ? isBotSender(comment.user) : comment.user?.login === botLogin;
}

/** The body the comment had before the change; undefined when an edit left the body as it was. */
function bodyBefore({ action, comment, changes }: CommentChange): string | undefined {
  return action === "edited" ? changes?.body?.from : (comment.body ?? "");
}

/**
 * The memory Talos's comment was remembered as (`answer-<command comment id>` for a reply,
 * `summary-<number>` for the thread's summary), which its deletion, or an edit by someone else,
 * makes untrue to GitHub; or why there is none. The marker is read from the body as Talos wrote
 * it (an edit may have cut the marker too), on its last line only: a quoted one is text.
 */
export function rememberedAs(
  change: CommentChange,
  botLogin: string | undefined,
): { id: string } | { reason: string } {
  const { action, comment, issue, sender } = change;
  if (!isTalosAuthor(comment, botLogin)) return { reason: "the comment is not Talos's" };
  // Talos edits its own replies and summaries as it refreshes them.
  if (action === "edited" && sender.login === comment.user?.login)
    return { reason: "the comment's author edited it" };
  const body = bodyBefore(change);
  if (body === undefined) return { reason: "the comment's body did not change" };
  const marker = readMarker(body);
  const [value = ""] = marker?.values ?? [];
  if (marker?.kind === "reply" && /^\d+$/.test(value)) return { id: answerId(Number(value)) };
  if (marker?.kind === "summary") return { id: summaryId(issue.number) };
  return { reason: "the comment is no answer or summary of Talos's" };
}

// A line starting with a mention: before Talos knows its slug, `@<slug> ask` looks like any.
const MENTION_LINE = /(?:^|[\n\r])[^\S\n\r]*@/;

/**
 * The `answer-<comment id>` that someone else's comment, deleted or edited, may have been
 * answered with: `ask` stores it as `Question: <the command's text>` and its reply does not
 * repeat the question, so once the comment is gone or changed memory alone keeps it. Told
 * cheaply from the payload, so that ordinary comments are not journaled: its body before the
 * change held a line that could be a command (few comments do); whether that was an `ask` whose
 * question changed, the job reads with the Markdown parser (`isQuestionKept`).
 */
export function askedAs(
  change: CommentChange,
  slug: string | undefined,
): { id: string; before: string } | { reason: string } {
  // Bots never run commands (guardEvent ignores their comments).
  if (isBotSender(change.comment.user)) return { reason: "the comment is not Talos's" };
  const before = bodyBefore(change);
  if (before === undefined) return { reason: "the comment's body did not change" };
  const could =
    slug === undefined
      ? hasCommandCandidate(before) || MENTION_LINE.test(before.slice(0, MAX_USER_TEXT))
      : hasCommandCandidate(before, { slug });
  if (!could) return { reason: "the comment is not Talos's and held no command" };
  return { id: answerId(change.comment.id), before };
}

/**
 * What a deleted or edited comment may have made untrue in memory: Talos's answer or summary,
 * or the question of someone's `ask`; or why nothing. Talos's identity is undefined until read.
 */
export function changedMemoryOf(
  change: CommentChange,
  identity: Pick<AppIdentity, "slug" | "botLogin"> | undefined,
): { id: string; before?: string } | { reason: string } {
  return isTalosAuthor(change.comment, identity?.botLogin)
    ? rememberedAs(change, identity?.botLogin)
    : askedAs(change, identity?.slug);
}

/**
 * Why a deleted or edited comment is no work, told from the payload alone (and Talos's identity
 * once known), so that an ordinary comment is not journaled; undefined when it may be (a payload
 * it cannot read too: its job parks it with the error).
 */
export function commentChangeWithoutWork(
  payload: unknown,
  identity: Pick<AppIdentity, "slug" | "botLogin"> | undefined,
): { reason: string } | undefined {
  const parsed = CommentChange.safeParse(payload);
  if (!parsed.success) return undefined;
  const found = changedMemoryOf(parsed.data, identity);
  return "reason" in found ? found : undefined;
}

/**
 * Whether the question an `ask` comment stored is still the one GitHub shows: the body before
 * was no `ask` (nothing stored), or the edit kept its question. A parse that misses its deadline
 * reads as no command, so the answer is forgotten: an answer lost is the lesser harm than a
 * question kept that GitHub no longer shows.
 */
export function isQuestionKept(before: ParsedCommand | null, after: ParsedCommand | null): boolean {
  if (before !== null && before.name !== "ask") return true;
  return before?.name === "ask" && after?.name === "ask" && after.args === before.args;
}

/**
 * Talos's answer or summary comment deleted, or edited by someone else (a maintainer takes out
 * a wrong answer or a leaked secret), or someone's `ask` comment deleted or its question edited
 * (the asker takes out a pasted secret): its memory goes too, also one kept while memory is off,
 * or `ask` elsewhere would go on recalling what GitHub no longer shows. On the issue's thread, an
 * answer still being written is stored before this forgets it.
 */
export function createIssueCommentChangedHandler(
  deps: MemoryAccess & { identity: AppIdentityLoader; markdown: MarkdownService },
) {
  return async (context: Context<IssueCommentChangedEvent>): Promise<void> => {
    const payload = readPayload(CommentChanged, context.payload);
    const identity = await deps.identity.get();
    const found = changedMemoryOf(payload, identity);
    if ("reason" in found) return context.log.debug(`ignored: ${found.reason}`);
    if (found.before !== undefined) {
      const parse = (body: string) => deps.markdown.parseCommand(body, { slug: identity.slug });
      const after = payload.action === "edited" ? await parse(payload.comment.body ?? "") : null;
      if (isQuestionKept(await parse(found.before), after))
        return context.log.debug("ignored: the comment asked nothing, or its question is kept");
    }
    const { config } = await loadRepoConfig(context);
    const event = { installation: payload.installation.id, repository: payload.repository };
    const forget = (store: { remove(id: string): Promise<boolean> }) => store.remove(found.id);
    const memory = await openRepoMemory(deps, event, config);
    const removed = memory ? await forget(memory) : await forgetInMemoryOff(deps, event, forget);
    const whose = found.before === undefined ? "Talos's comment" : "an ask command's comment";
    context.log.info(
      { id: found.id, removed: removed ?? false },
      `${whose} ${payload.action}: its memory forgotten`,
    );
  };
}

import type { Context } from "probot";
import { z } from "zod";
import { hasCommandCandidate, type ParsedCommand } from "../commands/parse-command.js";
import type { AppIdentity, AppIdentityLoader } from "../github/app-identity.js";
import { readMarker } from "../github/comment-markers.js";
import { createRepoClient, type CommentInfo } from "../github/create-repo-client.js";
import { loadRepoConfig } from "../github/load-repo-config.js";
import { MAX_USER_TEXT } from "../markdown/create-markdown-parser.js";
import type { MarkdownService } from "../markdown/markdown-workers.js";
import { forgetInMemoryOff } from "../memory/forget-in-memory-off.js";
import { answerId, forgetMadeSince, summaryId } from "../memory/memory-inputs.js";
import type { MemoryStore } from "../memory/memory-store.js";
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
    created_at: z.string(),
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

/** The `answer-<command comment id>` that Talos's reply with this body was remembered as. */
function answerMarkedIn(body: string): string | undefined {
  const marker = readMarker(body);
  const [value = ""] = marker?.values ?? [];
  return marker?.kind === "reply" && /^\d+$/.test(value) ? answerId(Number(value)) : undefined;
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
  const answer = answerMarkedIn(body);
  if (answer !== undefined) return { id: answer };
  if (readMarker(body)?.kind === "summary") return { id: summaryId(issue.number) };
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

const WORDS = /[\p{L}\p{N}_]+/gu;

/**
 * Whether a change took text out of someone else's comment, whose text memory may hold in the
 * thread's summary or in answers that quoted it: a deletion of any words, or an edit that
 * removed a word (a secret pasted by mistake, then edited out). An edit that only adds, or ticks
 * a task box, removed none; nor does a bot refreshing its own comment (a coverage or CI report
 * rewritten, or deleted and posted again, on every push), which would otherwise forget the
 * thread's summary each time.
 */
export function isTextTakenOut(change: CommentChange): boolean {
  const before = bodyBefore(change);
  if (before === undefined) return false;
  const { comment, sender } = change;
  // Deleting its old report to post a new one is the other way such a bot refreshes it.
  if (isBotSender(sender) && sender.login === comment.user?.login) return false;
  // Cut at GitHub's limit first, as all user text is: a payload may claim a longer one.
  const removed = new Set(before.slice(0, MAX_USER_TEXT).match(WORDS));
  if (change.action !== "edited") return removed.size > 0;
  const after = (comment.body ?? "").slice(0, MAX_USER_TEXT);
  for (const word of after.match(WORDS) ?? []) removed.delete(word);
  return removed.size > 0;
}

/** The records of a thread that may hold a comment's text: those made since it was written. */
export interface ThreadMemory {
  number: number;
  since: string;
  /** The comment's own `answer-<id>`, had it asked. */
  own: string;
}

/**
 * What a deleted or edited comment may have made untrue in memory: Talos's answer or summary;
 * for anyone else's comment whose text was taken out, the thread's records made since it was
 * written; or the question of someone's `ask`; or why nothing. Talos's identity is undefined
 * until read: any bot's comment may then be Talos's, and one that is no answer or summary of
 * its may be another bot's, whose deletion is followed too.
 */
export function changedMemoryOf(
  change: CommentChange,
  identity: Pick<AppIdentity, "slug" | "botLogin"> | undefined,
): { id: string; before?: string } | { thread: ThreadMemory } | { reason: string } {
  if (isTalosAuthor(change.comment, identity?.botLogin)) {
    const found = rememberedAs(change, identity?.botLogin);
    if ("id" in found || identity !== undefined || !isTextTakenOut(change)) return found;
  }
  if (isTextTakenOut(change)) {
    const { issue, comment } = change;
    return {
      thread: { number: issue.number, since: comment.created_at, own: answerId(comment.id) },
    };
  }
  return askedAs(change, identity?.slug);
}

/**
 * The ids of thread `number`'s records that a comment may have gone into: the comment's own
 * answer, the thread's summary, and the answers of Talos's replies there (by their marker).
 */
export function threadMemoryIds(
  thread: Pick<ThreadMemory, "number" | "own">,
  comments: CommentInfo[],
  botLogin: string,
): string[] {
  const replies = comments.flatMap((c) => (c.author === botLogin && answerMarkedIn(c.body)) || []);
  return [...new Set([thread.own, summaryId(thread.number), ...replies])];
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
 * (the asker takes out a pasted secret), or anyone's comment deleted or edited so that words went
 * (the thread's summary and answers made since may quote them): its memory goes too, also one
 * kept while memory is off, or `ask` elsewhere would go on recalling what GitHub no longer shows.
 * On the issue's thread, an answer still being written is stored before this forgets it.
 */
export function createIssueCommentChangedHandler(
  deps: MemoryAccess & { identity: AppIdentityLoader; markdown: MarkdownService },
) {
  return async (context: Context<IssueCommentChangedEvent>): Promise<void> => {
    const payload = readPayload(CommentChanged, context.payload);
    const identity = await deps.identity.get();
    const found = changedMemoryOf(payload, identity);
    if ("reason" in found) return context.log.debug(`ignored: ${found.reason}`);
    if ("thread" in found)
      return forgetThreadMemory(deps, context, { payload, ...found, botLogin: identity.botLogin });
    if (found.before !== undefined) {
      const parse = (body: string) => deps.markdown.parseCommand(body, { slug: identity.slug });
      const after = payload.action === "edited" ? await parse(payload.comment.body ?? "") : null;
      if (isQuestionKept(await parse(found.before), after))
        return context.log.debug("ignored: the comment asked nothing, or its question is kept");
    }
    const forget = (store: MemoryStore) => store.remove(found.id);
    const removed = await forgetInRepoMemory(deps, context, payload, forget);
    const whose = found.before === undefined ? "Talos's comment" : "an ask command's comment";
    context.log.info(
      { id: found.id, removed: removed ?? false },
      `${whose} ${payload.action}: its memory forgotten`,
    );
  };
}

/** Runs `forget` on the event's repository's memory, or the one kept while memory is off. */
async function forgetInRepoMemory<T>(
  deps: MemoryAccess,
  context: Context<IssueCommentChangedEvent>,
  payload: z.infer<typeof CommentChanged>,
  forget: (store: MemoryStore) => Promise<T>,
): Promise<T | undefined> {
  const { config } = await loadRepoConfig(context);
  const event = { installation: payload.installation.id, repository: payload.repository };
  const memory = await openRepoMemory(deps, event, config);
  return memory ? forget(memory) : forgetInMemoryOff(deps, event, forget);
}

/**
 * Someone's comment deleted, or text edited out of it (a secret, personal data): the thread's
 * summary and answers made since it was written may quote it, and `ask` would go on recalling
 * them. The thread's comments are read only once a memory is there to forget from.
 */
async function forgetThreadMemory(
  deps: MemoryAccess,
  context: Context<IssueCommentChangedEvent>,
  {
    payload,
    thread,
    botLogin,
  }: { payload: z.infer<typeof CommentChanged>; thread: ThreadMemory; botLogin: string },
): Promise<void> {
  const removed = await forgetInRepoMemory(deps, context, payload, async (store) => {
    const comments = await createRepoClient(context.octokit, context.repo()).listComments(
      thread.number,
    );
    const ids = threadMemoryIds(thread, comments, botLogin);
    return forgetMadeSince(store, ids, thread);
  });
  context.log.info(
    { number: thread.number, since: thread.since, removed: removed ?? [] },
    `a comment ${payload.action}: the thread's memory made since it was written forgotten`,
  );
}

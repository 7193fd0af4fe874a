import type { Logger } from "pino";
import type { Assistant } from "../agent/assistant.js";
import { runThreadTask } from "../agent/run-thread-task.js";
import type { RepoConfig } from "../config.js";
import type { AppIdentityLoader } from "../github/app-identity.js";
import { hasMarkerAtEnd, triageMarker } from "../github/comment-markers.js";
import type {
  CommentInfo,
  IssueInfo,
  LabelInfo,
  RepoClient,
} from "../github/create-repo-client.js";
import { listCommentsFinding } from "../github/list-comments-finding.js";
import type { Octokit } from "../github/octokit.js";
import type { UpsertReplyOptions } from "../github/upsert-reply.js";
import { upsertReply } from "../github/upsert-reply.js";
import { MAX_USER_TEXT } from "../markdown/create-markdown-parser.js";
import { codeSpan } from "../markdown/safe-text.js";
import { labelList } from "../tools/label-as-seen.js";
import { createProposeLabelsTool, type LabelProposal } from "../tools/propose-labels.js";

export interface TriageOptions {
  assistant: Assistant;
  github: RepoClient;
  octokit: Octokit;
  /** The new issue, as GitHub has it when the job runs. */
  issue: IssueInfo;
  /** Its comments when known: none, for an issue just opened. */
  comments: CommentInfo[] | undefined;
  settings: RepoConfig["triage"];
  /** For the triage comment: who we are, and how to retry its creation. */
  reply: Pick<UpsertReplyOptions, "limits" | "clock" | "markdown"> & {
    identity: AppIdentityLoader;
  };
  log: Logger;
}

export interface TriageOutcome {
  proposal: LabelProposal | undefined;
  applied: boolean;
  commented: boolean;
  /** An earlier run of this job (a retry, a resumed job, a redelivery) triaged the issue. */
  repeated: boolean;
}

/**
 * Triage of a new issue: the model proposes labels, chosen only from the repository's existing
 * labels (narrowed by `triage.labels`); they are applied when `triage.apply_labels` is set, and a
 * short comment is posted only when `triage.comment` is set.
 */
export async function triageNewIssue(options: TriageOptions): Promise<TriageOutcome> {
  const { assistant, github, octokit, issue, settings, log } = options;
  const issueNumber = issue.number;
  const botLogin = (await options.reply.identity.get()).botLogin;
  const earlier = await findEarlierTriage(options, botLogin);
  if (earlier.found) {
    log.info({ found: earlier.found }, "triage skipped: an earlier run triaged the issue");
    // That run applied its labels but did not get to post its comment: post it, naming those
    // the issue still has. None left (a maintainer took them off): there is nothing to say, and
    // still no second model run, which would put them back.
    const labels = earlier.labels ?? [];
    const commented = earlier.found === "labels" && settings.comment && labels.length > 0;
    if (commented) {
      const body = renderTriageComment({ labels, dropped: [], reason: "" }, true, "");
      await postTriageComment(options, botLogin, earlier.comments, body);
    } else if (earlier.found === "labels" && settings.comment)
      log.info("no triage comment: the issue has none of the labels Talos applied");
    return { proposal: undefined, applied: false, commented, repeated: true };
  }
  const wanted = new Set(settings.labels.map((name) => name.toLowerCase()));
  const allowed = (await github.listLabels()).filter(
    (l) => wanted.size === 0 || wanted.has(l.name.toLowerCase()),
  );
  if (allowed.length === 0) {
    log.info({ configured: settings.labels }, "triage skipped: no existing label may be proposed");
    return { proposal: undefined, applied: false, commented: false, repeated: false };
  }

  // The comments just listed are the thread's now; the payload's may be a redelivery's.
  const comments = earlier.comments ?? options.comments;
  let proposal: LabelProposal | undefined;
  const answer = await runThreadTask({
    assistant,
    github,
    number: issueNumber,
    known: { issue, ...(comments ? { comments } : {}) },
    prompt: "triage",
    values: (fence) => ({
      // Each label cleaned on its own (labelList), then fenced as it is: cleaned again as one
      // text, one description's `<script>` or unclosed `<!--` hid every label after it.
      labels: fence.wrapCode("the labels you may propose", labelsAsSeen(allowed)),
    }),
    extraTools: [createProposeLabelsTool(allowed, (p) => (proposal = p))],
    log,
  });
  log.info({ proposal, finished: answer.finished }, "triage proposal");
  if (!proposal) return { proposal, applied: false, commented: false, repeated: false };

  const { repo } = github;
  const applied = settings.apply_labels && proposal.labels.length > 0;
  if (applied)
    await octokit.rest.issues.addLabels({
      ...repo,
      issue_number: issueNumber,
      labels: proposal.labels,
    });
  if (settings.comment) {
    const body = renderTriageComment(proposal, applied, answer.text);
    await postTriageComment(options, botLogin, earlier.comments, body);
  }
  return { proposal, applied, commented: settings.comment, repeated: false };
}

/** The allowed labels as the model reads them, within the cap of one untrusted text. */
function labelsAsSeen(allowed: readonly LabelInfo[]): string {
  const { text, complete } = labelList(allowed, MAX_USER_TEXT);
  return complete ? text : `${text}\n…(cut: ${allowed.length} labels in all)`;
}

async function postTriageComment(
  options: TriageOptions,
  botLogin: string,
  comments: CommentInfo[] | undefined,
  body: string,
): Promise<void> {
  const { limits, clock, markdown } = options.reply;
  const { github, octokit } = options;
  await upsertReply({
    limits,
    clock,
    markdown,
    botLogin,
    octokit,
    ...github.repo,
    issueNumber: options.issue.number,
    marker: triageMarker(options.issue.number),
    // Listed just now, before the model ran (if it ran): no second listing.
    knownComments: comments,
    references: github.retrieved,
    body,
  });
}

/**
 * What an earlier run of this job wrote: its triage comment, or a label Talos applied. A job runs
 * again after a failure (memory trouble is reported only once triage has run), a crash or a lost
 * lease, and on a redelivery. Triage then must not run again: a second model run can propose
 * other labels, and would put back any label a maintainer has removed since.
 */
async function findEarlierTriage(
  options: TriageOptions,
  botLogin: string,
): Promise<{
  found?: "comment" | "labels";
  comments?: CommentInfo[];
  /** Of the labels Talos applied, those the issue still has. */
  labels?: string[];
}> {
  const { github, octokit, issue, settings } = options;
  // The payload's comment count is the delivery's: a retry or redelivery must ask GitHub.
  const marker = triageMarker(issue.number);
  const isTriage = (c: CommentInfo) => c.author === botLogin && hasMarkerAtEnd(c.body, marker);
  const comments = settings.comment
    ? await listCommentsFinding(github, issue.number, isTriage)
    : undefined;
  if (comments?.some(isTriage)) return { found: "comment", comments };
  if (settings.apply_labels) {
    const events = await octokit.paginate(octokit.rest.issues.listEvents, {
      ...github.repo,
      issue_number: issue.number,
      per_page: 100,
    });
    if (events.some((e) => e.event === "labeled" && e.actor?.login === botLogin))
      return { found: "labels", comments, labels: labelsStillApplied(events, botLogin) };
  }
  return { comments };
}

/**
 * The labels Talos applied that the issue has now: the events replayed in order (GitHub lists
 * them oldest first), each removal, by anyone, taking one off. Names are compared as GitHub
 * does, whatever their case.
 */
function labelsStillApplied(
  events: ReadonlyArray<{ event: string; actor?: { login: string } | null; label?: unknown }>,
  botLogin: string,
): string[] {
  const ours = new Map<string, string>();
  for (const e of events) {
    const name = (e.label as { name?: unknown } | undefined)?.name;
    if (typeof name !== "string") continue;
    if (e.event === "labeled" && e.actor?.login === botLogin) ours.set(name.toLowerCase(), name);
    else if (e.event === "unlabeled") ours.delete(name.toLowerCase());
  }
  return [...ours.values()];
}

function renderTriageComment(proposal: LabelProposal, applied: boolean, note: string): string {
  const list = (names: string[]) => names.map((name) => codeSpan(name.slice(0, 100))).join(", ");
  const head =
    proposal.labels.length === 0
      ? "**Triage**: none of this repository's labels seems to fit."
      : `**Triage**: ${applied ? "labelled" : "suggested labels"} ${list(proposal.labels)}.`;
  const dropped =
    proposal.dropped.length === 0
      ? ""
      : `Not applied, as ${proposal.dropped.length === 1 ? "it is not a label" : "they are not labels"} triage may use here: ${list(proposal.dropped)}.`;
  return [head, dropped, note].filter(Boolean).join("\n\n");
}

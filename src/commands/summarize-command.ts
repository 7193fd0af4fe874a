import { runThreadTask } from "../agent/run-thread-task.js";
import { hasMarkerAtEnd, summaryMarker } from "../github/comment-markers.js";
import type { CommentInfo } from "../github/create-repo-client.js";
import { summaryId, toAnswerMemory } from "../memory/memory-inputs.js";
import { answerSource, type Command } from "./command-registry.js";
import { NO_MODEL_REPLY, renderAnswer } from "./llm-replies.js";

/** The reply when a limit cut the new summary short and the thread already has one. */
const CUT_SUMMARY_KEPT =
  "Talos reached its step or token limit for this run before the new summary was complete, " +
  "so the previous summary is kept as it was.";

export const summarizeCommand: Command = {
  name: "summarize",
  usage: "/talos summarize",
  summary: "Keep one summary of this thread, updated in place each time.",
  isEnabled: (config) => config.summarize.enabled,
  async run({ assistant, github, issue, comment, slug, clock, botLogin, log }) {
    if (!assistant) return NO_MODEL_REPLY;
    const answer = await runThreadTask({
      assistant,
      github,
      number: issue.number,
      known: { issue },
      prompt: "summarize",
      log,
    });
    // No summary to show: said in a reply of its own, so the thread's summary is left as it is.
    if (!answer.text) return renderAnswer(answer);
    // A summary a limit cut short never replaces a whole one (nor its memory): said in a reply.
    if (!answer.finished) {
      const comments = answer.comments ?? (await github.listComments(issue.number));
      if (hasSummary(comments, botLogin)) {
        log.info("summary cut short by a limit; the thread's summary is kept");
        return { body: CUT_SUMMARY_KEPT, seen: comments };
      }
    }
    return {
      body: `**Summary of this thread** (updated by \`/talos summarize\`)\n\n${renderAnswer(answer)}`,
      marker: summaryMarker(),
      seen: answer.comments,
      // Remembered, so that `ask` elsewhere can recall what this thread concluded: a whole
      // summary only. One a limit cut short is posted, marked, but recalled later it would read
      // as the thread's conclusion, with nothing saying it was cut.
      remember: answer.finished
        ? toAnswerMemory(
            summaryId(issue.number),
            `Summary of #${issue.number} (${issue.title}): ${answer.text}`,
            answerSource({ github, issue, comment, slug, clock }),
          )
        : undefined,
    };
  },
};

/** Whether the thread holds Talos's summary comment (only its own counts, as for editing it). */
function hasSummary(comments: CommentInfo[], botLogin: string): boolean {
  return comments.some((c) => c.author === botLogin && hasMarkerAtEnd(c.body, summaryMarker()));
}

import { runThreadTask } from "../agent/run-thread-task.js";
import { summaryMarker } from "../github/comment-markers.js";
import { summaryId, toAnswerMemory } from "../memory/memory-inputs.js";
import { answerSource, type Command } from "./command-registry.js";
import { NO_MODEL_REPLY, renderAnswer } from "./llm-replies.js";

export const summarizeCommand: Command = {
  name: "summarize",
  usage: "/talos summarize",
  summary: "Keep one summary of this thread, updated in place each time.",
  isEnabled: (config) => config.summarize.enabled,
  async run({ assistant, github, issue, comment, slug, clock, log }) {
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
    return {
      body: `**Summary of this thread** (updated by \`/talos summarize\`)\n\n${renderAnswer(answer)}`,
      marker: summaryMarker(),
      seen: answer.comments,
      // Remembered, so that `ask` elsewhere can recall what this thread concluded.
      remember: answer.text
        ? toAnswerMemory(
            summaryId(issue.number),
            `Summary of #${issue.number} (${issue.title}): ${answer.text}`,
            answerSource({ github, issue, comment, slug, clock }),
          )
        : undefined,
    };
  },
};

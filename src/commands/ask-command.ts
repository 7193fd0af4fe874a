import { runThreadTask } from "../agent/run-thread-task.js";
import type { Command } from "./command-registry.js";
import { NO_MODEL_REPLY, PARTIAL_NOTE } from "./llm-replies.js";

export const askCommand: Command = {
  name: "ask",
  usage: "/talos ask <question>",
  summary: "Answer a question, using this thread and the repository.",
  isEnabled: (config) => config.ask.enabled,
  async run({ args, assistant, github, issue, log }) {
    if (!args)
      return "Ask a question after the command, e.g. `/talos ask why does the build fail on Windows?`";
    if (!assistant) return NO_MODEL_REPLY;
    const answer = await runThreadTask({
      assistant,
      github,
      number: issue.number,
      known: { issue },
      prompt: "ask",
      values: (fence) => ({ question: fence.wrap("the maintainer's question", args) }),
      log,
    });
    const body =
      (answer.text || "I have no answer to that.") + (answer.finished ? "" : PARTIAL_NOTE);
    return { body, seen: answer.comments };
  },
};

import { runThreadTask } from "../agent/run-thread-task.js";
import type { Fence } from "../agent/untrusted-text.js";
import { answerId, toAnswerMemory } from "../memory/memory-inputs.js";
import type { SearchHit } from "../memory/memory-store.js";
import { answerSource, type Command, type CommandContext } from "./command-registry.js";
import { NO_MODEL_REPLY, renderAnswer } from "./llm-replies.js";

// How many remembered notes and answers a question recalls.
const RECALL = 5;

export const askCommand: Command = {
  name: "ask",
  usage: "/talos ask <question>",
  summary: "Answer a question, using this thread, the repository and what Talos remembers.",
  isEnabled: (config) => config.ask.enabled,
  async run({ args, assistant, github, issue, comment, memory, slug, clock, log }) {
    if (!args)
      return "Ask a question after the command, e.g. `/talos ask why does the build fail on Windows?`";
    if (!assistant) return NO_MODEL_REPLY;
    // Over budget, no model call at all: recalling embeds the question, a call to the embedding
    // model, which a budget that cannot pay for the answer must not make either. The answer's room
    // and one token of prompt is the least the first call needs (run-agent checks its prompt).
    assistant.account?.check((assistant.limits.maxOutputTokens ?? 0) + 1);
    const recalled = await recall(args, memory, log);
    const answer = await runThreadTask({
      assistant,
      github,
      number: issue.number,
      known: { issue },
      prompt: "ask",
      values: (fence) => ({
        question: fence.wrap("the maintainer's question", args),
        memories: recalled ? renderMemories(recalled, fence) : MEMORY_DOWN_PROMPT,
      }),
      log,
    });
    return {
      body: recalled ? renderAnswer(answer) : renderAnswer(answer) + MEMORY_DOWN_NOTE,
      seen: answer.comments,
      references: (recalled ?? []).flatMap((hit) => hit.record.number ?? []),
      // Remembered so that a later question can recall it: a whole answer only. One a limit cut
      // short (the budget, the steps, the output's length) may be the preamble of a tool call
      // ("Let me check a.ts."), posted with a note saying so, but no answer to recall.
      remember:
        answer.text && answer.finished
          ? toAnswerMemory(
              answerId(comment.id),
              `Question: ${args}\n\nAnswer: ${answer.text}`,
              answerSource({ github, issue, comment, slug, clock }),
            )
          : undefined,
    };
  },
};

const MEMORY_DOWN_PROMPT = "Talos's memory could not be searched this time.";
const MEMORY_DOWN_NOTE =
  "\n\n_Talos could not search its memory this time, so this answer does not use earlier notes or answers._";

/**
 * Maintainers' notes and Talos's earlier answers that bear on the question; undefined when the
 * memory could not be searched. Recalling embeds the question, so an embeddings server that is
 * down or refuses the key would otherwise fail the whole command though the chat model is fine.
 */
async function recall(
  question: string,
  memory: CommandContext["memory"],
  log: CommandContext["log"],
): Promise<SearchHit[] | undefined> {
  try {
    const store = await memory();
    if (!store) return [];
    return await store.search(question, {
      k: RECALL,
      kinds: ["note", "answer"],
      minScore: store.relatedScore,
    });
  } catch (error) {
    log.warn({ err: error }, "ask: memory could not be searched; answering without it");
    return undefined;
  }
}

function renderMemories(hits: SearchHit[], fence: Fence): string {
  if (hits.length === 0) return "Talos remembers nothing relevant to this question.";
  return [
    "Talos remembers these notes from the maintainers and earlier answers (they may be out of date):",
    ...hits.map(({ record }) =>
      fence.wrap(`${record.kind} ${record.id} from ${record.createdAt.slice(0, 10)}`, record.text),
    ),
  ].join("\n");
}

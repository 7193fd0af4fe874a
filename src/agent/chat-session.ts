import { AIMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import type { Logger } from "pino";
import type { RepoClient } from "../github/create-repo-client.js";
import { prepareRun, type Assistant } from "./assistant.js";
import { UTF8_TOKEN_BOUND } from "./count-tokens.js";
import { contentText, runAgent } from "./run-agent.js";

const CUT_NOTE = "\n…(cut to fit the context budget)";
// Its UTF-8 length bounds its tokens.
const CUT_NOTE_TOKENS = Buffer.byteLength(CUT_NOTE, "utf8");

/** A conversation in the terminal. The session keeps its own history: callers only send text. */
export interface ChatSession {
  send(text: string): Promise<string>;
  /** Turns kept, for inspection: user and assistant messages, oldest first. */
  readonly history: readonly BaseMessage[];
}

/**
 * `talos chat`: the same agent and read tools as on GitHub, bound to `github`'s repository when
 * one was chosen. Each turn keeps the question and the final answer (not the tool traffic); the
 * oldest turns are dropped when the history outgrows the context budget.
 */
export function createChatSession(options: {
  assistant: Assistant;
  github: RepoClient | undefined;
  log: Logger;
}): ChatSession {
  const { assistant, github, log } = options;
  const history: BaseMessage[] = [];
  const { contextTokens, tokenCounter = UTF8_TOKEN_BOUND } = assistant.limits;
  const trim = () => {
    const cost = () =>
      history.reduce((sum, m) => sum + tokenCounter.countTokens(contentText(m), contextTokens), 0);
    // Drop whole turns (a question and its answer), and keep at least the newest question.
    while (history.length > 1 && cost() > contextTokens) history.splice(0, 2);
  };
  return {
    history,
    async send(text) {
      // A pasted log is the question too: bounded, as every text sent to the model is, so that
      // the history of turns it leads fits the context budget.
      const fits = tokenCounter.truncateToTokens(text, contextTokens) === text;
      const room = Math.max(contextTokens - CUT_NOTE_TOKENS, 0);
      const question = new HumanMessage(
        fits ? text : `${tokenCounter.truncateToTokens(text, room)}${CUT_NOTE}`,
      );
      history.push(question);
      trim();
      // A question the model did not answer (an outage, a timeout) leaves the history: kept, it
      // put two questions in a row, and the trimming by pairs then dropped the newest one.
      const result = await ask().catch((error: unknown) => {
        history.splice(history.lastIndexOf(question), 1);
        // The caller prints the message, which may quote a server's error text and the key in it.
        if (error instanceof Error) error.message = assistant.scrub(error.message);
        throw error;
      });
      const answer = result.text || "(no answer)";
      history.push(new AIMessage(answer));
      if (result.finished) return result.text || "(the model returned no answer)";
      return `${answer}\n(stopped at the step or token limit)`;
    },
  };

  async function ask() {
    const setup = await prepareRun(assistant, github, log);
    return runAgent({
      model: assistant.model,
      messages: [setup.system, ...history],
      tools: github ? assistant.tools.list() : [],
      toolContext: setup.toolContext,
      fence: setup.fence.bounded(Math.floor(contextTokens / 2), tokenCounter),
      limits: assistant.limits,
      finalNote: setup.finalNote,
      metrics: assistant.metrics,
      log,
      kind: "chat",
    });
  }
}

/** The reply of a language-model command when no model is configured: once, and how to fix it. */
export const NO_MODEL_REPLY =
  "Talos has no language model configured, so it cannot do this yet. Whoever runs this Talos " +
  "server can set `OPENAI_API_KEY` (with `OPENAI_BASE_URL` and `TALOS_MODEL` for any " +
  "OpenAI-compatible server, such as Ollama or vLLM) and restart it.";

/** Appended when a limit cut the agent's run short. */
const PARTIAL_NOTE =
  "\n\n_Talos reached its step or token limit for this run, so this answer may be incomplete._";

/**
 * The model's answer as a reply, with a note when a limit cut the run short; without an answer,
 * why there is none: the model wrote nothing (or only its reasoning), or a limit came first.
 */
export function renderAnswer(answer: { text: string; finished: boolean }): string {
  if (answer.text) return answer.finished ? answer.text : answer.text + PARTIAL_NOTE;
  return answer.finished
    ? "The language model returned no answer (an empty reply). Asking again may help."
    : "Talos reached its step or token limit for this run before the language model answered.";
}

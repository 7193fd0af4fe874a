/** The reply of a language-model command when no model is configured: once, and how to fix it. */
export const NO_MODEL_REPLY =
  "Talos has no language model configured, so it cannot do this yet. Whoever runs this Talos " +
  "server can set `OPENAI_API_KEY` (with `OPENAI_BASE_URL` and `TALOS_MODEL` for any " +
  "OpenAI-compatible server, such as Ollama or vLLM) and restart it.";

/** Appended when a limit cut the agent's run short. */
export const PARTIAL_NOTE =
  "\n\n_Talos reached its step or token limit for this run, so this answer may be incomplete._";

// The tags reasoning models write their thinking in when a compatible server leaves it in the
// message content (DeepSeek-R1, Qwen3 and QwQ on Ollama, vLLM or LM Studio without a reasoning
// parser): https://api-docs.deepseek.com/guides/reasoning_model
const TAGS = ["think", "thinking"] as const;

/**
 * The answer without the model's reasoning before it: a leading `<think>…</think>` block, or, when
 * the chat template put the opening tag in the prompt, everything up to the first `</think>` (if
 * no `<think>` comes before it, which would be an answer quoting the tags). A block never closed
 * (the output limit hit mid-thought) is all reasoning: the answer is empty. Linear: a few
 * `indexOf` scans, no regular expression.
 */
export function stripReasoning(text: string): string {
  const start = text.length - text.trimStart().length;
  for (const tag of TAGS) {
    const open = `<${tag}>`;
    const close = `</${tag}>`;
    const opened = text.startsWith(open, start);
    const end = text.indexOf(close, opened ? start + open.length : start);
    if (opened && end < 0) return "";
    if (end < 0 || (!opened && text.lastIndexOf(open, end) >= 0)) continue;
    return text.slice(end + close.length).trimStart();
  }
  return text;
}

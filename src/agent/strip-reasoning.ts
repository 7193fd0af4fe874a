// The tags reasoning models write their thinking in when a compatible server leaves it in the
// message content (DeepSeek-R1, Qwen3 and QwQ on Ollama, vLLM or LM Studio without a reasoning
// parser; `<reasoning>` of models tuned with the common GRPO recipe):
// https://api-docs.deepseek.com/guides/reasoning_model
const TAGS = ["think", "thinking", "reasoning"] as const;
// gpt-oss's "harmony" format, left in the content by a server without its parser (llama.cpp, LM
// Studio, vLLM): the analysis channel, then the final one.
// https://cookbook.openai.com/articles/openai-harmony
const HARMONY_STARTS = ["<|channel|>", "<|start|>"];
const HARMONY_FINAL = "<|channel|>final<|message|>";
const HARMONY_ENDS = ["<|end|>", "<|return|>"];

/**
 * The answer without the model's reasoning before it: a leading `<think>…</think>` block, or, when
 * the chat template put the opening tag in the prompt, everything up to the first `</think>` (if
 * no `<think>` comes before it, which would be an answer quoting the tags). A block never closed
 * (the output limit hit mid-thought) is all reasoning: the answer is empty. Linear: a few
 * `indexOf` scans, no regular expression. An answer in the harmony format is its final channel
 * (none, the analysis cut short: empty), up to its end token.
 */
export function stripReasoning(text: string): string {
  const start = text.length - text.trimStart().length;
  if (HARMONY_STARTS.some((token) => text.startsWith(token, start))) {
    const final = text.lastIndexOf(HARMONY_FINAL);
    if (final < 0) return "";
    const answer = text.slice(final + HARMONY_FINAL.length);
    const ends = HARMONY_ENDS.map((token) => answer.indexOf(token)).filter((at) => at >= 0);
    return answer.slice(0, ends.length > 0 ? Math.min(...ends) : answer.length).trim();
  }
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

/**
 * A token estimate that needs no tokenizer: about four characters a token for English text and
 * code. LangChain's exact counters download tokenizer files at run time, which Talos must not do.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

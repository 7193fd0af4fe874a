import { sliceWhole } from "../slice-whole.js";

// Tool results go back into the prompt; keep each one a modest share of the budget.
export const MAX_RESULT_CHARS = 12_000;

/** Cuts a tool result to a size the prompt can afford, saying so. */
export function clipResult(text: string): string {
  if (text.length <= MAX_RESULT_CHARS) return text;
  return `${sliceWhole(text, MAX_RESULT_CHARS)}\n…(cut: ${text.length} characters in all)`;
}

import {
  afterContainers,
  fenceAt,
  firstNonSpace,
  indentColumns,
  pairSpans,
} from "../markdown/code-finder.js";

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
 * the chat template put the opening tag in the prompt, everything up to the first `</think>` that
 * stands outside Markdown code (if no `<think>` outside code comes before it, which would be an
 * answer quoting the tags). Nothing tells whether a template opened the tag, and an answer may quote the closing
 * one ("it splits on `</think>`"): in code, or in an answer that starts as JSON (a review, whose
 * strings may quote it), it is the answer's, which is kept whole. A block never closed (the
 * output limit hit mid-thought) is all reasoning: the answer is empty. An answer in the harmony
 * format is its final channel (none, the analysis cut short: empty), up to its end token. Linear:
 * `indexOf` scans and one pass over the Markdown per tag, no regular expression.
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
  const json = text.startsWith("{", start);
  for (const tag of TAGS) {
    const open = `<${tag}>`;
    const close = `</${tag}>`;
    if (text.startsWith(open, start)) {
      const end = text.indexOf(close, start + open.length);
      return end < 0 ? "" : text.slice(end + close.length).trimStart();
    }
    const end = json ? -1 : indexOutsideCode(text, close, start);
    if (end < 0) continue;
    // Quoted in code, `<think>` is the reasoning's words (a thread about the tags), no opener.
    const opener = indexOutsideCode(text, open, start);
    if (opener >= 0 && opener < end) continue;
    return text.slice(end + close.length).trimStart();
  }
  return text;
}

/** Where `token` first occurs in `text` from `from` on outside Markdown code, or -1. */
function indexOutsideCode(text: string, token: string, from: number): number {
  let at = text.indexOf(token, from);
  if (at < 0) return -1;
  const regions = codeRegions(text);
  let region = regions.next();
  while (at >= 0) {
    while (!region.done && region.value.end <= at) region = regions.next();
    if (region.done || region.value.start > at) return at;
    at = text.indexOf(token, region.value.end);
  }
  return -1;
}

/**
 * Where Markdown code lies in the text, in order: fenced blocks (to their closing fence, or the
 * end), indented blocks, and code spans, paired within a paragraph as CommonMark pairs them. Not
 * markdown-it, which is run in a worker, off the event loop, and could take a quarter of a second
 * here. It reads less than CommonMark does (a fence in a list or a quote is a fence, and only
 * blank lines, fences, list items and headings end a paragraph), and errs towards code: a tag
 * taken for code keeps reasoning in the answer, in a rare case; one missed in code cuts the
 * answer. Linear: each line is read once, and each paragraph's backticks once.
 */
function* codeRegions(text: string): Generator<{ start: number; end: number }> {
  let fence: { char: string; length: number; start: number } | undefined;
  // Where the paragraph being read starts, or -1.
  let paragraph = -1;
  for (let at = 0; at < text.length;) {
    const found = text.indexOf("\n", at);
    const end = found < 0 ? text.length : found;
    const next = end + 1;
    const indent = indentColumns(text, at, end);
    const content = afterContainers(text, at, end);
    if (fence) {
      if (indent <= 3 && closesFence(text, fence, content, end)) {
        yield { start: fence.start, end: next };
        fence = undefined;
      }
      at = next;
      continue;
    }
    const opened = indent <= 3 ? fenceAt(text, content, end) : undefined;
    const blank = content === end;
    const indented = !blank && paragraph < 0 && indent >= 4;
    // A list item or a heading starts a block of its own: a backtick left unpaired in the item
    // before does not pair with this one's.
    const starts = content !== afterQuoteMarks(text, at, end) || text[content] === "#";
    if (paragraph >= 0 && (blank || opened || starts)) {
      yield* pairSpans(text, paragraph, at);
      paragraph = -1;
    }
    if (opened) fence = { ...opened, start: at };
    else if (indented) yield { start: at, end: next };
    else if (!blank && paragraph < 0) paragraph = at;
    at = next;
  }
  if (paragraph >= 0) yield* pairSpans(text, paragraph, text.length);
  // A fence never closed runs to the end.
  if (fence) yield { start: fence.start, end: text.length };
}

/** Where a line's text starts past spaces and quote markers (not list markers). */
function afterQuoteMarks(text: string, start: number, end: number): number {
  let i = start;
  while (i < end && (text[i] === " " || text[i] === "\t" || text[i] === ">")) i++;
  return i;
}

/** Whether the line's text at `at` closes the fence: as long a run of its character, alone. */
function closesFence(
  text: string,
  fence: { char: string; length: number },
  at: number,
  end: number,
): boolean {
  let i = at;
  while (i < end && text[i] === fence.char) i++;
  return i - at >= fence.length && firstNonSpace(text, i, end) === end;
}

import { afterContainers } from "./code-finder.js";

/**
 * Drops link reference definitions (`[label]: destination "title"`), which render as nothing:
 * neither Markdown's comment idiom, `[//]: # (note)`, nor any other is seen by a reader, title
 * included. See definitionRanges for what is read as one.
 */
export function dropLinkDefinitions(text: string): string {
  let out = "";
  let at = 0;
  for (const [start, end] of definitionRanges(text)) {
    out += text.slice(at, start);
    at = end;
  }
  return at < text.length ? out + text.slice(at) : out;
}

/**
 * Where in `text` link reference definitions are, each from its first line's start to past its
 * last line's break. As CommonMark reads them, over lines too: a label over lines (no blank one,
 * no `[` in it, escapes taken), the destination on the next line, the title on the line after
 * the destination. Read line by line, as at the top level: one inside a quote or a list is found
 * too, and one in a paragraph's middle (text there) as well. A title left open runs on to the
 * line that closes it or to a blank line, and a title over lines is hidden to its closer whatever
 * follows it there (CommonMark shows that line as text): both err toward hiding. Linear: a label
 * stops at the next line that could start one, and a definition is passed whole.
 */
export function definitionRanges(text: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start < text.length;) {
    const end = lineEnd(text, start);
    const at = afterContainers(text, start, end);
    const last = text[at] === "[" ? readDefinition(text, at) : -1;
    if (last === -1) start = end + 1;
    else {
      ranges.push([start, Math.min(last + 1, text.length)]);
      start = last + 1;
    }
  }
  return ranges;
}

// CommonMark's labels are at most 999 characters: a longer `[…]` names no definition.
const MAX_LABEL = 999;

const TITLE_CLOSERS: Record<string, string> = { '"': '"', "'": "'", "(": ")" };

/**
 * The end of the last line of the definition whose `[` is at `open` (its line break's index, or
 * the text's length), or -1 when there is none.
 */
function readDefinition(text: string, open: number): number {
  let i = open + 1;
  let named = false;
  for (; ; i++) {
    if (i >= text.length || i - open > MAX_LABEL + 1) return -1;
    const char = text[i];
    if (char === "]") break;
    if (char === "\\") {
      named = true;
      // An escaped line break is still one.
      if (text[i + 1] !== "\n") i++;
    } else if (char === "[") return -1;
    else if (char === "\n") {
      if (isBlankLine(text, i + 1)) return -1;
    } else if (char !== " " && char !== "\t") named = true;
  }
  if (!named || text[i + 1] !== ":") return -1;
  // The destination, on this line or the next.
  let at = skipSpaces(text, i + 2);
  if (text[at] === "\n") {
    if (isBlankLine(text, at + 1)) return -1;
    at = skipSpaces(text, afterContainers(text, at + 1, lineEnd(text, at + 1)));
  }
  const destinationEnd = readDestination(text, at);
  if (destinationEnd === -1) return -1;
  const stop = lineEnd(text, destinationEnd);
  const title = skipSpaces(text, destinationEnd);
  if (title < stop) {
    // A title on the destination's line, after a space; words there make the line text.
    const closer = TITLE_CLOSERS[text[title]!];
    return title === destinationEnd || closer === undefined ? -1 : readTitle(text, title, closer);
  }
  // Or on the next line, or none: a title with words after it there is text, the rest a
  // definition.
  if (stop >= text.length) return stop;
  const next = skipSpaces(text, afterContainers(text, stop + 1, lineEnd(text, stop + 1)));
  const closer = TITLE_CLOSERS[text[next] ?? ""];
  const end = closer === undefined ? -1 : readTitle(text, next, closer);
  return end === -1 ? stop : end;
}

/** Where a destination at `at` ends: `<…>` on one line, or a run without spaces; -1 if none. */
function readDestination(text: string, at: number): number {
  if (at >= text.length || text[at] === "\n") return -1;
  if (text[at] === "<") {
    for (let i = at + 1; i < text.length && text[i] !== "\n"; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === ">") return i + 1;
      else if (text[i] === "<") return -1;
    }
    return -1;
  }
  let i = at;
  while (i < text.length && text[i] !== " " && text[i] !== "\t" && text[i] !== "\n") i++;
  return i;
}

/**
 * The end of the line a title opened at `at` ends on, or -1 when it closes on that line with
 * words after it. Open, it runs to a blank line or the end; closed on a later line, it is taken
 * to there whatever follows, so that no line is read twice.
 */
function readTitle(text: string, at: number, closer: string): number {
  const opened = lineEnd(text, at);
  for (let i = at + 1; i < text.length; i++) {
    const char = text[i];
    if (char === "\\") {
      if (text[i + 1] !== "\n") i++;
    } else if (char === closer) {
      const stop = lineEnd(text, i);
      return stop > opened || skipSpaces(text, i + 1) === stop ? stop : -1;
    } else if (char === "\n" && isBlankLine(text, i + 1)) return i;
  }
  return text.length;
}

function lineEnd(text: string, at: number): number {
  const end = text.indexOf("\n", at);
  return end === -1 ? text.length : end;
}

function skipSpaces(text: string, at: number): number {
  let i = at;
  while (text[i] === " " || text[i] === "\t") i++;
  return i;
}

/** Whether the line starting at `start` is blank (spaces and tabs only), the text's end too. */
function isBlankLine(text: string, start: number): boolean {
  const at = skipSpaces(text, start);
  return at >= text.length || text[at] === "\n";
}

import { afterContainers, createCodeFinder, isEscaped } from "./code-finder.js";

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
 * last line's break, joined where they overlap. As CommonMark reads them, over lines too: a label
 * over lines (no blank one, no `[` in it, escapes taken), the destination on the next line, the
 * title on the line after the destination. Read line by line, as at the top level: one inside a
 * quote or a list is found too, and one in a paragraph's middle (text there) as well. A title left
 * open runs on to the line that closes it or to a blank line, past the blocks that would end it
 * (a quote, a heading, a fence), and a title over lines is hidden to its closer whatever follows
 * it there (CommonMark shows that line as text): both err toward hiding. What cannot be told
 * without a full parse is read each way: every line that may start one is read, inside another's
 * range too (a title read past a block's start had taken the opener of the next definition's
 * title for its closer, and that title's lines were shown), and a destination on the next line
 * with and without what looks like a quote or list marker before it. Linear: a label stops at the
 * next `[`, and a title's closer and the next blank line are each searched forward once.
 */
export function definitionRanges(text: string): Array<[number, number]> {
  const find = createTitleFinder(text);
  const ranges: Array<[number, number]> = [];
  const referenced = text.includes("[^") ? footnotesReferenced(text) : new Set<string>();
  for (let start = 0; start < text.length;) {
    const end = lineEnd(text, start);
    const at = afterContainers(text, start, end);
    const label = text[at] === "[" && text[at + 1] === "^" ? footnoteLabel(text, at) : undefined;
    if (label !== undefined) {
      // A footnote, never a link definition: GitHub shows it (at the comment's end) when the text
      // refers to it, and nothing of it when not. It had been read the other way round: an
      // unreferenced one of several words reached the model whole, a referenced one of one word
      // was dropped (found by a review).
      // One that is shown is read on line by line: a quote or list after it is no part of it,
      // and a definition there, or in its own later paragraphs, shows nothing (a definition
      // after a kept footnote had reached the model whole; found by a review).
      if (!referenced.has(label)) {
        const last = footnoteEnd(text, end);
        ranges.push([start, Math.min(last + 1, text.length)]);
        start = last + 1;
      } else start = end + 1;
      continue;
    }
    const last = text[at] === "[" ? readDefinition(text, at, find) : -1;
    if (last !== -1) {
      const range: [number, number] = [start, Math.min(last + 1, text.length)];
      const previous = ranges.at(-1);
      if (previous && range[0] <= previous[1]) previous[1] = Math.max(previous[1], range[1]);
      else ranges.push(range);
    }
    start = end + 1;
  }
  return ranges;
}

/**
 * The label of a footnote definition whose `[` is at `open` (`[^label]:`, lower-cased as labels
 * are matched), or undefined. cmark-gfm's labels hold no `]`, space, tab or line break; a `[`
 * ends one here too, so that the scans of `[^[^[^…` do not overlap.
 */
function footnoteLabel(text: string, open: number): string | undefined {
  const close = footnoteLabelEnd(text, open + 2);
  return close !== -1 && text[close + 1] === ":"
    ? text.slice(open + 2, close).toLowerCase()
    : undefined;
}

/** Where a footnote label starting at `from` ends (its `]`), or -1; at most MAX_LABEL long. */
function footnoteLabelEnd(text: string, from: number): number {
  for (let i = from; i < text.length && i - from <= MAX_LABEL; i++) {
    const char = text[i];
    if (char === "]") return i > from ? i : -1;
    if (char === " " || char === "\t" || char === "\n" || char === "[") return -1;
  }
  return -1;
}

/**
 * The labels `[^label]` refers to anywhere in `text` but in a definition's own `[^label]:`. One
 * pass: each line's start, and where its containers (quotes, list markers) end, are found once
 * as the search passes them, not again for each `[^` on a long line.
 */
function footnotesReferenced(text: string): Set<string> {
  const labels = new Set<string>();
  let lineStart = 0;
  let passed = 0;
  let containersEnd = -1;
  // In code GitHub shows as written, `[^label]` refers to nothing (the finder finds less code
  // than GitHub does: a reference in code it misses keeps its footnote, erring toward showing).
  const code = createCodeFinder(text);
  let region = code.next(0);
  for (let at = text.indexOf("[^"); at !== -1; at = text.indexOf("[^", at + 2)) {
    while (region && region.end <= at) region = code.next(region.end);
    if (region && region.start <= at) continue;
    for (; passed < at; passed++) {
      if (text[passed] === "\n") {
        lineStart = passed + 1;
        containersEnd = -1;
      }
    }
    const close = footnoteLabelEnd(text, at + 2);
    // An escaped `\[` refers to nothing.
    if (close === -1 || isEscaped(text, at)) continue;
    if (containersEnd === -1) containersEnd = afterContainers(text, lineStart, text.length);
    if (text[close + 1] !== ":" || containersEnd !== at)
      labels.add(text.slice(at + 2, close).toLowerCase());
  }
  return labels;
}

/**
 * The end of a footnote definition's last line, its first line ending at `firstEnd`: the lines
 * that follow it up to a blank line, then each later block indented four spaces or more (its
 * paragraphs), up to one that is not, or another footnote's definition. Errs toward the longer.
 */
function footnoteEnd(text: string, firstEnd: number): number {
  let last = firstEnd;
  while (last < text.length) {
    const next = last + 1;
    if (isBlankLine(text, next)) {
      // Past blank lines, the footnote goes on only with an indented line.
      let line = next;
      while (line < text.length && isBlankLine(text, line)) {
        const end = lineEnd(text, line);
        if (end >= text.length) return last;
        line = end + 1;
      }
      if (skipSpaces(text, line) - line < 4 && text[line] !== "\t") return last;
      last = lineEnd(text, line);
      continue;
    }
    const at = afterContainers(text, next, lineEnd(text, next));
    if (text[at] === "[" && text[at + 1] === "^" && footnoteLabel(text, at) !== undefined)
      return last;
    last = lineEnd(text, next);
  }
  return last;
}

// CommonMark's labels are at most 999 characters: a longer `[…]` names no definition. Counted as
// markdown-it counts them, in code points, without the indent and markers of a continued line.
const MAX_LABEL = 999;

const TITLE_CLOSERS: Record<string, string> = { '"': '"', "'": "'", "(": ")" };

/**
 * The end of the last line of the definition whose `[` is at `open` (its line break's index, or
 * the text's length), or -1 when there is none.
 */
function readDefinition(text: string, open: number, find: TitleFinder): number {
  let i = open + 1;
  let named = false;
  for (let length = 0; ; i++) {
    if (i >= text.length) return -1;
    const char = text[i]!;
    if (char === "]") break;
    if (char === "[") return -1;
    if (char === "\\") {
      named = true;
      // An escaped line break is still one.
      if (text[i + 1] !== "\n") i++;
    } else if (char === "\n") {
      if (isBlankLine(text, i + 1)) return -1;
      // Counted from the continued line's text (a `[` there is still seen by the next turn).
      i = afterContainers(text, i + 1, lineEnd(text, i + 1)) - 1;
      continue;
    } else if (char !== " " && char !== "\t") named = true;
    // A surrogate pair is one code point.
    const code = char.charCodeAt(0);
    if ((code < 0xdc00 || code > 0xdfff) && ++length > MAX_LABEL) return -1;
  }
  if (!named || text[i + 1] !== ":") return -1;
  // The destination, on this line or the next.
  const at = skipSpaces(text, i + 2);
  if (text[at] !== "\n") return readRest(text, at, find);
  if (isBlankLine(text, at + 1)) return -1;
  // On the next line: a `>` or `- ` there starts a quote or a list, or, where the line continues
  // an indented paragraph, is the destination itself. Both are read; the longer is hidden.
  const next = skipSpaces(text, at + 1);
  const stripped = skipSpaces(text, afterContainers(text, at + 1, lineEnd(text, at + 1)));
  const plain = readRest(text, next, find);
  return stripped === next ? plain : Math.max(plain, readRest(text, stripped, find));
}

/** What follows a destination at `at`: the title, on its line or the next. See readDefinition. */
function readRest(text: string, at: number, find: TitleFinder): number {
  const destinationEnd = readDestination(text, at);
  if (destinationEnd === -1) return -1;
  const stop = lineEnd(text, destinationEnd);
  const title = skipSpaces(text, destinationEnd);
  if (title < stop) {
    // A title on the destination's line, after a space; words there make the line text.
    const closer = TITLE_CLOSERS[text[title]!];
    return title === destinationEnd || closer === undefined ? -1 : readTitle(text, title, find);
  }
  // Or on the next line, or none: a title with words after it there is text, the rest a
  // definition.
  if (stop >= text.length) return stop;
  const next = skipSpaces(text, afterContainers(text, stop + 1, lineEnd(text, stop + 1)));
  const end = TITLE_CLOSERS[text[next] ?? ""] === undefined ? -1 : readTitle(text, next, find);
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
 * to there whatever follows.
 */
function readTitle(text: string, at: number, find: TitleFinder): number {
  const closer = TITLE_CLOSERS[text[at]!]!;
  const opened = lineEnd(text, at);
  const close = find.closer(closer, at + 1);
  const blank = find.blankLine(at);
  // Open to the blank line (the line before it ends the title), or to the end.
  if (close === -1 || blank < close) return blank >= text.length ? text.length : blank - 1;
  const stop = lineEnd(text, close);
  return stop > opened || skipSpaces(text, close + 1) === stop ? stop : -1;
}

interface TitleFinder {
  /** The first unescaped `closer` at or after `from`, or -1. */
  closer(closer: string, from: number): number;
  /** Where the first blank line after the line holding `from` starts (or the text's length). */
  blankLine(from: number): number;
}

/**
 * Searches that go forward: asked with positions that mostly grow (each title opens after the last
 * one did), each is linear in the text, however many definitions ask. A position before the last
 * one asked is still answered within the range a closer could be missed from, which only hides
 * more.
 */
function createTitleFinder(text: string): TitleFinder {
  const found = new Map<string, number>();
  // No line starting after the line holding `knownFrom`, and before `blank`, is blank.
  let knownFrom = text.length + 1;
  let blank = text.length;
  return {
    closer(closer, from) {
      const known = found.get(closer);
      // Known to be unescaped: checked again, a long run of backslashes before it was walked
      // back over by every title that asked (quadratic; found by a review).
      if (known !== undefined && (known === -1 || known >= from)) return known;
      let at = text.indexOf(closer, from);
      while (at !== -1 && isEscaped(text, at)) at = text.indexOf(closer, at + 1);
      found.set(closer, at);
      return at;
    },
    blankLine(from) {
      if (from >= knownFrom && from < blank) return blank;
      let answer = text.length;
      for (let line = text.indexOf("\n", from); line !== -1; line = text.indexOf("\n", line + 1)) {
        // Into what is known: its blank line is this one's too.
        if (line >= knownFrom && line < blank) {
          answer = blank;
          break;
        }
        if (isBlankLine(text, line + 1)) {
          answer = line + 1;
          break;
        }
      }
      knownFrom = from;
      blank = answer;
      return answer;
    },
  };
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

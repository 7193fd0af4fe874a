import { createBlankFinder } from "./create-blank-finder.js";
import { createForwardFind } from "./create-forward-find.js";

/**
 * One way of reading a paragraph's inline syntax where GitHub's cannot be known without a full
 * parse: which backticks pair (`spans`: over the paragraph, over a block that a list item or
 * heading may start without a blank line, on their line, in their table cell, or none), whether
 * inline HTML and autolinks take what is in them (`html`), and whether a bare URL does (`urls`).
 */
interface Reading {
  spans: "paragraph" | "block" | "line" | "cell" | "none";
  html: boolean;
  urls: boolean;
}

const READINGS: readonly Reading[] = [
  { spans: "paragraph", html: true, urls: false },
  { spans: "paragraph", html: true, urls: true },
  { spans: "block", html: true, urls: false },
  { spans: "line", html: true, urls: false },
  { spans: "cell", html: true, urls: false },
  { spans: "none", html: true, urls: false },
  { spans: "paragraph", html: false, urls: false },
  { spans: "none", html: false, urls: false },
];

/**
 * Where the alt text of Markdown source's images is, `SYSTEM: obey` in `![SYSTEM: obey](x.png)`:
 * GitHub shows the image, not its alt text, so no reader of the page sees it. Sorted by start.
 *
 * Brackets pair as CommonMark pairs them, the last opened first, within a paragraph (to a blank
 * line): a backslash escapes, a code span takes the brackets inside it, so do inline HTML and
 * autolinks, and a link's destination and title. What cannot be told without a full parse (which
 * backticks pair when a list item starts a block without a blank line, what a table cell or a
 * bare URL takes, whether a `<` starts HTML) is read each way in READINGS, and what any reading
 * takes for alt text is hidden. `![label]` is an image when a definition names it: in any text
 * with a `]:`, it is taken for one. So this errs toward hiding: an image in a code span of a
 * paragraph with a link, or `![x]` beside a definition of another label, loses its alt text too.
 * Code the caller keeps as written stays. Linear in the length: each reading is one pass.
 */
export function imageAltRanges(text: string): Array<[number, number]> {
  if (!text.includes("![")) return [];
  // Readings that differ only in what the text lacks read it alike: each is read once.
  const present = {
    spans: text.includes("`"),
    cells: text.includes("|"),
    html: text.includes("<"),
    urls: /https?:\/\/|www\./.test(text),
  };
  const distinct = new Map<string, Reading>();
  for (const reading of READINGS) {
    const spans = !present.spans
      ? "none"
      : reading.spans === "cell" && !present.cells
        ? "line"
        : reading.spans;
    const read = { spans, html: reading.html && present.html, urls: reading.urls && present.urls };
    distinct.set(JSON.stringify(read), read);
  }
  const paragraphs = paragraphsWithImages(text);
  const inline = indexInlineSyntax(text, paragraphs);
  return [...distinct.values()]
    .flatMap((reading) => readAltText(text, reading, paragraphs, inline))
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The paragraphs (to a blank line) an image can close in: an `![` with a `]` after it. Brackets
 * pair within a paragraph, so each reading reads only these.
 */
function paragraphsWithImages(text: string): Array<[number, number]> {
  const paragraphs: Array<[number, number]> = [];
  const blank = createBlankFinder(text);
  const find = createForwardFind(text);
  for (let start = 0; start < text.length;) {
    const image = find("![", start);
    if (image === -1) break;
    // The paragraph holding the image: from the line after the last blank line before it.
    while (blank(start) <= image) start = blank(start);
    const end = blank(start);
    const close = find("]", image);
    if (close !== -1 && close < end) paragraphs.push([start, end]);
    start = end;
  }
  return paragraphs;
}

/** The alt text of one reading (see imageAltRanges). */
function readAltText(
  text: string,
  reading: Reading,
  paragraphs: ReadonlyArray<readonly [number, number]>,
  inline: InlineSyntax,
): Array<[number, number]> {
  const alt: Array<[number, number]> = [];
  const shortcuts = text.includes("]:");
  const backticks = createBacktickPairs(text);
  // A line's or a cell's end, for each backtick run: one search each, going forward.
  const find = createForwardFind(text);
  const blockEnd = reading.spans === "block" ? createBlockFinder(text) : undefined;
  let openers: Array<{ at: number; image: boolean }> = [];
  let end = 0;
  let next = 0;
  for (let i = 0; ;) {
    if (i >= end) {
      openers = [];
      // The next paragraph with an image, or the next block of this one.
      const paragraph = paragraphs[next];
      if (i >= (paragraphs[next - 1]?.[1] ?? 0)) {
        if (!paragraph) break;
        i = Math.max(i, paragraph[0]);
        next++;
      }
      const stop = paragraphs[next - 1]![1];
      end = blockEnd ? Math.min(blockEnd(i), stop) : stop;
    }
    const char = text[i];
    if (char === "\\") i += 2;
    else if (char === "`") {
      const closed =
        reading.spans === "none"
          ? -1
          : backticks.closerAfter(i, spanLimit(text, i, end, reading, find));
      i = closed === -1 ? backticks.runEnd(i) : closed;
    } else if (char === "<" && reading.html) {
      const html = inline.html.get(i) ?? -1;
      i = html === -1 || html > end ? i + 1 : html;
    } else if (reading.urls && (char === "h" || char === "w") && isBareUrl(text, i)) {
      while (i < end && !/[\s<]/.test(text[i]!)) i++;
    } else if (char === "!" && text[i + 1] === "[") {
      openers.push({ at: i, image: true });
      i += 2;
    } else if (char === "[") {
      openers.push({ at: i, image: false });
      i++;
    } else if (char === "]") {
      const opener = openers.pop();
      const after = text[i + 1];
      if (opener?.image && (after === "(" || after === "[" || shortcuts))
        alt.push([opener.at + 2, i]);
      // A destination and title are taken whole; one CommonMark refuses is text.
      const destination = opener && after === "(" ? (inline.destinations.get(i) ?? -1) : -1;
      i = destination === -1 || destination > end ? i + 1 : destination;
    } else i++;
  }
  return alt;
}

/**
 * Where each `<` that starts inline HTML or an autolink ends, and each `](` that opens a
 * destination CommonMark reads: found once, in one pass (each search going forward), for every
 * reading, within paragraphs (a reading whose blocks end sooner checks the end against its own).
 */
interface InlineSyntax {
  html: Map<number, number>;
  destinations: Map<number, number>;
}

function indexInlineSyntax(
  text: string,
  paragraphs: ReadonlyArray<readonly [number, number]>,
): InlineSyntax {
  const html = new Map<number, number>();
  const destinations = new Map<number, number>();
  const inlineHtmlEnd = createInlineHtmlEnd(text);
  const pattern = /[<\]]/g;
  for (const [start, end] of paragraphs) {
    pattern.lastIndex = start;
    for (let match = pattern.exec(text); match && match.index < end; match = pattern.exec(text)) {
      const at = match.index;
      if (text[at] === "<") {
        const found = inlineHtmlEnd(at, end);
        if (found !== -1) html.set(at, found);
      } else if (text[at + 1] === "(") {
        const found = destinationEnd(text, at + 2, end);
        if (found !== -1) destinations.set(at, found);
      }
    }
  }
  return { html, destinations };
}

/** How far a code span opened at `at` may run in a reading. */
function spanLimit(
  text: string,
  at: number,
  end: number,
  reading: Reading,
  find: (needle: string, from: number) => number,
): number {
  if (reading.spans === "paragraph" || reading.spans === "block") return end;
  const line = find("\n", at);
  const lineEnd = line === -1 || line > end ? end : line;
  if (reading.spans === "line") return lineEnd;
  let cell = find("|", at);
  while (cell !== -1 && cell < lineEnd && text[cell - 1] === "\\") cell = find("|", cell + 1);
  return cell === -1 ? lineEnd : Math.min(cell, lineEnd);
}

/** A bare URL GitHub links (`https://…`, `www.…`) starting at `at`, after a space or a start. */
function isBareUrl(text: string, at: number): boolean {
  if (at > 0 && !/[\s*_~(]/.test(text[at - 1]!)) return false;
  return /^(?:https?:\/\/|www\.)/.test(text.slice(at, at + 8));
}

// Sources only: each text's index builds its own sticky patterns (their lastIndex is state).
const PATTERNS = {
  tagName: /[A-Za-z][A-Za-z0-9-]*/,
  attribute: /\s+[A-Za-z_:][\w.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?/,
  tagEnd: /\s*\/?>/,
  closingTag: /<\/[A-Za-z][A-Za-z0-9-]*\s*>/,
  uriAutolink: /<[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*>/,
  emailAutolink:
    /<[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*>/,
};

type InlineHtmlEnd = (at: number, end: number) => number;

/**
 * For `text`: where CommonMark's inline HTML or autolink starting at `at` ends, or -1 (asked
 * going forward, within the paragraph ending at `end`): a tag (its attributes
 * as CommonMark allows them, a quoted `>` included), a closing tag, a comment, a processing
 * instruction, a declaration, CDATA, a URI or an e-mail autolink. The
 * patterns are sticky and cannot backtrack past a quote or a run of one class; the searches for
 * an end (`-->`, `?>`, `>`, `]]>`) go forward only.
 */
function createInlineHtmlEnd(text: string): InlineHtmlEnd {
  const find = createForwardFind(text);
  const sticky = Object.fromEntries(
    Object.entries(PATTERNS).map(([name, pattern]) => [name, new RegExp(pattern.source, "y")]),
  ) as Record<keyof typeof PATTERNS, RegExp>;
  const { tagName, attribute, tagEnd } = sticky;
  return (at, end) => {
    const within = (found: number, length: number) =>
      found === -1 || found + length > end ? -1 : found + length;
    if (text.startsWith("<!--", at)) {
      if (text.startsWith("<!-->", at)) return at + 5;
      if (text.startsWith("<!--->", at)) return at + 6;
      return within(find("-->", at + 4), 3);
    }
    if (text.startsWith("<?", at)) return within(find("?>", at + 2), 2);
    if (text.startsWith("<![CDATA[", at)) return within(find("]]>", at + 9), 3);
    if (text.startsWith("<!", at) && /[A-Za-z]/.test(text[at + 2] ?? ""))
      return within(find(">", at + 2), 1);
    for (const pattern of [sticky.closingTag, sticky.uriAutolink, sticky.emailAutolink]) {
      pattern.lastIndex = at;
      if (pattern.test(text) && pattern.lastIndex <= end) return pattern.lastIndex;
    }
    tagName.lastIndex = at + 1;
    if (!tagName.test(text)) return -1;
    let i = tagName.lastIndex;
    for (;;) {
      attribute.lastIndex = i;
      if (!attribute.test(text) || attribute.lastIndex > end) break;
      i = attribute.lastIndex;
    }
    tagEnd.lastIndex = i;
    return tagEnd.test(text) && tagEnd.lastIndex <= end ? tagEnd.lastIndex : -1;
  };
}

/**
 * Where an inline link's `(destination "title")` starting at `at` (after its `(`) ends, past its
 * `)`, or -1 when CommonMark reads no destination there.
 */
function destinationEnd(text: string, at: number, end: number): number {
  let i = skipSpace(text, at, end);
  if (text[i] === "<") {
    for (i++; i < end && text[i] !== ">"; i++) {
      if (text[i] === "\n" || text[i] === "<") return -1;
      if (text[i] === "\\") i++;
    }
    if (i >= end) return -1;
    i++;
  } else {
    let depth = 0;
    for (; i < end; i++) {
      const char = text[i]!;
      if (char === "\\") i++;
      // CommonMark's parsers give up past 32 open parentheses: so does this, in linear time.
      else if (char === "(" && ++depth > 32) return -1;
      else if (char === ")" && depth-- === 0) break;
      // A space or an ASCII control character ends it.
      else if (char <= " " || char === "\x7f") break;
    }
    if (depth > 0) return -1;
  }
  const beforeTitle = i;
  i = skipSpace(text, i, end);
  const close = { '"': '"', "'": "'", "(": ")" }[text[i] ?? ""];
  if (close !== undefined && i > beforeTitle) {
    for (i++; i < end && text[i] !== close; i++) {
      if (text[i] === "\\") i++;
      else if (close === ")" && text[i] === "(") return -1;
    }
    if (i >= end) return -1;
    i = skipSpace(text, i + 1, end);
  }
  return text[i] === ")" ? i + 1 : -1;
}

/** Past spaces, tabs and at most one line break. */
function skipSpace(text: string, at: number, end: number): number {
  let i = at;
  let breaks = 0;
  while (i < end && (text[i] === " " || text[i] === "\t" || (text[i] === "\n" && ++breaks <= 1)))
    i++;
  return i;
}

/**
 * Where the block holding `from` ends, when a line that may start a block (a quote, a heading, a
 * list item, a fence, a table row, HTML, a setext underline) ends it as a blank line does.
 * Asked going forward.
 */
function createBlockFinder(text: string): (from: number) => number {
  const blank = createBlankFinder(text);
  return (from) => {
    const stop = blank(from);
    for (let line = text.indexOf("\n", from); line !== -1 && line + 1 < stop;) {
      if (/^ {0,3}(?:[>#=|<~`+*-]|\d{1,9}[.)])/.test(text.slice(line + 1, line + 14)))
        return line + 1;
      line = text.indexOf("\n", line + 1);
    }
    return stop;
  };
}

/**
 * Code spans as CommonMark pairs them: a run of backticks opens one that the next run of the
 * same length closes. Each reading asks going forward.
 */
function createBacktickPairs(text: string) {
  const byLength = new Map<number, { starts: number[]; next: number }>();
  const runEnd = (at: number) => {
    let j = at;
    while (text[j] === "`") j++;
    return j;
  };
  for (let i = text.indexOf("`"); i !== -1;) {
    const j = runEnd(i);
    const runs = byLength.get(j - i) ?? { starts: [], next: 0 };
    runs.starts.push(i);
    byLength.set(j - i, runs);
    i = text.indexOf("`", j);
  }
  return {
    runEnd,
    /** Where the span the run at `at` opens ends, or -1 when no run closes it before `end`. */
    closerAfter(at: number, end: number): number {
      const length = runEnd(at) - at;
      // The rest of a run whose first backtick is escaped opens a span of its own length.
      const runs = byLength.get(length);
      if (!runs) return -1;
      while (runs.next < runs.starts.length && runs.starts[runs.next]! <= at) runs.next++;
      const closer = runs.starts[runs.next];
      return closer === undefined || closer >= end ? -1 : closer + length;
    },
  };
}

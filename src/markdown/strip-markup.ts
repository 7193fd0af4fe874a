import {
  afterContainers,
  createCodeFinder,
  fenceAt,
  firstNonSpace,
  type CodeRegion,
} from "./code-finder.js";
import { createBlankFinder } from "./create-blank-finder.js";
import { createForwardFind } from "./create-forward-find.js";
import { createHtmlScanner, type HtmlPiece, type HtmlScanner } from "./html-scanner.js";
import { imageAltRanges } from "./image-alt-ranges.js";
import { definitionRanges } from "./link-definitions.js";

// Elements GitHub renders (or drops) in Markdown. Only these are treated as markup, so that code
// such as `Array<string>` keeps its angle brackets.
const HTML_TAGS = new Set(
  (
    "a abbr b bdi bdo blockquote br caption center cite code dd del details dfn div dl dt em " +
    "font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p picture pre q rp rt ruby s samp small " +
    "source span strike strong sub summary sup table tbody td tfoot th thead time tr tt u ul " +
    "var video wbr"
  ).split(" "),
);
// Dropped with everything inside them, as GitHub's sanitizer does.
const RAW_TEXT = new Set(["script", "style", "template", "noscript", "iframe", "object", "xmp"]);
const VOID = new Set(["br", "hr", "img", "source", "wbr"]);
// HTML blocks that a blank line does not end (script and style are skipped whole).
const RAW_BLOCKS = new Set(["pre", "textarea"]);

/**
 * Markdown source without what its reader on GitHub does not see: HTML comments, hidden and
 * raw-text elements, markup (its text kept), `<?…>` and `<!…>` declarations, fence info
 * strings, and images' alt text. Code (a fenced block, a code span) is kept as written, where the code finder is sure
 * of it: a `'<!--'` in code hid the rest of a comment, and a fence's `<template>` the block. It
 * errs toward hiding: what it cannot place is read as text, and what it hides stays hidden.
 * Linear in the text's length.
 */
export function stripMarkup(text: string): string {
  const scanner = createHtmlScanner(text);
  const code = createCodeFinder(text);
  const declarations = createDeclarationFinder(text);
  const afterBlank = createBlankFinder(text);
  // Apart, so that each is asked with positions that never go back.
  const paragraphEnd = createBlankFinder(text);
  const lineOf = createLineCursor(text);
  const hidden = createMask(text);
  const findAhead = createForwardFind(text);
  let out = "";
  let at = 0;
  // Code is looked for from here: after HTML, GitHub may read the lines up to a blank line (or a
  // whole raw block) as HTML, where backticks and fences are text and a comment hides.
  let codeFrom = 0;
  let suspendedTo = -1;
  const suspend = (to: number) => {
    if (to <= suspendedTo) return;
    suspendedTo = to;
    codeFrom = afterBlank(to);
  };
  let declarationsFrom = 0;
  // Where the line that ends the last HTML block ending at a line (not a blank line) ends: a
  // `<pre>`'s or `<textarea>`'s, a declaration's or a comment's, each opening its line.
  let rawLineEnd = -1;
  // Blocks do not nest: one opened inside the last is part of it.
  const rawBlock = (start: number, end: number) => {
    if (start > rawLineEnd) rawLineEnd = lineEnd(end);
  };
  // Where HTML found on a quote's or a list item's line may last.
  let containerZoneEnd = -1;
  // Where the HTML block that the last HTML opening its line started ends at the earliest: the
  // line after a blank line.
  let zoneUntil = -1;
  const zoneEnd = createBlankFinder(text);
  const lineEnd = (at: number) => {
    const end = text.indexOf("\n", at);
    return end === -1 ? text.length : end;
  };
  let piece = scanner.next(0);
  // The next code region, kept until it is used or passed: the finder hands each out once.
  let region: CodeRegion | undefined;
  for (;;) {
    const declaration = declarations.next(Math.max(declarationsFrom, at));
    const markupAt = Math.min(piece?.start ?? text.length, declaration?.start ?? text.length);
    const from = Math.max(at, codeFrom);
    if (!region || region.start < from) region = code.next(from);
    if (region && region.start < markupAt) {
      // Past a comment GitHub leaves open, nothing is seen, code included.
      if (region.start >= hidden.hiddenFrom()) break;
      // Code as written, what looks like markup in it included; a fence without its info string.
      out += hidden.keep(at, region.start);
      out += region.info
        ? text.slice(region.start, region.info.start) + text.slice(region.info.end, region.end)
        : text.slice(region.start, region.end);
      at = region.end;
      region = undefined;
      if (piece && piece.start < at) piece = scanner.next(at);
      continue;
    }
    if (declaration && declaration.start === markupAt) {
      declarationsFrom = declaration.start + 2;
      // HTML where GitHub may read it so: an HTML block's start, closed within its paragraph
      // (inline), or inside HTML already. Else it is text, as GitHub shows an unclosed `<?`.
      const opensBlock = lineOf(declaration.start).containersEnd === declaration.start;
      const html =
        opensBlock ||
        (declaration.closed && declaration.blockEnd <= paragraphEnd(declaration.start)) ||
        declaration.start < codeFrom;
      if (html) {
        // Its HTML block ends with the line of its closer, as a `<pre>`'s does.
        if (opensBlock) rawBlock(declaration.start, declaration.blockEnd - 1);
        // Hidden to its first `>`, as HTML's bogus comment; one that opens no block, within the
        // HTML it is in, or its paragraph (inline), at most: the next tag GitHub renders after
        // those ends it, and later lines keep their own reading. A comment opened after its `>`
        // inside a `<?…?>`, which GitHub passes on whole, is never closed: what closes it is text.
        const within = declaration.start < codeFrom ? codeFrom : paragraphEnd(declaration.start);
        hidden.hide(
          declaration.start,
          opensBlock ? declaration.end : Math.min(declaration.end, within),
        );
        if (declaration.openComment !== undefined) hidden.hideFrom(declaration.openComment);
        suspend(declaration.blockEnd);
      }
      continue;
    }
    if (!piece) break;
    // A comment opened inside GitHub's HTML block and closed past its end is never closed: what
    // closes it in the source is text there. The block is one that ends with a line (a
    // comment's, a `<pre>`'s, a declaration's, opening its line), one any other HTML opening its
    // line starts, to a blank line, or one in a quote or a list item, which ends with its
    // container (at a line without its marker or indent), which this does not follow.
    const line = lineOf(piece.start);
    const opensLine = line.containersEnd === piece.start;
    const inContainer = line.containersEnd > line.indentEnd || piece.start < containerZoneEnd;
    const inZone = piece.start < zoneUntil;
    if (
      piece.kind === "comment" &&
      ((piece.start <= rawLineEnd && piece.end > rawLineEnd) ||
        (inZone && piece.end >= zoneUntil) ||
        (inContainer && line.end < piece.end))
    )
      hidden.hideFrom(piece.start);
    const blockEnd = rawBlockEnd(piece, scanner, text.length);
    const endsWithLine = blockEnd !== piece.end || piece.kind === "comment";
    if (opensLine && !inZone && endsWithLine)
      rawBlock(piece.start, piece.kind === "comment" ? piece.end - 1 : blockEnd);
    else if (opensLine && !inZone) zoneUntil = zoneEnd(piece.end);
    suspend(blockEnd);
    // After a raw element (a `<pre>`, a `<script>`), a tag over lines or one with a quote left
    // open, where GitHub's HTML ends is beyond this reading (`</pre >` ends no block, `<a\n<pre>`
    // is one tag, `<a f="> x ">` another): no code is looked for in the rest of the text.
    if (
      piece.kind === "tag" &&
      ((!piece.closing && (RAW_BLOCKS.has(piece.name) || RAW_TEXT.has(piece.name))) ||
        line.end < piece.end ||
        quoteLeftOpen(piece.attributes))
    )
      suspend(text.length);
    if (line.containersEnd > line.indentEnd) containerZoneEnd = codeFrom;
    if (piece.kind === "tag" && !HTML_TAGS.has(piece.name) && !RAW_TEXT.has(piece.name)) {
      // With a `<` inside it is no tag to Markdown (`<!--` cannot be an attribute): GitHub shows
      // `Vec<T ` as text and what the `<` starts as what it is (a hidden comment, a script), so
      // reading goes on from there. The search stops at that `<`, or passes the tag, which is
      // then read no more: each stretch of text is searched once.
      const inner = piece.attributes.indexOf("<");
      const attributesStart = piece.end - (piece.unended ? 0 : 1) - piece.attributes.length;
      piece = scanner.next(inner === -1 ? piece.end : attributesStart + inner);
      continue;
    }
    // A quote left open at the first `>` runs on in a value: for GitHub the tag ends at the
    // first `>` after its closing quote, or (never closed) hides the rest as HTML.
    if (piece.kind === "tag" && quoteLeftOpen(piece.attributes))
      hideOpenQuote(piece, findAhead, hidden);
    out += hidden.keep(at, piece.start);
    at =
      // `<rp/>` opens one too: HTML ignores the slash of an element that is not void.
      piece.kind === "tag" && piece.name === "rp" && !piece.closing
        ? rubyFallbackEnd(piece, scanner, lineBreakBefore(text, paragraphEnd(piece.end)))
        : skip(piece, scanner, text.length);
    // A hidden element ends where GitHub's paragraph may go on: code from its next blank line.
    // What it skipped may hold a line GitHub reads as an HTML block's start (`<!--\n<script`
    // is no comment there: the block breaks the paragraph first), which runs past blank lines.
    suspend(line.end < at && opensLineWithTag(text, line.end, at) ? text.length : at);
    if (at >= text.length) return out;
    piece = scanner.next(at);
  }
  return out + hidden.keep(at, text.length);
}

/** Where the text resumes after `piece`: after a hidden or raw-text element, its whole content. */
function skip(piece: HtmlPiece, scanner: HtmlScanner, length: number): number {
  if (piece.kind === "comment" || piece.closing || piece.selfClosing) return piece.end;
  if (RAW_TEXT.has(piece.name)) {
    const close = scanner.findClosing(piece.name, piece.end);
    return close === -1 ? length : (scanner.next(close)?.end ?? length);
  }
  if (VOID.has(piece.name) || !isHidden(piece.attributes)) return piece.end;
  // A hidden element goes with everything inside it, nested elements of its kind included;
  // unclosed, it hides the rest of the text.
  let depth = 1;
  for (let next = scanner.next(piece.end); next; next = scanner.next(next.end)) {
    if (next.kind !== "tag" || next.name !== piece.name || next.selfClosing) continue;
    depth += next.closing ? -1 : 1;
    if (depth === 0) return next.end;
  }
  return length;
}

/**
 * Where ruby's fallback text (`<rp>`), which every current browser hides, ends: at its end tag,
 * at the next `<rt>` or `<rp>`, or the ruby's end, as HTML ends it without one, and at its
 * paragraph's end at the latest (`paragraphEnd`). Hidden to the end of the text, an `<rp>`
 * written without its end tag (valid HTML) had taken the rest of the comment with it.
 */
function rubyFallbackEnd(piece: HtmlPiece, scanner: HtmlScanner, paragraphEnd: number): number {
  const until = Math.max(piece.end, paragraphEnd);
  for (
    let next = scanner.next(piece.end);
    next && next.start < until;
    next = scanner.next(next.end)
  ) {
    if (next.kind !== "tag") continue;
    if (next.closing && next.name === "rp") return next.end;
    if (
      (!next.closing && (next.name === "rt" || next.name === "rp")) ||
      (next.closing && next.name === "ruby")
    )
      return next.start;
  }
  return until;
}

/** Where the line before the one starting at `at` ends: the text's end when `at` is there. */
function lineBreakBefore(text: string, at: number): number {
  return at >= text.length ? text.length : Math.max(0, text.lastIndexOf("\n", at - 2));
}

function isHidden(attributes: string): boolean {
  const lower = attributes.toLowerCase();
  const compact = lower.replace(/\s/g, "").replace(/['"]/g, "");
  return (
    /(?:^|\s)hidden(?:[\s=/]|$)/.test(lower) ||
    compact.includes("aria-hidden=true") ||
    compact.includes("display:none") ||
    compact.includes("visibility:hidden")
  );
}

/** Hides a tag whose quote is left open at its first `>`, to where GitHub may end it. */
function hideOpenQuote(
  piece: HtmlPiece,
  find: (needle: string, from: number) => number,
  hidden: { hide(start: number, end: number): void; hideFrom(start: number): void },
): void {
  const quote = piece.kind === "tag" ? (quoteLeftOpen(piece.attributes) ?? '"') : '"';
  const closed = find(quote, piece.end);
  const gt = closed === -1 ? -1 : find(">", closed + 1);
  if (gt === -1) hidden.hideFrom(piece.start);
  else hidden.hide(piece.start, gt + 1);
}

// Attributes longer than this are not read for quotes, and count as leaving one open: each `<x `
// of a long line is a tag whose attributes run to its one `>`, and reading each was quadratic.
const MAX_ATTRIBUTES_READ = 4_096;

/**
 * The quote a tag's attributes, read to its first `>`, leave open, if any: that `>` is then
 * inside a value (`<a title="> x ">`), and the tag, for GitHub, runs on past it, or never ends in
 * HTML.
 */
function quoteLeftOpen(attributes: string): '"' | "'" | undefined {
  if (attributes.length > MAX_ATTRIBUTES_READ) return '"';
  let double = 0;
  let single = 0;
  for (const c of attributes) {
    if (c === '"') double++;
    else if (c === "'") single++;
  }
  return double % 2 === 1 ? '"' : single % 2 === 1 ? "'" : undefined;
}

/**
 * Whether a line after the line break at `newline`, and before `end`, starts with `<` past its
 * markers. From the skipped piece's first line break: a search from its start ran, for each
 * piece of a long line, to the line's end.
 */
function opensLineWithTag(text: string, newline: number, end: number): boolean {
  for (let line = newline; line !== -1 && line < end; line = text.indexOf("\n", line + 1))
    if (text[afterContainers(text, line + 1, end)] === "<") return true;
  return false;
}

/**
 * Where GitHub's HTML block that `piece` may start ends at the earliest: a `<pre>` or
 * `<textarea>` runs to its closing tag, across blank lines; any other to a blank line.
 */
function rawBlockEnd(piece: HtmlPiece, scanner: HtmlScanner, length: number): number {
  if (piece.kind !== "tag" || piece.closing || !RAW_BLOCKS.has(piece.name)) return piece.end;
  const close = scanner.findClosing(piece.name, piece.end);
  return close === -1 ? length : close;
}

/**
 * A `<?`, `<!X` or `<![CDATA[` declaration: HTML reads it to its first `>` (`end`), GitHub's
 * HTML block of it lasts to its closer (`blockEnd`); `openComment`, a `<!--` between the two in
 * a `<?`.
 */
interface Declaration {
  start: number;
  end: number;
  blockEnd: number;
  closed: boolean;
  openComment?: number;
}

// What ends the HTML block each declaration may start.
const DECLARATION_BLOCK_ENDS: ReadonlyArray<[string, string]> = [
  ["<?", "?>"],
  ["<![CDATA[", "]]>"],
  ["<!", ">"],
];

/** Finds `<?`, `<!X` and `<![CDATA[` (a comment is the scanner's), forward only. */
function createDeclarationFinder(text: string): { next(from: number): Declaration | undefined } {
  const find = createForwardFind(text);
  return {
    next(from) {
      for (let at = from; ;) {
        const question = find("<?", at);
        const bang = find("<!", at);
        const start = question === -1 ? bang : bang === -1 ? question : Math.min(question, bang);
        if (start === -1) return undefined;
        if (text.startsWith("<!--", start)) {
          at = start + 2;
          continue;
        }
        const [opener, closer] = DECLARATION_BLOCK_ENDS.find(([each]) =>
          text.startsWith(each, start),
        )!;
        let gt = find(">", start + 2);
        // A quote's marker is no `>` to HTML: the rendered page has none there.
        while (gt !== -1 && isQuoteMarker(text, gt)) gt = find(">", gt + 1);
        const end = gt === -1 ? text.length : gt + 1;
        // From just past `<`: `<?>` holds its own `?>`, which ends its HTML block on its line.
        const close = find(closer, start + 1);
        const blockEnd = close === -1 ? text.length : close + closer.length;
        // Only a closed `<?…?>` is passed on whole, comment opener included.
        const comment = opener === "<?" && gt !== -1 && close !== -1 ? find("<!--", end) : -1;
        const closed = close !== -1;
        return comment !== -1 && comment < blockEnd
          ? { start, end, blockEnd, closed, openComment: comment }
          : { start, end, blockEnd, closed };
      }
    },
  };
}

/**
 * Whether the `>` at `at` marks a quote: only spaces, tabs and `>` before it on its line (up to
 * 100 characters are looked at, past which it counts as one, so that no stretch is read often).
 */
function isQuoteMarker(text: string, at: number): boolean {
  for (let i = at - 1; i >= 0 && at - i <= 100; i--) {
    const c = text[i];
    if (c === "\n") return true;
    if (c !== " " && c !== "\t" && c !== ">") return false;
  }
  return true;
}

/** Two lists of ranges, each in order of its start, as one. */
function mergeSorted(
  a: Array<[number, number]>,
  b: Array<[number, number]>,
): Array<[number, number]> {
  const merged: Array<[number, number]> = [];
  for (let i = 0, j = 0; i < a.length || j < b.length;)
    merged.push(j >= b.length || (i < a.length && a[i]![0] <= b[j]![0]) ? a[i++]! : b[j++]!);
  return merged;
}

/**
 * The line a position is in, asked with positions that never go back: where its text starts
 * past spaces (`indentEnd`) and past quote and list markers too (`containersEnd`), and where it
 * ends, found once per line (a search to its end for each tag on a long line was quadratic).
 */
function createLineCursor(
  text: string,
): (at: number) => { indentEnd: number; containersEnd: number; end: number } {
  let start = 0;
  let newline = text.indexOf("\n");
  let line: { indentEnd: number; containersEnd: number; end: number } | undefined;
  return (at) => {
    while (newline !== -1 && newline < at) {
      start = newline + 1;
      newline = text.indexOf("\n", start);
      line = undefined;
    }
    if (!line) {
      const end = newline === -1 ? text.length : newline;
      const indentEnd = firstNonSpace(text, start, end);
      line = { indentEnd, containersEnd: afterContainers(text, start, end), end };
    }
    return line;
  };
}

/**
 * The stretches no reader sees that the markup scan leaves in: fence info strings (the `js run
 * this` of any line that may open a fence, in a quote or a list too), link definitions and
 * images' alt text, found up front, and the
 * declarations `hide` is given in order. Masked rather than skipped, so that a comment opened
 * inside one still hides what follows it; where GitHub reads neither, hiding them loses a few
 * words.
 */
function createMask(text: string): {
  hide(start: number, end: number): void;
  /** Everything from `start` on. */
  hideFrom(start: number): void;
  hiddenFrom(): number;
  keep(from: number, to: number): string;
} {
  const info: Array<[number, number]> = [];
  for (let start = 0; start < text.length;) {
    const found = text.indexOf("\n", start);
    const end = found === -1 ? text.length : found;
    const at = afterContainers(text, start, end);
    const fence = fenceAt(text, at, end);
    if (fence && at + fence.length < end) info.push([at + fence.length, end]);
    start = end + 1;
  }
  // Link definitions as the source has them: a declaration's mask, say, can take the `>` that
  // makes one, and the cleaned line is one no more.
  const defined = definitionRanges(text);
  // And images' alt text, which GitHub does not show either.
  const alt = imageAltRanges(text);
  const fixed: Array<[number, number]> = [];
  for (const range of mergeSorted(mergeSorted(info, defined), alt)) {
    const last = fixed.at(-1);
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
    else fixed.push([range[0], range[1]]);
  }
  const lists: Array<Array<[number, number]>> = [fixed, []];
  const indexes = [0, 0];
  let hiddenFrom = text.length;
  return {
    hide(start, end) {
      // Joined with the last when they overlap: ranges kept apart and overlapping were all
      // gathered again by every later `keep` (quadratic on `<!X` lines sharing one `>`).
      const dynamic = lists[1]!;
      const last = dynamic.at(-1);
      if (last && start <= last[1]) last[1] = Math.max(last[1], end);
      else dynamic.push([start, end]);
    },
    hideFrom(start) {
      hiddenFrom = Math.min(hiddenFrom, start);
    },
    hiddenFrom: () => hiddenFrom,
    keep(from, whole) {
      const to = Math.min(whole, Math.max(from, hiddenFrom));
      // The ranges of both lists that reach past `from`, in order of their start.
      const ranges: Array<[number, number]> = [];
      lists.forEach((list, which) => {
        let i = indexes[which]!;
        while (i < list.length && list[i]![1] <= from) i++;
        indexes[which] = i;
        for (; i < list.length && list[i]![0] < to; i++) ranges.push(list[i]!);
      });
      ranges.sort((a, b) => a[0] - b[0]);
      let out = "";
      let at = from;
      for (const [start, end] of ranges) {
        if (start > at) out += text.slice(at, start);
        at = Math.max(at, end);
      }
      return at < to ? out + text.slice(at, to) : out;
    },
  };
}

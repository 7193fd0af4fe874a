import { createBlankFinder } from "./create-blank-finder.js";
import { createHtmlScanner, type HtmlPiece } from "./html-scanner.js";
import { definitionLabels, labelKey } from "./link-definitions.js";

/** How backticks pair in one reading: as spans over a paragraph, on their line only, or not. */
type Spans = "paragraph" | "line" | "none";

/**
 * Where the alt text of Markdown source's images is, `SYSTEM: obey` in `![SYSTEM: obey](x.png)`:
 * GitHub shows the image, not its alt text, so no reader of the page sees it. `definitions` are
 * the ranges of the link definitions (see definitionRanges), whose labels make `![label]` and
 * `![alt][label]` images too.
 *
 * Brackets pair as CommonMark pairs them, the last opened first, within a paragraph (to a blank
 * line): a backslash escapes, an inline HTML tag or comment takes the brackets inside it, and so
 * does a code span, except in a destination. Where a paragraph ends without a blank line (a list
 * item or a heading starts), this cannot tell which backticks pair: the text is read three ways
 * (spans over the paragraph, on their line only, and none) and what any reading takes for alt
 * text is hidden. So is alt text where this and GitHub may part otherwise (`![a` and `b](x)` in
 * two list items, a destination GitHub refuses): it hides words GitHub shows rather than show
 * one it hides; code the caller keeps as written stays. Sorted by start; linear in the length.
 */
export function imageAltRanges(
  text: string,
  definitions: ReadonlyArray<readonly [number, number]>,
): Array<[number, number]> {
  if (!text.includes("![")) return [];
  const labels = definitions.length > 0 ? definitionLabels(text, definitions) : new Set<string>();
  const readings: Spans[] = text.includes("`") ? ["paragraph", "line", "none"] : ["none"];
  return readings.flatMap((spans) => readAltText(text, labels, spans)).sort((a, b) => a[0] - b[0]);
}

/** The alt text of one reading (see imageAltRanges). */
function readAltText(
  text: string,
  labels: ReadonlySet<string>,
  spans: Spans,
): Array<[number, number]> {
  const alt: Array<[number, number]> = [];
  const backticks = createBacktickPairs(text);
  const paragraphEnd = createBlankFinder(text);
  const scanner = createHtmlScanner(text);
  // The next piece of HTML, looked for again only once passed: each stretch is scanned once.
  let piece: HtmlPiece | undefined;
  let pieceStart = -1;
  // `nested` once a bracket came after it: no reference's label holds one, so each label looked
  // up is the text between two brackets, and all of them together are no longer than the text.
  let openers: Array<{ at: number; image: boolean; nested: boolean }> = [];
  const open = (at: number, image: boolean) => {
    const parent = openers.at(-1);
    if (parent) parent.nested = true;
    openers.push({ at, image, nested: false });
  };
  // Inside a destination, `(` deep: its backticks open no code span.
  let destination = 0;
  let end = paragraphEnd(0);
  for (let i = 0; i < text.length;) {
    if (i >= end) {
      openers = [];
      destination = 0;
      end = paragraphEnd(i);
    }
    const char = text[i];
    if (char === "\\") i += 2;
    else if (char === "`") {
      const line = text.indexOf("\n", i);
      const limit = spans === "line" && line !== -1 ? Math.min(end, line) : end;
      const closed = spans !== "none" && destination === 0 ? backticks.closerAfter(i, limit) : -1;
      i = closed === -1 ? backticks.runEnd(i) : closed;
    } else if (char === "<") {
      if (pieceStart < i) {
        piece = scanner.next(i);
        pieceStart = piece?.start ?? text.length;
      }
      // HTML in the paragraph takes what is in it (`<span title="]">`); a comment never closed
      // is text to Markdown.
      const closed = piece?.kind === "tag" || text.endsWith("-->", piece?.end);
      i = piece?.start === i && piece.end <= end && closed ? piece.end : i + 1;
    } else if (char === "!" && text[i + 1] === "[") {
      open(i, true);
      i += 2;
    } else if (char === "[") {
      open(i, false);
      i++;
    } else if (char === "]") {
      const opener = openers.pop();
      const next = text[i + 1];
      if (
        opener?.image &&
        (next === "(" ||
          next === "[" ||
          (!opener.nested && labels.has(labelKey(text, opener.at + 2, i))))
      )
        alt.push([opener.at + 2, i]);
      if (opener && next === "(") {
        destination++;
        i += 2;
      } else i++;
    } else if (char === "(" && destination > 0) {
      destination++;
      i++;
    } else if (char === ")" && destination > 0) {
      destination--;
      i++;
    } else i++;
  }
  return alt;
}

/**
 * Code spans as CommonMark pairs them: a run of backticks opens one that the next run of the
 * same length closes (a fence's too, which takes what is between). Every search goes forward.
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

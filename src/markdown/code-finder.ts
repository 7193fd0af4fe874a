/** Code GitHub shows as written: a fenced block, fences included, or an inline code span. */
export interface CodeRegion {
  start: number;
  end: number;
  /** A fence's info string (`js` after ` ``` `), which GitHub does not show. */
  info?: { start: number; end: number };
}

export interface CodeFinder {
  /**
   * The first code region starting at or after `from`, or undefined. `from` never goes back, and
   * is either where the last region ended or the start of a line after a blank line.
   */
  next(from: number): CodeRegion | undefined;
}

const LETTER = /\p{L}/u;

/**
 * Finds code in Markdown source without a full parser, in linear time, and only where GitHub's
 * reading is certain: a caller shows a region as it is, so a region GitHub reads otherwise (as
 * HTML, say) would show what GitHub hides. So it finds less than GitHub does, never more:
 * - a fenced block only when its opening line starts at column 0, where no list item or quote
 *   can hold it, and only until the first fence line it cannot place (indented, in a quote or a
 *   list, or inside HTML the caller skipped): past that it could take a closing fence for an
 *   opening one;
 * - code spans only in a paragraph it is sure of: one line, or lines that each start with a
 *   letter (after spaces), so that no block (a heading, a quote, a table, a definition) starts
 *   inside it and the backticks pair up as GitHub pairs them.
 * The caller looks for code only outside HTML (see stripMarkup), from a blank line on.
 */
export function createCodeFinder(text: string): CodeFinder {
  const n = text.length;
  // Where the next block starts: the text is read block by block from here.
  let pos = 0;
  let fences = true;
  // The spans of the paragraph read last, and the next of them to hand out (an index: a shift
  // or a filter per span was quadratic on a line of thousands).
  let pending: CodeRegion[] = [];
  let nextPending = 0;
  const takePending = (from: number) => {
    while (nextPending < pending.length && pending[nextPending]!.start < from) nextPending++;
    return nextPending < pending.length ? pending[nextPending++] : undefined;
  };

  const lineEnd = (at: number) => {
    const end = text.indexOf("\n", at);
    return end === -1 ? n : end;
  };
  const nextLine = (end: number) => Math.min(n, end + 1);
  const isBlank = (start: number, end: number) => firstNonSpace(text, start, end) === end;
  // Any line outside a block found here that could open or close a fence somewhere.
  const noteFenceLike = (start: number, end: number) => {
    if (fences && fenceAt(text, afterContainers(text, start, end), end) !== undefined)
      fences = false;
  };

  return {
    next(from) {
      const waiting = takePending(from);
      if (waiting) return waiting;
      // Skipped (HTML): a fence line in it may be one GitHub reads, and not as this would.
      for (; pos < from; pos = nextLine(lineEnd(pos))) noteFenceLike(pos, lineEnd(pos));
      while (pos < n) {
        const end = lineEnd(pos);
        if (isBlank(pos, end)) {
          pos = nextLine(end);
          continue;
        }
        // A `|` may make the line a table's header (markdown-it reads tables first): unplaced.
        if (fences && fenceAt(text, pos, end) && text.slice(pos, end).includes("|")) fences = false;
        const fence = fences ? fenceAt(text, pos, end) : undefined;
        if (fence) {
          const start = pos;
          pos = closeFence(text, fence, nextLine(end));
          const info =
            start + fence.length < end ? { start: start + fence.length, end } : undefined;
          return info ? { start, end: pos, info } : { start, end: pos };
        }
        const stretch = pos;
        // A line that may open a fence (in a list or a quote) has no spans: its info string is
        // not read as Markdown.
        const fenceLike = fenceAt(text, afterContainers(text, pos, end), end) !== undefined;
        let eligible = true;
        let lines = 0;
        for (let at = pos; ;) {
          const atEnd = lineEnd(at);
          if (isBlank(at, atEnd) || (lines > 0 && fences && fenceAt(text, at, atEnd))) break;
          noteFenceLike(at, atEnd);
          const first = firstNonSpace(text, at, atEnd);
          // Lines that start with a letter (the first after no more than 3 spaces: 4 are code)
          // start no block: they are one paragraph, whose spans are GitHub's.
          const letter = first < atEnd && LETTER.test(text[first]!);
          if (!letter || (lines === 0 && indentColumns(text, at, atEnd) > 3)) eligible = false;
          lines++;
          pos = nextLine(atEnd);
          if (pos >= n || atEnd >= n) break;
          at = pos;
        }
        // Ends where the next block starts (a fence line) or after the blank line's start.
        const stretchEnd = Math.min(pos, n);
        // Links, images and URLs take backticks in their destinations before code spans do
        // (`[a](`) <!-- … --> ``), which would pair the others otherwise than GitHub does.
        if (eligible || (lines === 1 && !fenceLike))
          eligible = !takesBackticks(text, stretch, stretchEnd);
        if (eligible) {
          pending = pairSpans(text, stretch, stretchEnd);
          nextPending = 0;
          const span = takePending(from);
          if (span) return span;
        }
      }
      return undefined;
    },
  };
}

/** Whether an odd number of backslashes comes before `at`: the character there is escaped. */
export function isEscaped(text: string, at: number): boolean {
  let backslashes = 0;
  for (let i = at - 1; i >= 0 && text[i] === "\\"; i--) backslashes++;
  return backslashes % 2 === 1;
}

/** A line's indent in columns, a tab to the next multiple of 4, as CommonMark counts it. */
export function indentColumns(text: string, start: number, end: number): number {
  let columns = 0;
  for (let i = start; i < end && (text[i] === " " || text[i] === "\t"); i++)
    columns = text[i] === "\t" ? columns + 4 - (columns % 4) : columns + 1;
  return columns;
}

/** Where a line's text starts, past spaces and tabs. */
export function firstNonSpace(text: string, start: number, end: number): number {
  let i = start;
  while (i < end && (text[i] === " " || text[i] === "\t")) i++;
  return i;
}

/** Where a line's text starts past spaces, quote markers and list markers. */
export function afterContainers(text: string, start: number, end: number): number {
  let i = start;
  for (;;) {
    while (i < end && (text[i] === " " || text[i] === "\t" || text[i] === ">")) i++;
    const c = text[i];
    if ((c === "-" || c === "*" || c === "+") && (text[i + 1] === " " || text[i + 1] === "\t")) {
      i += 1;
      continue;
    }
    let digits = i;
    while (digits < end && digits - i < 9 && text[digits]! >= "0" && text[digits]! <= "9") digits++;
    if (
      digits > i &&
      (text[digits] === "." || text[digits] === ")") &&
      (text[digits + 1] === " " || text[digits + 1] === "\t")
    ) {
      i = digits + 1;
      continue;
    }
    return i;
  }
}

/**
 * The fence a line at `at` opens (its character and length), or undefined: three or more
 * backticks whose info string holds no backtick, or three or more tildes.
 */
export function fenceAt(
  text: string,
  at: number,
  end: number,
): { char: string; length: number } | undefined {
  const char = text[at];
  if (char !== "`" && char !== "~") return undefined;
  let i = at;
  while (i < end && text[i] === char) i++;
  if (i - at < 3) return undefined;
  if (char === "`" && text.slice(i, end).includes("`")) return undefined;
  return { char, length: i - at };
}

/** Where a fenced block opened before `from` ends: after its closing line, or the text's end. */
function closeFence(text: string, fence: { char: string; length: number }, from: number): number {
  let at = from;
  while (at < text.length) {
    const found = text.indexOf("\n", at);
    const end = found === -1 ? text.length : found;
    const first = firstNonSpace(text, at, end);
    // In columns: a tab is four, so `\t```` is code in the block, not its closing fence.
    if (indentColumns(text, at, end) <= 3) {
      let i = first;
      while (i < end && text[i] === fence.char) i++;
      if (i - first >= fence.length && firstNonSpace(text, i, end) === end)
        return Math.min(text.length, end + 1);
    }
    at = end + 1;
  }
  return text.length;
}

/**
 * Whether a stretch holds a link, an image, a reference, a URL or an e-mail autolink, whose parts
 * take backticks (`` <a`b@c.d> ``).
 */
function takesBackticks(text: string, start: number, end: number): boolean {
  const stretch = text.slice(start, end);
  if (stretch.includes("<") && stretch.includes("@")) return true;
  return ["](", "][", "]:", "://", "www."].some((mark) => stretch.includes(mark));
}

/**
 * The code spans of one paragraph, as CommonMark pairs them: a run of backticks opens a span that
 * the next run of the same length closes; a run with no such closer is text. A backslash escapes
 * a run's first backtick, outside spans (inside, it is code).
 */
export function pairSpans(text: string, start: number, end: number): CodeRegion[] {
  const runs: Array<{ start: number; length: number }> = [];
  for (let i = text.indexOf("`", start); i !== -1 && i < end;) {
    let j = i;
    while (j < end && text[j] === "`") j++;
    runs.push({ start: i, length: j - i });
    i = text.indexOf("`", j);
  }
  // Each length's runs in order, with a cursor: every search goes forward.
  const byLength = new Map<number, { indexes: number[]; next: number }>();
  runs.forEach((run, index) => {
    const entry = byLength.get(run.length) ?? { indexes: [], next: 0 };
    entry.indexes.push(index);
    byLength.set(run.length, entry);
  });
  const spans: CodeRegion[] = [];
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i]!;
    const opener = isEscaped(text, run.start)
      ? { start: run.start + 1, length: run.length - 1 }
      : run;
    if (opener.length === 0) continue;
    const same = byLength.get(opener.length);
    if (!same) continue;
    while (same.next < same.indexes.length && same.indexes[same.next]! <= i) same.next++;
    const closer = same.indexes[same.next];
    if (closer === undefined) continue;
    const close = runs[closer]!;
    spans.push({ start: opener.start, end: close.start + close.length });
    i = closer;
  }
  return spans;
}

export interface DiffLine {
  kind: "add" | "delete" | "context";
  text: string;
  /** line in the old file (delete, context) */
  oldLine?: number;
  /** line in the new file (add, context) */
  newLine?: number;
}

export interface Hunk {
  oldStart: number;
  newStart: number;
  /** The whole `@@ -a,b +c,d @@ section` line. */
  header: string;
  lines: DiffLine[];
}

interface HunkHeader {
  oldStart: number;
  oldCount: number;
  newStart: number;
  newCount: number;
}

// Line numbers and counts past this are not a real file's; such a header is not read.
const MAX_DIGITS = 9;

/** The digits of `line` from `at`, at most MAX_DIGITS of them, and where they end. */
function readNumber(line: string, at: number): { value: number; end: number } | undefined {
  let end = at;
  while (end < line.length && end - at <= MAX_DIGITS) {
    const code = line.charCodeAt(end);
    if (code < 48 || code > 57) break;
    end++;
  }
  if (end === at || end - at > MAX_DIGITS) return undefined;
  return { value: Number(line.slice(at, end)), end };
}

/** `start[,count]` from `at`; a range without a count is one line long, as in diff. */
function readRange(
  line: string,
  at: number,
): { start: number; count: number; end: number } | undefined {
  const start = readNumber(line, at);
  if (!start) return undefined;
  if (line[start.end] !== ",") return { start: start.value, count: 1, end: start.end };
  const count = readNumber(line, start.end + 1);
  if (!count) return undefined;
  return { start: start.value, count: count.value, end: count.end };
}

/**
 * Reads `@@ -a[,b] +c[,d] @@` by hand rather than with a regex: the header is followed by a
 * section heading taken from the file, which the author wrote.
 */
function readHunkHeader(line: string): HunkHeader | undefined {
  if (!line.startsWith("@@ -")) return undefined;
  const old = readRange(line, 4);
  if (!old || line[old.end] !== " " || line[old.end + 1] !== "+") return undefined;
  const added = readRange(line, old.end + 2);
  if (!added || !line.startsWith(" @@", added.end)) return undefined;
  return {
    oldStart: old.start,
    oldCount: old.count,
    newStart: added.start,
    newCount: added.count,
  };
}

/**
 * Parses the `patch` GitHub gives for one file of a pull request: hunks of unified diff. Lines
 * that cannot be read (anything before the first hunk, after a hunk's counts are used up, or
 * following a header that does not parse) are skipped rather than thrown on, so a patch cut
 * short or dressed up still yields what it holds. Linear in the patch.
 */
export function parsePatch(patch: string): Hunk[] {
  const hunks: Hunk[] = [];
  let hunk: Hunk | undefined;
  let oldLine = 0;
  let newLine = 0;
  // Lines the header says are still to come: they tell an empty context line (some tools strip
  // its leading space) from the patch's trailing newline.
  let oldLeft = 0;
  let newLeft = 0;
  // Read in place rather than split: each line's text is the one string made for it.
  for (let start = 0; start <= patch.length;) {
    const newline = patch.indexOf("\n", start);
    let end = newline < 0 ? patch.length : newline;
    const next = end + 1;
    // A file with CRLF endings keeps its CR on every line of the patch.
    if (end > start && patch.charCodeAt(end - 1) === 13) end--;
    const marker = patch[start];
    const lineStart = start;
    start = next;
    if (marker === "@" && patch.startsWith("@@", lineStart)) {
      const line = patch.slice(lineStart, end);
      const header = readHunkHeader(line);
      hunk = undefined;
      if (header) {
        hunk = { oldStart: header.oldStart, newStart: header.newStart, header: line, lines: [] };
        hunks.push(hunk);
        oldLine = header.oldStart;
        newLine = header.newStart;
        oldLeft = header.oldCount;
        newLeft = header.newCount;
      }
      continue;
    }
    if (!hunk || (oldLeft <= 0 && newLeft <= 0)) continue;
    if (marker === "+") {
      hunk.lines.push({ kind: "add", text: patch.slice(lineStart + 1, end), newLine: newLine++ });
      newLeft--;
    } else if (marker === "-") {
      hunk.lines.push({
        kind: "delete",
        text: patch.slice(lineStart + 1, end),
        oldLine: oldLine++,
      });
      oldLeft--;
    } else if (marker === " " || end === lineStart) {
      const text = end === lineStart ? "" : patch.slice(lineStart + 1, end);
      hunk.lines.push({ kind: "context", text, oldLine: oldLine++, newLine: newLine++ });
      oldLeft--;
      newLeft--;
    }
    // Anything else, `\ No newline at end of file` included, is not a line of either file.
  }
  return hunks;
}

/** True when the hunk adds nothing: only deletions and context. */
export function isDeleteOnly(hunk: Hunk): boolean {
  return hunk.lines.every((line) => line.kind !== "add");
}

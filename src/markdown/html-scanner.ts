/** An HTML comment or tag found in text: `[start, end)` covers it, `>` or `-->` included. */
export type HtmlPiece =
  | {
      kind: "comment";
      start: number;
      end: number;
      /** Read as HTML: never closed, so it runs to the end of the text. */
      unended?: boolean;
    }
  | {
      kind: "tag";
      start: number;
      end: number;
      /** Lower-cased. */
      name: string;
      closing: boolean;
      selfClosing: boolean;
      /** The raw text between the name and the closing `>`. */
      attributes: string;
      /** Read as HTML: a quote of it never closes, so it runs to the end of the text. */
      unended?: boolean;
    };

export interface HtmlScanner {
  /** The first comment or tag starting at or after `from`, or undefined when there is none. */
  next(from: number): HtmlPiece | undefined;
  /** Where the closing tag `</name` of a raw-text element (a script, say) starts, or -1. */
  findClosing(name: string, from: number): number;
  /** Where `needle` next occurs at or after `from`, or -1 (exact case). */
  find(needle: string, from: number): number;
}

export interface HtmlScannerOptions {
  /**
   * Reads the text as HTML's tokenizer reads what is known to be HTML (what the Markdown parser
   * passed on as HTML): a quoted attribute value runs to its closing quote whatever `>` it
   * holds, and a tag left open (its quote never closed) runs to the end; `<?`, `<!` (but `<!--`)
   * and `</` with no name start bogus comments that run to the next `>`, returned as comments
   * (https://html.spec.whatwg.org/multipage/parsing.html#bogus-comment-state). A tag's name
   * runs to a space, `/` or `>` (`</details_x>` is not `</details>`), its attributes are read as
   * the tokenizer reads them (`a==">"` is an unquoted value, which a `>` ends), and a comment
   * ends at `-->` or `--!>`, or at once for `<!-->` and `<!--->`. A comment or tag with no end
   * is marked `unended`. Without it, what suits Markdown source, where a tag is only one that
   * closes: a tag ends at its first `>`, and those `<` are text.
   */
  html?: boolean;
}

const NAME_START = /[A-Za-z]/;
const NAME_CHAR = /[A-Za-z0-9-]/;
const SPACE = /[\t\n\f\r ]/;
// What ends a tag's name when it is read as HTML.
const TAG_NAME_END = /[\t\n\f\r />]/;

/**
 * Finds HTML comments and tags in hostile text in linear time, where a regex such as
 * `<b[^>]*hidden[^>]*>` backtracks polynomially on repeated unclosed fragments. Every search
 * remembers where it ended, so no stretch of the text is scanned twice however many `<` it holds:
 * callers must ask for positions that never go back.
 *
 * A tag is `<name …>` or `</name …>`, ending at its first `>` (with `html`, the first outside a
 * quoted value); a `<` followed by anything else is text (with `html`, `<?`, `<!` and `</` start
 * bogus comments). An unclosed comment runs to the end, as GitHub renders it.
 */
export function createHtmlScanner(text: string, options: HtmlScannerOptions = {}): HtmlScanner {
  // Where the next `>` is, for `<` before it; -1 once none is left.
  let gt = -2;
  const nextGt = (from: number) => {
    if (gt === -1 || gt >= from) return gt;
    gt = text.indexOf(">", from);
    return gt;
  };
  // Lower-cased once (ASCII only, so positions stay the same) for closing-tag searches.
  let lower: string | undefined;
  const closings = new Map<string, number>();

  // Where each searched string next is: the searches go forward only, so each is linear.
  const found = new Map<string, number>();
  const find = (needle: string, from: number) => {
    const known = found.get(needle);
    if (known !== undefined && (known === -1 || known >= from)) return known;
    const at = text.indexOf(needle, from);
    found.set(needle, at);
    return at;
  };

  return {
    next(from) {
      for (let i = text.indexOf("<", from); i !== -1; i = text.indexOf("<", i + 1)) {
        if (options.html && text.startsWith("<!--", i)) return htmlComment(text, i, find);
        if (text.startsWith("<!--", i)) {
          // `<!-->` and `<!--->` are whole comments, to Markdown and HTML both: read as opening
          // one to the next `-->`, they swallowed a comment opened after them on their line.
          for (const abrupt of ["<!-->", "<!--->"])
            if (text.startsWith(abrupt, i))
              return { kind: "comment", start: i, end: i + abrupt.length };
          // Remembered: many comment openers in a row (in code, say) must not each search on.
          const close = find("-->", i + 4);
          return { kind: "comment", start: i, end: close === -1 ? text.length : close + 3 };
        }
        const closing = text[i + 1] === "/";
        const nameStart = i + (closing ? 2 : 1);
        if (!NAME_START.test(text[nameStart] ?? "")) {
          if (options.html && isBogusComment(text, i)) {
            const close = nextGt(i + 2);
            if (close === -1) return { kind: "comment", start: i, end: text.length, unended: true };
            return { kind: "comment", start: i, end: close + 1 };
          }
          continue;
        }
        if (options.html) return htmlTag(text, i, nameStart, closing);
        const end = nextGt(nameStart);
        // No `>` anywhere after this: no tag can start here or later.
        if (end === -1) return undefined;
        return tagPiece(text, {
          start: i,
          nameStart,
          nameEnd: nameEndOf(text, nameStart),
          end,
          closing,
        });
      }
      return undefined;
    },
    findClosing(name, from) {
      const known = closings.get(name);
      if (known !== undefined && (known === -1 || known >= from)) return known;
      lower ??= text.replace(/[A-Z]+/g, (run) => run.toLowerCase());
      const at = lower.indexOf(`</${name}`, from);
      closings.set(name, at);
      return at;
    },
    find,
  };
}

/**
 * The comment at `start`, as HTML's tokenizer ends it: `<!-->` and `<!--->` at once, others at
 * the first `-->` or `--!>`
 * (https://html.spec.whatwg.org/multipage/parsing.html#comment-start-state).
 */
function htmlComment(
  text: string,
  start: number,
  find: (needle: string, from: number) => number,
): HtmlPiece {
  for (const abrupt of ["<!-->", "<!--->"]) {
    if (text.startsWith(abrupt, start))
      return { kind: "comment", start, end: start + abrupt.length };
  }
  const ends = [find("-->", start + 4), find("--!>", start + 4)].filter((at) => at !== -1);
  if (ends.length === 0) return { kind: "comment", start, end: text.length, unended: true };
  const end = Math.min(...ends);
  return { kind: "comment", start, end: end + (text.startsWith("-->", end) ? 3 : 4) };
}

/** `<?`, `<!` but `<!--`, or `</` followed by neither a name nor `>` (which HTML drops). */
function isBogusComment(text: string, at: number): boolean {
  const next = text[at + 1];
  if (next === "?") return true;
  if (next === "!") return !text.startsWith("<!--", at);
  return next === "/" && at + 2 < text.length && text[at + 2] !== ">";
}

/**
 * The tag whose name starts at `nameStart`, read as HTML's tokenizer does: its name runs to a
 * space, `/` or `>`; its `>` is the first one outside a quoted attribute value, and a quote opens
 * a value only where a value starts (after a name's `=` and any spaces); with no `>`, it runs to
 * the end of the text
 * (https://html.spec.whatwg.org/multipage/parsing.html#before-attribute-name-state).
 */
function htmlTag(text: string, start: number, nameStart: number, closing: boolean): HtmlPiece {
  let nameEnd = nameStart + 1;
  while (nameEnd < text.length && !TAG_NAME_END.test(text[nameEnd]!)) nameEnd++;
  let end = text.length;
  let state: AttributeState = "beforeName";
  for (let i = nameEnd; i < text.length; i++) {
    const char = text[i]!;
    if (char === ">") {
      end = i;
      break;
    }
    if (state === "beforeValue" && (char === '"' || char === "'")) {
      const close = text.indexOf(char, i + 1);
      if (close === -1) break;
      i = close;
      state = "beforeName";
    } else state = nextAttributeState(state, char);
  }
  return tagPiece(text, { start, nameStart, nameEnd, end, closing });
}

/** Where the tokenizer is among a tag's attributes; a quoted value is skipped whole. */
type AttributeState = "beforeName" | "name" | "afterName" | "beforeValue" | "unquoted";

/** The state after `char` (neither `>` nor a value's opening quote). */
function nextAttributeState(state: AttributeState, char: string): AttributeState {
  const space = SPACE.test(char);
  switch (state) {
    case "beforeName":
      // `/` is read as a space here (a self-closing slash that no `>` follows); `=` starts a name.
      return space || char === "/" ? state : "name";
    case "name":
    case "afterName":
      if (space) return "afterName";
      if (char === "/") return "beforeName";
      if (char === "=") return "beforeValue";
      return "name";
    case "beforeValue":
      return space ? state : "unquoted";
    case "unquoted":
      return space ? "beforeName" : state;
  }
}

/** Where the tag name starting at `nameStart` ends (no `>` is a name's). */
function nameEndOf(text: string, nameStart: number): number {
  let nameEnd = nameStart + 1;
  while (nameEnd < text.length && NAME_CHAR.test(text[nameEnd]!)) nameEnd++;
  return nameEnd;
}

/** The tag from `start` to its `>` at `end`; an `end` at the text's end is a tag never closed. */
function tagPiece(
  text: string,
  at: { start: number; nameStart: number; nameEnd: number; end: number; closing: boolean },
): HtmlPiece {
  const attributes = text.slice(at.nameEnd, at.end);
  return {
    kind: "tag",
    start: at.start,
    end: Math.min(at.end + 1, text.length),
    // ASCII only, as HTML lowers a name: `</\u212Abd>` (a Kelvin sign) does not close a `kbd`.
    name: text.slice(at.nameStart, at.nameEnd).replace(/[A-Z]+/g, (run) => run.toLowerCase()),
    closing: at.closing,
    selfClosing: attributes.trimEnd().endsWith("/"),
    attributes,
    ...(at.end === text.length ? { unended: true } : {}),
  };
}

/** Removes HTML comments, an unclosed one to the end, as GitHub hides them. */
export function stripHtmlComments(text: string): string {
  const scanner = createHtmlScanner(text);
  let out = "";
  let at = 0;
  for (let piece = scanner.next(0); piece; piece = scanner.next(piece.end)) {
    if (piece.kind !== "comment") continue;
    out += text.slice(at, piece.start);
    at = piece.end;
  }
  return out + text.slice(at);
}

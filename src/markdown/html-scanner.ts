/** An HTML comment or tag found in text: `[start, end)` covers it, `>` or `-->` included. */
export type HtmlPiece =
  | { kind: "comment"; start: number; end: number }
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
    };

export interface HtmlScanner {
  /** The first comment or tag starting at or after `from`, or undefined when there is none. */
  next(from: number): HtmlPiece | undefined;
  /** Where the closing tag `</name` of a raw-text element (a script, say) starts, or -1. */
  findClosing(name: string, from: number): number;
}

const NAME_START = /[A-Za-z]/;
const NAME_CHAR = /[A-Za-z0-9-]/;

/**
 * Finds HTML comments and tags in hostile text in linear time, where a regex such as
 * `<b[^>]*hidden[^>]*>` backtracks polynomially on repeated unclosed fragments. Every search
 * remembers where it ended, so no stretch of the text is scanned twice however many `<` it holds:
 * callers must ask for positions that never go back.
 *
 * A tag is `<name …>` or `</name …>`, ending at the first `>` as in HTML; a `<` followed by
 * anything else is text. An unclosed comment runs to the end, as GitHub renders it.
 */
export function createHtmlScanner(text: string): HtmlScanner {
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

  return {
    next(from) {
      for (let i = text.indexOf("<", from); i !== -1; i = text.indexOf("<", i + 1)) {
        if (text.startsWith("<!--", i)) {
          const close = text.indexOf("-->", i + 4);
          return { kind: "comment", start: i, end: close === -1 ? text.length : close + 3 };
        }
        const closing = text[i + 1] === "/";
        const nameStart = i + (closing ? 2 : 1);
        if (!NAME_START.test(text[nameStart] ?? "")) continue;
        const end = nextGt(nameStart);
        // No `>` anywhere after this: no tag can start here or later.
        if (end === -1) return undefined;
        let nameEnd = nameStart + 1;
        while (nameEnd < end && NAME_CHAR.test(text[nameEnd]!)) nameEnd++;
        const attributes = text.slice(nameEnd, end);
        return {
          kind: "tag",
          start: i,
          end: end + 1,
          name: text.slice(nameStart, nameEnd).toLowerCase(),
          closing,
          selfClosing: attributes.trimEnd().endsWith("/"),
          attributes,
        };
      }
      return undefined;
    },
    findClosing(name, from) {
      const known = closings.get(name);
      if (known !== undefined && (known === -1 || known >= from)) return known;
      lower ??= text.replace(/[A-Z]+/g, (run) => run.toLowerCase());
      const found = lower.indexOf(`</${name}`, from);
      closings.set(name, found);
      return found;
    },
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

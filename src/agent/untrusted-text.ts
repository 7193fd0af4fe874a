import { randomBytes } from "node:crypto";
import { MAX_USER_TEXT } from "../markdown/create-markdown-parser.js";
import { stripInvisible } from "../markdown/safe-text.js";
import { afterContainers } from "../markdown/code-finder.js";
import { stripMarkup } from "../markdown/strip-markup.js";
import type { TokenCounter } from "./count-tokens.js";
import { sliceWhole } from "../slice-whole.js";

/**
 * Removes what a reader of the GitHub page would not see but a model would read: HTML comments,
 * hidden elements, markup, image alt text, link reference definitions (Markdown's `[//]: #`
 * comments among them), invisible and bidi characters. The text is cut to GitHub's comment limit
 * first, and every step is linear in its length: no pattern here can backtrack, whatever the
 * text holds.
 */
export function cleanUntrustedText(text: string): string {
  const capped =
    text.length <= MAX_USER_TEXT
      ? text
      : `${text.slice(0, MAX_USER_TEXT)}\n…(cut: ${text.length} characters in all)`;
  const unmarked = stripMarkup(capped.replace(/\r\n?/g, "\n"));
  const lines = dropLinkDefinitions(unmarked.split("\n"));
  return stripInvisible(lines.join("\n"))
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/** What a reader of the GitHub page sees of `text`, in characters (see cleanUntrustedText). */
export const visibleLength = (text: string): number => cleanUntrustedText(text).length;

/**
 * Drops link reference definitions (`[label]: destination "title"`), which render as nothing:
 * neither Markdown's comment idiom, `[//]: # (note)`, nor any other is seen by a reader, title
 * included. A title left open runs on to the line that closes it (a blank line ends it). The
 * text of a link that names one stays. Read line by line, as at the top level: one inside a
 * quote or a list is dropped too, and one in a paragraph's middle (text there) as well.
 */
function dropLinkDefinitions(lines: string[]): string[] {
  const kept: string[] = [];
  // The character that closes a title still open on the lines before.
  let closer: string | undefined;
  for (const line of lines) {
    if (closer !== undefined) {
      const blank = line.trim() === "";
      if (blank || line.includes(closer)) closer = undefined;
      if (blank) kept.push(line);
      continue;
    }
    const definition = readLinkDefinition(line);
    if (definition) closer = definition.openTitle;
    else kept.push(line);
  }
  return kept;
}

const TITLE_CLOSERS: Record<string, string> = { '"': '"', "'": "'", "(": ")" };

/** A line that starts a link reference definition, and the closer of a title it leaves open. */
function readLinkDefinition(line: string): { openTitle: string | undefined } | undefined {
  // In a quote or a list item too: `* [x]: /u "title"` renders nothing either.
  const trimmed = line.slice(afterContainers(line, 0, line.length));
  if (!trimmed.startsWith("[")) return undefined;
  const close = trimmed.indexOf("]");
  if (close < 2 || trimmed[close + 1] !== ":") return undefined;
  const rest = trimmed.slice(close + 2).trimStart();
  if (rest === "") return undefined;
  // The destination: `<…>`, or a run without spaces.
  let after: string;
  if (rest.startsWith("<")) {
    const end = rest.indexOf(">");
    if (end === -1) return undefined;
    after = rest.slice(end + 1);
  } else {
    const space = rest.search(/\s/);
    after = space === -1 ? "" : rest.slice(space);
  }
  const title = after.trimStart();
  if (title === "") return { openTitle: undefined };
  const closer = TITLE_CLOSERS[title[0]!];
  // Words after the destination: the line is text, shown as it is.
  if (closer === undefined) return undefined;
  // A backslash escapes a quote: `"a \" b"` is one title.
  let end = title.indexOf(closer, 1);
  while (end !== -1 && isEscaped(title, end)) end = title.indexOf(closer, end + 1);
  if (end === -1) return { openTitle: closer };
  return title.slice(end + 1).trim() === "" ? { openTitle: undefined } : undefined;
}

/** Whether an odd number of backslashes comes before `at`. */
function isEscaped(text: string, at: number): boolean {
  let backslashes = 0;
  for (let i = at - 1; i >= 0 && text[i] === "\\"; i--) backslashes++;
  return backslashes % 2 === 1;
}

/** Wraps untrusted text in delimiters its author cannot guess or close. */
export interface Fence {
  /** The tag name, different for every run, that the system prompt names. */
  readonly tag: string;
  wrap(source: string, text: string): string;
  /**
   * For code (a diff, a file) or text already as a reader sees it (a tool's result, each comment
   * in it cleaned on its own): kept as it is, markup included, and nothing is cut by characters
   * (the caller bounds it); invisible characters, secrets and the tag go.
   */
  wrapCode(source: string, text: string): string;
  /**
   * The same fence (same tag), whose texts are cut, once cleaned, to `maxTokens` each, a note
   * saying so included.
   */
  bounded(maxTokens: number, counter: TokenCounter): Fence;
}

/** Appended to a text cut to fit. */
const CUT_NOTE = "\n…(cut to fit)";
// Its UTF-8 length bounds its tokens: it needs no count.
const CUT_NOTE_TOKENS = Buffer.byteLength(CUT_NOTE, "utf8");

export function createFence(
  scrub: (text: string) => string,
  random = () => randomBytes(6).toString("hex"),
): Fence {
  const tag = `untrusted-${random()}`;
  const strip = (text: string) => scrub(cleanUntrustedText(text)).split(tag).join("");
  const label = (source: string) =>
    sliceWhole(strip(sliceWhole(source, 400)), 200).replace(/["<>\n]/g, " ");
  const fence = (cut: (text: string) => string): Fence => ({
    tag,
    wrap(source, text) {
      return `<${tag} source="${label(source)}">\n${cut(strip(text))}\n</${tag}>`;
    },
    wrapCode(source, text) {
      const code = scrub(stripInvisible(text.replace(/\r\n?/g, "\n")))
        .split(tag)
        .join("");
      return `<${tag} source="${label(source)}">\n${cut(code)}\n</${tag}>`;
    },
    bounded: (maxTokens, counter) => fence((text) => cutToTokens(text, maxTokens, counter)),
  });
  return fence((text) => text);
}

/**
 * `text` if it fits in `maxTokens` less the note's length, else its head and CUT_NOTE, within
 * `maxTokens`. One pass: a text just under the bound is cut too, a little.
 */
function cutToTokens(text: string, maxTokens: number, counter: TokenCounter): string {
  const head = counter.truncateToTokens(text, Math.max(0, maxTokens - CUT_NOTE_TOKENS));
  return head.length === text.length ? text : head.trimEnd() + CUT_NOTE;
}

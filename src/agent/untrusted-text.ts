import { randomBytes } from "node:crypto";
import { MAX_USER_TEXT } from "../markdown/create-markdown-parser.js";
import { stripInvisible } from "../markdown/safe-text.js";
import { dropLinkDefinitions } from "../markdown/link-definitions.js";
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
  return stripInvisible(dropLinkDefinitions(unmarked))
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/** What a reader of the GitHub page sees of `text`, in characters (see cleanUntrustedText). */
export const visibleLength = (text: string): number => cleanUntrustedText(text).length;

/**
 * What wrapCode makes of code, but for removing its tag: line ends as `\n`, invisible characters
 * gone, secrets scrubbed. Scrubbing can lengthen text (a one-character password becomes
 * `[REDACTED]`), so code bounded in tokens is counted as this; cleaning it again changes nothing.
 */
export function cleanCode(text: string, scrub: (text: string) => string): string {
  return scrub(stripInvisible(text.replace(/\r\n?/g, "\n")));
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
      const code = cleanCode(text, scrub).split(tag).join("");
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

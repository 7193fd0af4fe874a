import type { MarkdownIt, Token } from "markdown-it";
import { createMarkdownParser, MAX_USER_TEXT } from "../markdown/create-markdown-parser.js";
import { createHtmlScanner, type HtmlScanner } from "../markdown/html-scanner.js";

export interface ParsedCommand {
  /** Lower-cased command name; `help` when the prefix stands alone. */
  name: string;
  /** The rest of the line, trimmed. */
  args: string;
}

export interface ParseCommandOptions {
  /** The app's slug, so `@<slug> <command>` works as well as `/talos <command>`. */
  slug?: string | undefined;
}

// Elements whose content readers do not see as the comment's own words: hidden, code, or
// quoted (as a `>` quote is).
const HIDING = new Set(["blockquote", "details", "pre"]);
// Elements HTML reads as text up to their end tag, so a `</details>` in one closes nothing;
// `plaintext` never ends (https://html.spec.whatwg.org/multipage/parsing.html#parsing-html-fragments).
const RAW_TEXT = new Set(
  "iframe noembed noframes noscript plaintext script style textarea title xmp".split(" "),
);
/** What `countHiding` says once nothing after some HTML can be seen as the comment's words. */
const HIDES_THE_REST = Number.POSITIVE_INFINITY;

function prefixesOf(options: ParseCommandOptions): string[] {
  const slug = options.slug?.toLowerCase();
  return slug ? ["/talos", `@${slug}[bot]`, `@${slug}`] : ["/talos"];
}

/** The prefix `line` starts with, followed by whitespace or nothing; compared without case. */
function matchPrefix(line: string, prefixes: string[]): string | undefined {
  const head = line.slice(0, 64).toLowerCase();
  return prefixes.find(
    (p) => head.startsWith(p) && /^\s?$/.test(line.slice(p.length, p.length + 1)),
  );
}

/**
 * Whether any line of `body`, whatever its indentation, starts with a command prefix. Linear and
 * cheap: a comment without such a line is never parsed.
 */
export function hasCommandCandidate(body: string, options: ParseCommandOptions = {}): boolean {
  const prefixes = prefixesOf(options);
  return body
    .slice(0, MAX_USER_TEXT)
    .split("\n")
    .some((line) => matchPrefix(line.trimStart(), prefixes) !== undefined);
}

/**
 * Finds the first command in a comment, as GitHub renders it: a line of a paragraph that starts
 * with `/talos <command> [args]` or `@<slug> <command> [args]`, case-insensitively. Lines in
 * code (fenced, indented or inline), block quotes, lists, HTML blocks and `<details>` or `<pre>`
 * are not commands: they quote, show or hide text rather than address the bot.
 *
 * Pure and synchronous. The server runs it in a worker with a deadline (markdown-workers.ts),
 * since a Markdown parse of hostile text can take longer than an event may block the server.
 */
export function parseCommand(
  body: string,
  options: ParseCommandOptions = {},
  parser: MarkdownIt = createCommandParser(),
): ParsedCommand | null {
  const text = body.slice(0, MAX_USER_TEXT).replace(/\r\n?/g, "\n");
  if (!hasCommandCandidate(text, options)) return null;
  const prefixes = prefixesOf(options);
  let quotes = 0;
  let lists = 0;
  let hidden = 0;
  const tokens = parser.parse(text, {});
  for (const [i, token] of tokens.entries()) {
    if (token.type === "blockquote_open") quotes++;
    else if (token.type === "blockquote_close") quotes--;
    else if (token.type === "bullet_list_open" || token.type === "ordered_list_open") lists++;
    else if (token.type === "bullet_list_close" || token.type === "ordered_list_close") lists--;
    else if (token.type === "html_block") hidden = countHiding(token.content, hidden);
    else if (token.type === "inline" && tokens[i - 1]?.type === "paragraph_open") {
      const outsideBlocks = quotes === 0 && lists === 0;
      for (const line of paragraphLines(token.children ?? [])) {
        // `hidden` is read per line, not once per paragraph: a `<details>` opened by inline HTML
        // earlier in the same paragraph hides the lines after it when GitHub renders them.
        if (outsideBlocks && hidden === 0 && line.startsWithText) {
          const prefix = matchPrefix(line.text, prefixes);
          if (prefix) return readCommand(line.text.slice(prefix.length));
        }
        hidden = countHiding(line.html, hidden);
      }
    }
  }
  return null;
}

/**
 * The parser commands are read with: the one Markdown parser, but with escapes and entities left
 * as tokens of their own (`text_special`) rather than joined into the text around them, so that
 * a line written `\/talos review` or `&#47;talos review` is seen not to start with plain text.
 */
export function createCommandParser(): MarkdownIt {
  const parser = createMarkdownParser();
  parser.core.ruler.disable("text_join");
  return parser;
}

function readCommand(rest: string): ParsedCommand {
  const trimmed = rest.trim();
  let end = 0;
  while (end < trimmed.length && !/\s/.test(trimmed[end]!)) end++;
  let name = trimmed.slice(0, end).toLowerCase();
  while (name.length > 0 && ".,:;!?".includes(name.at(-1)!)) name = name.slice(0, -1);
  return { name: name || "help", args: trimmed.slice(end).trim() };
}

interface ParagraphLine {
  /** The line as its author wrote it: text, code spans with their backticks, emphasis marks. */
  text: string;
  /** Whether the line opens with plain text (not code, a link, an image or HTML). */
  startsWithText: boolean;
  /** The inline HTML on the line, which can open or close a `<details>`. */
  html: string;
}

/** Splits a paragraph's inline tokens at its line breaks. */
function paragraphLines(children: Token[]): ParagraphLine[] {
  const lines: ParagraphLine[] = [];
  let line: ParagraphLine | undefined;
  for (const token of children) {
    if (token.type === "softbreak" || token.type === "hardbreak") {
      line = undefined;
      continue;
    }
    if (!line) {
      line = { text: "", startsWithText: token.type === "text", html: "" };
      lines.push(line);
    }
    if (token.type === "code_inline") line.text += `${token.markup}${token.content}${token.markup}`;
    else if (token.type === "html_inline") line.html += token.content;
    else if (token.type.endsWith("_open") || token.type.endsWith("_close"))
      line.text += token.type.startsWith("link") ? "" : token.markup;
    else line.text += token.content;
  }
  return lines;
}

/**
 * `<details>`, `<pre>` and `<blockquote>` opened minus closed, after the HTML in `html`, read as
 * HTML reads it (quoted attribute values, bogus comments, raw text; see createHtmlScanner's
 * `html`), so that no `</details>` GitHub does not read as one reveals the lines after it.
 * `<details/>` opens one too: HTML ignores the slash of an element that is not void, and so does
 * GitHub. HTML that
 * leaves what follows inside markup (a quote, or a raw-text element, never closed) hides the
 * rest of the comment: GitHub renders the Markdown after it inside that markup.
 */
function countHiding(html: string, depth: number): number {
  if (!html.includes("<")) return depth;
  const scanner = createHtmlScanner(html, { html: true });
  let piece = scanner.next(0);
  while (piece) {
    if (piece.kind === "tag") {
      if (piece.unended) return HIDES_THE_REST;
      if (!piece.closing && RAW_TEXT.has(piece.name)) {
        const close = findEndTag(scanner, html, piece.name, piece.end);
        if (close === -1) return HIDES_THE_REST;
        // Its end tag, which hides and reveals nothing.
        piece = scanner.next(close);
        continue;
      }
      if (HIDING.has(piece.name)) depth = Math.max(0, depth + (piece.closing ? -1 : 1));
    }
    piece = scanner.next(piece.end);
  }
  return depth;
}

/** Where the end tag of raw-text element `name` starts (`</name` then a space, `/` or `>`), or -1. */
function findEndTag(scanner: HtmlScanner, html: string, name: string, from: number): number {
  let at = scanner.findClosing(name, from);
  while (at !== -1 && /[A-Za-z0-9-]/.test(html[at + 2 + name.length] ?? "")) {
    at = scanner.findClosing(name, at + 1);
  }
  return at;
}

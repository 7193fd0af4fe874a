import type { MarkdownIt, Token } from "markdown-it";
import {
  attribute,
  createMarkdownParser,
  MAX_USER_TEXT,
} from "../markdown/create-markdown-parser.js";
import { gfmStrikethrough } from "../markdown/gfm-strikethrough.js";
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

// Elements whose content readers do not see as a line the comment's author typed: hidden
// (`details`; `rp`, ruby's fallback text, which every current browser hides), code (`pre`,
// `listing`, `code`, `tt`, `samp`, `kbd`), quoted (`blockquote`, `q`, as a `>` quote is), a link's
// text (`a`, as a Markdown link's is), struck through (`s`, `strike`, `del`, as `~` is: the
// line is shown cancelled), a list item or a heading (as
// Markdown's are), or a table's or an embedding's (`table` and its cells, `template`, `object`,
// `applet`, `marquee`), whose HTML also closes no element opened outside it
// (https://html.spec.whatwg.org/multipage/parsing.html#has-an-element-in-scope).
const HIDING = new Set(
  (
    "details rp pre listing code tt samp kbd blockquote q a s strike del ul ol li " +
    "h1 h2 h3 h4 h5 h6 table caption td th template object applet marquee"
  ).split(" "),
);
// Of those, the ones a `</details>` inside does not close: the `</details>` is out of their scope.
const SCOPES = new Set("table caption td th template object applet marquee".split(" "));
// Of those, the inline ones; HTML's end tag for one closes nothing past another kind.
const PHRASING = new Set("a code tt samp kbd q s strike del".split(" "));
// Formatting elements HTML opens again in the next paragraph when another end tag closed them
// (https://html.spec.whatwg.org/multipage/parsing.html#reconstruct-the-active-formatting-elements).
const FORMATTING = new Set(["a", "code", "tt", "s", "strike"]);
// Elements HTML reads as text up to their end tag, so a `</details>` in one closes nothing.
const RAW_TEXT = new Set("iframe noembed noframes script style textarea title xmp".split(" "));
// Elements after which HTML reads what follows by rules this reader does not follow: `plaintext`
// never ends; `noscript` is raw text or markup depending on the parser; inside `select`, and in
// `svg` or `math` (foreign content, where `<![CDATA[` is a section that `>` does not end), tags
// are read differently. Nothing after them is read as the comment's words.
const ENDS_READING = new Set(["plaintext", "noscript", "select", "svg", "math"]);
/** More nested hiding elements than a comment has for a reason; beyond it, the rest is hidden. */
const MAX_OPEN = 64;

/**
 * Lower case for ASCII letters only: `toLowerCase` folds some other letters into ASCII ones (the
 * Kelvin sign into `k`, `İ` into `i` and a dot, one character longer), which GitHub does not read
 * as a mention of the app, and which moved the places found in the copy off the line's.
 */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (letter) => String.fromCharCode(letter.charCodeAt(0) + 32));
}

function prefixesOf(options: ParseCommandOptions): string[] {
  const slug = options.slug === undefined ? undefined : asciiLower(options.slug);
  return slug ? ["/talos", `@${slug}[bot]`, `@${slug}`] : ["/talos"];
}

/** The prefix `line` starts with, followed by whitespace or nothing; compared without case. */
function matchPrefix(line: string, prefixes: string[]): string | undefined {
  const head = asciiLower(line.slice(0, 64));
  return prefixes.find(
    (p) => head.startsWith(p) && /^\s?$/.test(line.slice(p.length, p.length + 1)),
  );
}

/**
 * Whether any line of `body`, whatever its indentation, starts with a command prefix (followed
 * by whitespace or the line's end). Linear and cheap: a comment without such a line is never
 * parsed. The prefixes are looked for in one lowercased copy, and each place found is checked
 * for what precedes it: split into lines, 65,536 characters of `a\n` made 32,768 strings, whose
 * collection on a busy machine made the check look super-linear.
 */
export function hasCommandCandidate(body: string, options: ParseCommandOptions = {}): boolean {
  const text = asciiLower(body.slice(0, MAX_USER_TEXT));
  for (const prefix of prefixesOf(options)) {
    for (let at = text.indexOf(prefix); at !== -1; at = text.indexOf(prefix, at + 1)) {
      const end = at + prefix.length;
      if (startsLine(text, at) && (end === text.length || SPACE.test(text.charAt(end))))
        return true;
    }
  }
  return false;
}

const SPACE = /\s/;

/**
 * Whether only whitespace comes between the line's start and `at`, a line ending as CommonMark
 * reads one (a lone CR as well as LF). Each walk covers only the whitespace just before its
 * place, and the next place found lies past that place: the walks do not overlap, and the check
 * stays linear.
 */
function startsLine(text: string, at: number): boolean {
  let i = at - 1;
  for (; i >= 0; i--) {
    const char = text.charAt(i);
    if (char === "\n" || char === "\r") return true;
    if (!SPACE.test(char)) return false;
  }
  return true;
}

/**
 * Finds the first command in a comment, as GitHub renders it: a line of a paragraph that starts
 * with `/talos <command> [args]` or `@<slug> <command> [args]`, case-insensitively. Lines in
 * code (fenced, indented or inline), block quotes, lists, HTML blocks and `<details>` or `<pre>`
 * are not commands: they quote, show or hide text rather than address the bot. Nor is a line
 * that starts inside a link's text, a strikethrough (`~`, `~~`, `<s>`, `<del>`, `<strike>`), display
 * math (`$$`) or a footnote: the line shows there, if at all, as part of something else or
 * cancelled, not as a line the author typed.
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
  const footnotes = findFootnoteLines(text);
  const html = createHtmlState();
  let quotes = 0;
  let lists = 0;
  // Where the open table cell's elements start in `html.open`.
  let cell = 0;
  const tokens = parser.parse(text, {});
  for (const [i, token] of tokens.entries()) {
    if (token.type === "blockquote_open") quotes++;
    else if (token.type === "blockquote_close") quotes--;
    else if (token.type === "bullet_list_open" || token.type === "ordered_list_open") lists++;
    else if (token.type === "bullet_list_close" || token.type === "ordered_list_close") lists--;
    else if (token.type === "html_block") readHtml(html, token.content);
    else if (token.type === "td_open" || token.type === "th_open") cell = openCell(html);
    else if (token.type === "td_close" || token.type === "th_close") closeCell(html, cell);
    else if (token.type === "inline" && tokens[i - 1]?.type === "paragraph_open") {
      const commandsHere = quotes === 0 && lists === 0 && !isInFootnote(footnotes, token.map);
      const openBefore = html.open.length;
      for (const line of paragraphLines(token.children ?? [])) {
        // Read per line, not once per paragraph: a `<details>` opened by inline HTML earlier in
        // the same paragraph hides the lines after it when GitHub renders them.
        if (commandsHere && line.startsWithText && !line.enclosed && !isHidden(html)) {
          const prefix = matchPrefix(line.text, prefixes);
          if (prefix) return readCommand(line.text.slice(prefix.length));
        }
        for (const piece of line.html) readHtml(html, piece);
      }
      // The paragraph's end ends an `<rp>` opened in it, as HTML's `</p>` does.
      endRubyFallback(html, openBefore);
    } else if (token.type === "inline") {
      // A heading's or a table cell's: no command, but its HTML can hide what follows.
      for (const child of token.children ?? []) {
        if (child.type === "html_inline") readHtml(html, child.content);
      }
    }
  }
  return null;
}

/**
 * The parser commands are read with: the one Markdown parser, but with escapes and entities left
 * as tokens of their own (`text_special`) rather than joined into the text around them, so that
 * a line written `\/talos review` or `&#47;talos review` is seen not to start with plain text;
 * and with GitHub's strikethrough, `~old~` as well as `~~old~~`, so that a line starting inside
 * either is seen struck through. Here only: what Talos posts escapes every tilde of text
 * (safe-text.ts), and the safe-output parser's reading of it is not to change.
 */
export function createCommandParser(): MarkdownIt {
  const parser = createMarkdownParser();
  parser.core.ruler.disable("text_join");
  parser.use(gfmStrikethrough);
  return parser;
}

function readCommand(rest: string): ParsedCommand {
  const trimmed = rest.trim();
  let end = 0;
  while (end < trimmed.length && !/\s/.test(trimmed[end]!)) end++;
  let name = asciiLower(trimmed.slice(0, end));
  while (name.length > 0 && ".,:;!?".includes(name.at(-1)!)) name = name.slice(0, -1);
  // Emphasis around the word (`**ask**`, `**ask:**`), which GitHub shows as the word alone: it
  // had been "I don't know the command `ask`" (found by a review). Not `~~`: a word struck
  // through is not asked for. A loop, not a regex: the word is the user's, and `[*_]+$` is
  // quadratic on a run of them.
  let from = 0;
  let to = name.length;
  while (from < to && "*_".includes(name[from]!)) from++;
  while (to > from && ".,:;!?*_".includes(name[to - 1]!)) to--;
  name = name.slice(from, to);
  return { name: name || "help", args: trimmed.slice(end).trim() };
}

interface ParagraphLine {
  /** The line as its author wrote it: text, code spans with their backticks, emphasis marks. */
  text: string;
  /** Whether the line opens with plain text (not code, a link, an image or HTML). */
  startsWithText: boolean;
  /**
   * Whether the line starts inside a Markdown link's text (`[see\n/talos ask x\n](…)`), a
   * strikethrough (`~old\n/talos forget x\n~`, or with `~~`) or display math (`$$\n/talos ask x\n$$`):
   * GitHub shows it as part of the link, struck through, or as part of the formula.
   */
  enclosed: boolean;
  /** The inline HTML on the line, in order, which can open or close a `<details>`. */
  html: string[];
}

/** Splits a paragraph's inline tokens at its line breaks. */
function paragraphLines(children: Token[]): ParagraphLine[] {
  const lines: ParagraphLine[] = [];
  let line: ParagraphLine | undefined;
  let links = 0;
  // Strikethroughs (`~`, `~~`) open: markdown-it pairs them within the paragraph, across its lines.
  let struck = 0;
  /** The open links' addresses, innermost last (undefined for an autolink). */
  const hrefs: Array<string | undefined> = [];
  // Each address is written once: a reference definition's, used by many links, made the
  // arguments hundreds of times the comment's length (found by a review).
  const written = new Set<string>();
  // `$$` seen so far, and where in `lines` each one was.
  const maths: number[] = [];
  for (const token of children) {
    if (token.type === "softbreak" || token.type === "hardbreak") {
      line = undefined;
      continue;
    }
    if (!line) {
      const enclosed = links > 0 || struck > 0;
      line = { text: "", startsWithText: token.type === "text", enclosed, html: [] };
      lines.push(line);
    }
    if (token.type === "link_open") {
      links++;
      // An autolink's text is its address already.
      const auto = token.markup === "autolink" || token.markup === "linkify";
      hrefs.push(auto ? undefined : attribute(token, "href"));
    } else if (token.type === "link_close") links = Math.max(0, links - 1);
    else if (token.type === "s_open") struck++;
    else if (token.type === "s_close") struck = Math.max(0, struck - 1);
    if (token.type === "code_inline") line.text += `${token.markup}${token.content}${token.markup}`;
    else if (token.type === "html_inline") line.html.push(token.content);
    else if (token.type === "link_close") {
      // The address after the text: `/talos remember the runbook is [on the wiki](https://…)`
      // had kept "the runbook is on the wiki" (found by a review).
      const href = hrefs.pop();
      if (href && !written.has(href)) {
        written.add(href);
        line.text += ` (${href})`;
      }
    } else if (token.type.endsWith("_open") || token.type.endsWith("_close"))
      line.text += token.type.startsWith("link") ? "" : token.markup;
    else line.text += token.content;
    if (token.type === "text") {
      for (let n = countDisplayMath(token.content); n > 0; n--) maths.push(lines.length - 1);
    }
  }
  markDisplayMath(lines, maths);
  return lines;
}

/** How many `$$` `text` holds, not overlapping. */
function countDisplayMath(text: string): number {
  let count = 0;
  for (let at = text.indexOf("$$"); at !== -1; at = text.indexOf("$$", at + 2)) count++;
  return count;
}

/**
 * Marks the lines that start between a `$$` and the next one: GitHub renders them as one formula
 * (https://docs.github.com/en/get-started/writing-on-github/working-with-advanced-formatting/writing-mathematical-expressions).
 * An unpaired `$$` opens nothing. `maths` holds the line of each `$$`, in order.
 */
function markDisplayMath(lines: ParagraphLine[], maths: number[]): void {
  for (let pair = 0; pair + 1 < maths.length; pair += 2) {
    for (let at = maths[pair]! + 1; at <= maths[pair + 1]!; at++) lines[at]!.enclosed = true;
  }
}

/**
 * For each line of `text`, whether it, or a line above it with no blank line between, starts a
 * footnote definition (`[^1]: …`, a GitHub extension markdown-it does not know, and reads as a
 * link reference or text). Undefined when the text has none.
 */
function findFootnoteLines(text: string): boolean[] | undefined {
  if (!text.includes("[^")) return undefined;
  let inFootnote = false;
  return text.split("\n").map((line) => {
    if (line.trim() === "") inFootnote = false;
    // cmark-gfm's footnote label: no `]`, space, tab or line break.
    else if (/^ {0,3}\[\^[^\] \t]+\]:/.test(line)) inFootnote = true;
    return inFootnote;
  });
}

/**
 * Whether a paragraph on source lines `map` is (or is continued into) a footnote: GitHub moves its
 * lines to the footnotes at the end of the comment, or drops them when nothing refers to it.
 */
function isInFootnote(footnotes: boolean[] | undefined, map: [number, number] | null): boolean {
  if (!footnotes || !map) return false;
  for (let line = map[0]; line < map[1]; line++) if (footnotes[line]) return true;
  return false;
}

/** What the HTML read so far leaves open where the next line or block starts. */
interface HtmlState {
  /** Hiding elements open (HIDING), innermost last, and the table cells open around them. */
  open: string[];
  /** The raw-text element whose end tag ends the text being read, if one is open. */
  rawText?: string;
  /** Set once nothing after the HTML read can be seen as the comment's words. */
  rest: boolean;
}

function createHtmlState(): HtmlState {
  return { open: [], rest: false };
}

/** Whether what follows the HTML read so far is hidden, quoted, code, a link's or a table's. */
function isHidden(state: HtmlState): boolean {
  return state.rest || state.rawText !== undefined || state.open.length > 0;
}

/**
 * Reads `html`, the next piece of the comment's HTML (an HTML block, or a line's inline HTML), as
 * HTML reads it (quoted attribute values, bogus comments, raw text; see createHtmlScanner's
 * `html`), so that no `</details>` GitHub does not read as one reveals the lines after it. The
 * pieces are read as one text: Markdown escapes every `<` between them, and a raw-text element
 * opened in one ends in a later one. `<details/>` opens a section: HTML ignores the slash of an
 * element that is not void, and so does GitHub. HTML that leaves what follows inside markup (a
 * quote, a comment, or a `plaintext`, never closed) hides the rest of the comment: GitHub renders
 * the Markdown after it inside that markup.
 */
function readHtml(state: HtmlState, html: string): void {
  if (state.rest || !html.includes("<")) return;
  const scanner = createHtmlScanner(html, { html: true });
  let at = state.rawText === undefined ? 0 : endRawText(state, scanner, html, 0);
  while (!state.rest && state.rawText === undefined && at !== -1) {
    const piece = scanner.next(at);
    if (!piece) return;
    at = piece.end;
    if (piece.unended) state.rest = true;
    else if (piece.kind === "comment") continue;
    else if (piece.closing) {
      if (piece.name === "ruby") endRubyFallback(state, 0);
      closeElement(state, piece.name);
    } else if (ENDS_READING.has(piece.name)) state.rest = true;
    else if (RAW_TEXT.has(piece.name)) {
      state.rawText = piece.name;
      at = endRawText(state, scanner, html, piece.end);
    } else {
      // An `<rp>` needs no end tag: the next `<rt>` or `<rp>` ends it (and `</ruby>`, above).
      if (piece.name === "rt" || piece.name === "rp") endRubyFallback(state, 0);
      if (HIDING.has(piece.name)) openElement(state, piece.name);
    }
  }
}

/** Ends the innermost open `<rp>` opened at `from` or later in `state.open`, as HTML does. */
function endRubyFallback(state: HtmlState, from: number): void {
  if (state.open.length > from && state.open.at(-1) === "rp") state.open.pop();
}

/**
 * Ends the open raw-text element at its end tag in `html`, from `from`: where reading resumes
 * (its end tag, read as a tag that hides and reveals nothing), or -1 when it is still open. A
 * `<!--` in a script can make HTML read a `</script>` after it as text (the script's "escaped"
 * states), so one hides the rest.
 */
function endRawText(state: HtmlState, scanner: HtmlScanner, html: string, from: number): number {
  const name = state.rawText!;
  const close = findEndTag(scanner, html, name, from);
  const escape = name === "script" ? scanner.find("<!--", from) : -1;
  if (escape !== -1 && (close === -1 || escape < close)) state.rest = true;
  if (close === -1 || state.rest) return -1;
  state.rawText = undefined;
  const endTag = scanner.next(close);
  if (endTag?.unended) state.rest = true;
  return endTag?.end ?? -1;
}

/**
 * Where the end tag of raw-text element `name` starts (`</name` then a space, `/` or `>`), or -1
 * (https://html.spec.whatwg.org/multipage/parsing.html#rawtext-end-tag-name-state).
 */
function findEndTag(scanner: HtmlScanner, html: string, name: string, from: number): number {
  let at = scanner.findClosing(name, from);
  while (at !== -1 && !/^[\t\n\f\r />]$/.test(html[at + 2 + name.length] ?? "")) {
    at = scanner.findClosing(name, at + 1);
  }
  return at;
}

function openElement(state: HtmlState, name: string): void {
  if (state.open.length >= MAX_OPEN) state.rest = true;
  else state.open.push(name);
}

/**
 * Closes the innermost open `name`, as HTML does, or nothing when HTML would not: when an element
 * whose scope keeps it out (a table, a cell) is open inside it, or, for an inline element (`a`,
 * `code`, `q`…), when any other kind of hiding element is open inside it
 * (https://html.spec.whatwg.org/multipage/parsing.html#adoption-agency-algorithm). What else it
 * closes goes with it, but for the formatting elements HTML opens again in the next paragraph.
 */
function closeElement(state: HtmlState, name: string): void {
  if (!HIDING.has(name)) return;
  const inline = PHRASING.has(name);
  let at = state.open.length - 1;
  while (at >= 0 && state.open[at] !== name) {
    const inside = state.open[at]!;
    if (inline ? !PHRASING.has(inside) : SCOPES.has(inside)) return;
    at--;
  }
  if (at === -1) return;
  const reopened = state.open.slice(at + 1).filter((open) => FORMATTING.has(open));
  state.open.splice(at, state.open.length - at, ...reopened);
}

/** A Markdown table cell starts: where its elements start in `state.open`. */
function openCell(state: HtmlState): number {
  const at = state.open.length;
  openElement(state, "td");
  return at;
}

/**
 * A Markdown table cell ends: HTML closes what the cell opened, unless its end tag is not read as
 * one (inside raw text, or a table or template the cell opened), and then everything stays open.
 */
function closeCell(state: HtmlState, at: number): void {
  if (state.rawText !== undefined) return;
  const inCell = state.open.slice(at + 1);
  if (inCell.includes("table") || inCell.includes("template")) return;
  state.open.splice(at);
}

import type { MarkdownIt, Token } from "markdown-it";
import { attribute, createMarkdownParser, MAX_USER_TEXT } from "./create-markdown-parser.js";
import { stripHtmlComments } from "./html-scanner.js";
import {
  breakMarkers,
  codeSpan,
  isInvisible,
  renderPlainText,
  renderText,
  stripInvisible,
  targetProblem,
  type TextScope,
} from "./safe-text.js";

// GitHub rejects comments over 65,536 characters; leave room for Talos's marker and notes.
export const MAX_SAFE_MARKDOWN = 60_000;
const TRUNCATED = "…(truncated)";

export interface SafeMarkdownOptions {
  /** `owner/repo` the text is posted in. */
  repo: string;
  /** Issue and pull request numbers Talos retrieved in this run: the only ones it may reference. */
  references: readonly number[];
  /** The longest result, in characters (default 60,000). */
  maxLength?: number;
  /** Hosts images may come from besides GitHub's (MarkdownWorkers sets GHE_HOST's). */
  imageHosts?: readonly string[] | undefined;
  /**
   * The text is a suggested change of a review comment, checked against the diff by its writer:
   * its `suggestion` fence keeps that label. In any other text such a fence is relabelled `text`,
   * since GitHub gives it a button that commits whatever it holds.
   */
  suggestion?: boolean;
}

// GitHub's alert syntax (`> [!WARNING]` alone on a quote's first line), which Talos uses itself.
const ALERTS = new Set(["NOTE", "TIP", "IMPORTANT", "WARNING", "CAUTION"]);

/**
 * The one function everything Talos posts goes through. The text is parsed as GitHub renders
 * it (CommonMark with GitHub's extensions) and written back from the syntax tree, keeping its
 * structure (paragraphs, headings, lists, quotes, tables, code, emphasis, links) but nothing
 * that can act on anyone:
 * - no live `@mention` or team mention, e-mail or bare URL: they become code;
 * - no raw HTML: comments are dropped, other HTML is shown as text, so no Talos marker;
 * - links and images only to `https:` URLs; others keep their text and lose the link;
 * - issue references (`#12`, GitHub issue URLs) only to `references` in this repository;
 * - at most `maxLength` characters, cut between blocks so the Markdown stays whole.
 * Pure and synchronous; the server runs it in a worker with a deadline (markdown-workers.ts).
 */
export function toSafeMarkdown(
  text: string,
  options: SafeMarkdownOptions,
  parser: MarkdownIt = createMarkdownParser(),
): string {
  const scope = toScope(options);
  // A suggested change keeps its joiners: its text is code GitHub commits as it is posted.
  const clean = stripInvisible(
    text.slice(0, MAX_USER_TEXT).replace(/\r\n?/g, "\n"),
    options.suggestion === true,
  );
  const max = options.maxLength ?? MAX_SAFE_MARKDOWN;
  const room = max - TRUNCATED.length - 2;
  const kept: string[] = [];
  let length = 0;
  const blocks = new Writer(parser.parse(clean, {}), scope, options.suggestion === true).blocks();
  for (const block of blocks) {
    const cost = block.markdown.length + (kept.length > 0 ? 2 : 0);
    if (length + cost > room) {
      // A first block too long to keep whole is shown as much of its text as fits, inert.
      if (kept.length === 0) {
        const lines = clean.split("\n").slice(block.lines[0], block.lines[1]).join("\n");
        kept.push(renderPlainText(lines, scope, room).markdown);
      }
      kept.push(TRUNCATED);
      break;
    }
    kept.push(block.markdown);
    length += cost;
  }
  return kept.join("\n\n").trim();
}

/**
 * Whether `text`, posted through toSafeMarkdown, would show a reader nothing: only HTML
 * comments (dropped) and invisible characters, spelt as numeric entities (`&#x200B;`) too. Other
 * HTML is shown as text, so it counts. A model's answer that is such had been posted as a
 * comment holding nothing but Talos's marker.
 */
export function showsNothing(text: string): boolean {
  const spelt = text.replace(/&#(x[0-9a-f]{1,6}|[0-9]{1,7});/gi, (entity, code: string) => {
    const point = code[0] === "x" || code[0] === "X" ? parseInt(code.slice(1), 16) : Number(code);
    const char = point <= 0x10ffff ? String.fromCodePoint(point) : "";
    return char === "" || isInvisible(char) || /\s/.test(char) ? "" : entity;
  });
  return stripInvisible(stripHtmlComments(spelt)).trim() === "";
}

/** What a text that could not be parsed in time is posted as: every line inert. */
export function toSafePlainText(text: string, options: SafeMarkdownOptions): string {
  const clean = stripInvisible(text.slice(0, MAX_USER_TEXT).replace(/\r\n?/g, "\n"));
  const room = (options.maxLength ?? MAX_SAFE_MARKDOWN) - TRUNCATED.length - 2;
  const { markdown, complete } = renderPlainText(clean, toScope(options), room);
  return complete ? markdown.trim() : `${markdown.trim()}\n\n${TRUNCATED}`;
}

function toScope(options: SafeMarkdownOptions): TextScope {
  return {
    repo: options.repo.toLowerCase(),
    references: new Set(options.references),
    imageHosts: options.imageHosts,
  };
}

/** Writes markdown-it's tokens back as Markdown: one string per top-level block. */
class Writer {
  #at = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly scope: TextScope,
    private readonly suggestion: boolean,
  ) {}

  /** The top-level blocks, with the source lines each came from. */
  blocks(): Array<{ markdown: string; lines: [number, number] }> {
    const blocks: Array<{ markdown: string; lines: [number, number] }> = [];
    while (this.#at < this.tokens.length) {
      const first = this.tokens[this.#at]!;
      const lines = this.#block(first);
      const [start, end] = first.map ?? [0, 0];
      if (lines.length > 0) blocks.push({ markdown: lines.join("\n"), lines: [start, end] });
    }
    return blocks;
  }

  /** Blocks up to the token of type `close` (consumed), each as its lines. */
  #sequence(close: string | undefined): string[][] {
    const blocks: string[][] = [];
    while (this.#at < this.tokens.length) {
      const token = this.tokens[this.#at]!;
      if (token.type === close) {
        this.#at++;
        break;
      }
      const block = this.#block(token);
      if (block.length > 0) blocks.push(block);
    }
    return blocks;
  }

  #block(token: Token): string[] {
    const t = this.tokens;
    switch (token.type) {
      case "paragraph_open": {
        const inline = t[this.#at + 1]!;
        this.#at += 3;
        return this.#inline(inline.children ?? [], {}).split("\n");
      }
      case "heading_open": {
        const inline = t[this.#at + 1]!;
        this.#at += 3;
        const level = Number(token.tag.slice(1)) || 1;
        const text = this.#inline(inline.children ?? [], { inHeading: true }).replace(/\n/g, " ");
        return [`${"#".repeat(level)} ${text}`];
      }
      case "blockquote_open": {
        this.#at++;
        const lines = joinBlocks(this.#sequence("blockquote_close"), false);
        // Written back unescaped, as GitHub reads it; alone on its line, it cannot start a link.
        const alert = /^\\\[!([A-Z]+)\\\]$/.exec(lines[0] ?? "")?.[1];
        if (alert && ALERTS.has(alert)) lines[0] = `[!${alert}]`;
        return lines.map((line) => (line ? `> ${line}` : ">"));
      }
      case "bullet_list_open":
      case "ordered_list_open":
        return this.#list(token);
      case "fence":
      case "code_block":
        this.#at++;
        return fencedCode(token.content, token.type === "fence" ? token.info : "", this.suggestion);
      case "html_block": {
        this.#at++;
        const visible = stripHtmlComments(token.content).trim();
        return visible ? renderPlainText(visible, this.scope).markdown.split("\n") : [];
      }
      case "hr":
        this.#at++;
        return ["---"];
      case "table_open":
        return this.#table();
      default:
        this.#at++;
        return [];
    }
  }

  #list(open: Token): string[] {
    const close = open.type.replace("_open", "_close");
    const ordered = open.type === "ordered_list_open";
    let number = Number(open.attrGet("start") ?? 1);
    // markdown-it hides the paragraphs of a tight list's items.
    const tight = this.tokens[this.#at + 2]?.hidden === true;
    this.#at++;
    const items: string[][] = [];
    while (this.#at < this.tokens.length && this.tokens[this.#at]!.type !== close) {
      if (this.tokens[this.#at]!.type !== "list_item_open") {
        this.#at++;
        continue;
      }
      this.#at++;
      // CommonMark reads at most nine digits (999,999,999): a longer number starts no item.
      const marker = ordered ? `${Math.min(number++, 999_999_999)}.` : "-";
      const lines = joinBlocks(this.#sequence("list_item_close"), tight);
      const indent = " ".repeat(marker.length + 1);
      items.push(
        lines.length === 0
          ? [marker]
          : lines.map((line, i) => (i === 0 ? `${marker} ${line}` : line ? indent + line : "")),
      );
    }
    this.#at++;
    return joinBlocks(items, tight);
  }

  #table(): string[] {
    const rows: string[][] = [];
    const aligns: string[] = [];
    let header = 0;
    let row: string[] | undefined;
    for (this.#at++; this.#at < this.tokens.length; this.#at++) {
      const token = this.tokens[this.#at]!;
      if (token.type === "table_close") break;
      if (token.type === "tr_open") row = [];
      else if (token.type === "tr_close" && row) rows.push(row);
      else if (token.type === "thead_close") header = rows.length;
      else if (token.type === "th_open") {
        const style = attribute(token, "style") ?? "";
        aligns.push(
          style.includes("center")
            ? ":-:"
            : style.includes("right")
              ? "--:"
              : style.includes("left")
                ? ":--"
                : "---",
        );
      } else if (token.type === "inline" && row) {
        row.push(this.#inline(token.children ?? [], { inTable: true }).replace(/\n/g, " "));
      }
    }
    this.#at++;
    if (rows.length === 0 || header === 0) return [];
    const line = (cells: string[]) =>
      `| ${aligns.map((_, i) => cells[i]?.trim() ?? "").join(" | ")} |`;
    return [line(rows[0]!), `| ${aligns.join(" | ")} |`, ...rows.slice(1).map(line)];
  }

  /**
   * Inline tokens as Markdown; links and HTML are checked here. Text is written a run at a time:
   * what a dropped HTML comment, link or image leaves joins the text around it (`@<!-- -->x`
   * reads `@x`), and only the joined words show what GitHub would link.
   */
  #inline(children: Token[], place: { inTable?: boolean; inHeading?: boolean }): string {
    let out = "";
    let lineStart = true;
    let pending = "";
    // For each open link: whether its `[` was written (its target is allowed).
    const links: Array<{ written: boolean; href: string }> = [];
    let skipping = 0;
    const text = (content: string) => {
      pending += content;
    };
    // Backtick runs side by side are one run: a code span written against another, or against
    // a backtick, would close nothing, and what follows would be live. A space parts them.
    const append = (markdown: string) => {
      out += out.endsWith("`") && markdown.startsWith("`") ? ` ${markdown}` : markdown;
    };
    /** Writes the pending text, then `markdown`, which leaves a line start as `atLineStart`. */
    const write = (markdown: string, atLineStart?: boolean) => {
      if (pending) {
        append(renderText(pending, this.scope, { ...place, lineStart }));
        pending = "";
        lineStart = false;
      }
      append(markdown);
      if (atLineStart !== undefined) lineStart = atLineStart;
    };
    for (const token of children) {
      if (skipping > 0) {
        if (token.type === "link_close") skipping--;
        continue;
      }
      switch (token.type) {
        case "text":
          text(token.content);
          break;
        case "code_inline":
          write(codeSpan(token.content, place.inTable), false);
          break;
        case "softbreak":
          write("\n", true);
          break;
        case "hardbreak":
          write(
            place.inTable || place.inHeading ? " " : "\\\n",
            !place.inTable && !place.inHeading,
          );
          break;
        case "em_open":
        case "em_close":
          write("*");
          break;
        case "strong_open":
        case "strong_close":
          write("**");
          break;
        case "s_open":
        case "s_close":
          write("~~");
          break;
        case "link_open": {
          const href = attribute(token, "href") ?? "";
          const allowed = this.#allowed(href);
          // An autolink's text is its URL: written whole, or as text (which makes it code).
          if (token.markup === "linkify" || token.markup === "autolink") {
            if (allowed) {
              write(`<${destination(href)}>`, false);
              skipping = 1;
            }
            links.push({ written: false, href });
            break;
          }
          if (allowed) write("[");
          links.push({ written: allowed, href });
          break;
        }
        case "link_close": {
          const link = links.pop();
          if (link?.written) write(`](<${destination(link.href)}>)`);
          break;
        }
        case "image": {
          const src = attribute(token, "src") ?? "";
          if (this.#allowed(src, "image")) {
            const alt = renderText(token.content, this.scope, { ...place, lineStart: false });
            write(`![${alt}](<${destination(src)}>)`, false);
          } else {
            text(token.content);
          }
          break;
        }
        case "html_inline": {
          const visible = stripHtmlComments(token.content);
          if (visible) text(visible);
          break;
        }
        default:
          if (token.content) text(token.content);
      }
    }
    write("");
    return out;
  }

  #allowed(href: string, kind: "link" | "image" = "link"): boolean {
    return targetProblem(href, this.scope, kind) === undefined;
  }
}

/** A link target in `<…>`, with what would end it percent-encoded. */
function destination(href: string): string {
  return href.replace(/[<>\s\\`]/g, (char) => encodeURIComponent(char));
}

function fencedCode(content: string, info: string, suggestion: boolean): string[] {
  let longest = 2;
  for (const [run] of content.matchAll(/`+/g)) longest = Math.max(longest, run.length);
  const fence = "`".repeat(longest + 1);
  const language =
    info
      .trim()
      .split(/\s/)[0]
      ?.replace(/[^\w+.#-]/g, "")
      .slice(0, 40) ?? "";
  // Checked on the label as written, after the cleaning above: `sugg'estion` would be one.
  const label = isSuggestionLabel(language) && !suggestion ? "text" : language;
  // An empty block stays empty: a suggestion without lines deletes the lines it is on.
  const lines = content === "" ? [] : breakMarkers(content).replace(/\n$/, "").split("\n");
  return [fence + label, ...lines, fence];
}

/**
 * Whether a fenced block's info string makes it a suggested change, which GitHub shows with a
 * button that commits it.
 * https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/reviewing-changes-in-pull-requests/incorporating-feedback-in-your-pull-request
 */
export function isSuggestionLabel(info: string): boolean {
  return info.trim().split(/\s/)[0]?.toLowerCase() === "suggestion";
}

/** Blocks of a container: separated by a blank line, or by none in a tight list. */
function joinBlocks(blocks: string[][], tight: boolean): string[] {
  const lines: string[] = [];
  blocks.forEach((block, i) => {
    if (i > 0 && !tight) lines.push("");
    lines.push(...block);
  });
  return lines;
}

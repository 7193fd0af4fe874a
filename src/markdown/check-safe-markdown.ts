import type { MarkdownIt, Token } from "markdown-it";
import { afterContainers } from "./code-finder.js";
import { attribute, createMarkdownParser } from "./create-markdown-parser.js";
import { findMarker, targetProblem } from "./safe-text.js";
import {
  isSuggestionLabel,
  MAX_SAFE_MARKDOWN,
  type SafeMarkdownOptions,
} from "./to-safe-markdown.js";

/**
 * The promises of `toSafeMarkdown`, checked on its output as GitHub would render it: a fresh
 * parse, then every token. Returns what is wrong, or nothing. The workers check every result
 * before it is posted, and fall back to plain text when this finds anything.
 */
export function checkSafeMarkdown(
  markdown: string,
  options: SafeMarkdownOptions,
  parser: MarkdownIt = createMarkdownParser(),
): string[] {
  const problems: string[] = [];
  const repo = options.repo.toLowerCase();
  const references = new Set(options.references);
  const scope = { repo, references, imageHosts: options.imageHosts };
  if (markdown.length > (options.maxLength ?? MAX_SAFE_MARKDOWN))
    problems.push(`longer than ${options.maxLength ?? MAX_SAFE_MARKDOWN} characters`);
  if (findMarker(markdown, 0) !== -1) problems.push("holds a Talos marker");
  // GitHub autolinks nothing inside a link. An autolink's text (`<https://…>`, as the writer
  // puts it) is its target, checked as such: `@scope` or `#2` in a URL is no mention or reference.
  const links: boolean[] = [];
  const visit = (tokens: Token[]) => {
    for (const token of tokens) {
      if (token.type === "link_open") links.push(token.markup === "autolink");
      if (token.type === "link_close") links.pop();
      if (token.type === "fence" && !options.suggestion && isSuggestionLabel(token.info))
        problems.push("a suggested change the text was not made for");
      if (token.type === "html_block" || token.type === "html_inline")
        problems.push(`raw HTML: ${JSON.stringify(token.content.slice(0, 40))}`);
      if (token.type === "link_open" || token.type === "image") {
        const kind = token.type === "image" ? "image" : "link";
        const reason = targetProblem(
          attribute(token, kind === "image" ? "src" : "href") ?? "",
          scope,
          kind,
        );
        if (reason) problems.push(`${kind} ${reason}`);
      }
      if (token.type === "text" && !links.at(-1))
        problems.push(...checkText(token.content, repo, references, links.length > 0));
      if (token.children) visit(token.children);
    }
  };
  const tokens = parser.parse(markdown, {});
  visit(tokens);
  problems.push(...strayTableRows(markdown, tokens));
  return problems;
}

/**
 * Lines GitHub reads as a table's delimiter row outside the tables markdown-it sees. GitHub's
 * parser (cmark-gfm) starts a table at a delimiter row without a pipe (`:-:`), the line before
 * it the header; markdown-it wants a pipe in the header, and sees a paragraph. In such a table
 * every later line is cut into cells at each pipe, inside code spans too, so code the writer
 * made of a mention (`@octocat|x`) or of HTML turned live, unseen by the checks above.
 */
function strayTableRows(markdown: string, tokens: Token[]): string[] {
  // Lines markdown-it reads as a table or as code, where such a line is what it should be.
  const kept: boolean[] = [];
  for (const token of tokens) {
    const kind = token.type;
    if (!token.map || (kind !== "table_open" && kind !== "fence" && kind !== "code_block"))
      continue;
    for (let line = token.map[0]; line < token.map[1]; line++) kept[line] = true;
  }
  const problems: string[] = [];
  for (let start = 0, line = 0; start <= markdown.length; line++) {
    let end = markdown.indexOf("\n", start);
    if (end === -1) end = markdown.length;
    if (!kept[line] && isDelimiterRow(markdown, afterContainers(markdown, start, end), end))
      problems.push(`a line GitHub reads as a table: ${markdown.slice(start, end).slice(0, 40)}`);
    start = end + 1;
  }
  return problems;
}

/**
 * Whether the line from `at` to `end` is a table's delimiter row as cmark-gfm scans it:
 * `[|]? marker ([|] marker)* [|]? spaces`, a marker being `spaces :? -+ :? spaces`. A row of
 * dashes alone is not: it underlines a heading, which cmark-gfm tries first. A scan, linear.
 */
function isDelimiterRow(text: string, at: number, end: number): boolean {
  const blank = (i: number) => i < end && " \t\v\f".includes(text[i]!);
  let i = at;
  // Dashes alone (`---`) need a pipe or a colon somewhere to be read as a row.
  let marked = text[i] === "|";
  if (marked) i++;
  for (;;) {
    while (blank(i)) i++;
    if (text[i] === ":") {
      marked = true;
      i++;
    }
    if (i >= end || text[i] !== "-") return false;
    while (i < end && text[i] === "-") i++;
    if (i < end && text[i] === ":") {
      marked = true;
      i++;
    }
    while (blank(i)) i++;
    if (i >= end) return marked;
    if (text[i] !== "|") return false;
    marked = true;
    i++;
    while (blank(i)) i++;
    if (i >= end) return true;
  }
}

/** What GitHub's filters would link in a text node: mentions, URLs, references. */
function checkText(text: string, repo: string, references: Set<number>, inLink: boolean): string[] {
  const problems: string[] = [];
  for (const [word] of text.matchAll(/\S+/g)) {
    for (let at = word.indexOf("@"); at !== -1; at = word.indexOf("@", at + 1)) {
      if (/[\p{L}\p{N}]/u.test(word[at + 1] ?? ""))
        problems.push(`a live mention or e-mail address: ${word.slice(0, 40)}`);
    }
    const lower = word.toLowerCase();
    if (!inLink && (lower.includes("://") || lower.includes("www.")))
      problems.push(`a bare URL GitHub autolinks: ${word.slice(0, 40)}`);
    if (/gh-\d/.test(lower)) problems.push(`a GH- reference: ${word.slice(0, 40)}`);
    // GitHub links `#12` after a non-word character, and `owner/repo#12`; not `abc#12`.
    let offset = 0;
    while (offset < word.length && /[^\w]/.test(word[offset]!)) offset++;
    const slash = word.indexOf("/");
    for (let at = word.indexOf("#"); at !== -1; at = word.indexOf("#", at + 1)) {
      const digits = /^\d+/.exec(word.slice(at + 1, at + 12))?.[0];
      if (!digits) continue;
      const before = word[at - 1];
      const qualified = before !== undefined && /[\w.-]/.test(before);
      if (qualified && (slash === -1 || slash > at)) continue;
      const sameRepo = at - offset === repo.length && word.slice(offset, at).toLowerCase() === repo;
      if (!references.has(Number(digits)) || (qualified && !sameRepo))
        problems.push(`a reference Talos did not retrieve: ${word.slice(0, 40)}`);
    }
  }
  return problems;
}

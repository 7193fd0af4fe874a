import MarkdownItCallable, { type MarkdownIt, type Token } from "markdown-it";

/** GitHub's comment limit: no text a user wrote is longer, so none is read further than this. */
export const MAX_USER_TEXT = 65_536;

/**
 * The one Markdown parser: markdown-it (CommonMark) with the GitHub extensions GitHub renders in
 * comments: tables, strikethrough, raw HTML and autolinks. Bare domains such as `README.md` are
 * not links on GitHub, so only URLs with a scheme, and e-mail addresses, are autolinked here.
 *
 * markdown-it was chosen by measurement on hostile input (see the README's Security section):
 * roughly linear, at worst about 0.2 s for 65,536 characters, where micromark and commonmark.js
 * take seconds to minutes. That is still more than one event may block the server for, so
 * untrusted text is parsed in a worker (markdown-workers.ts).
 */
export function createMarkdownParser(): MarkdownIt {
  const parser = MarkdownItCallable({ html: true, linkify: true });
  parser.linkify.set({ fuzzyLink: false, fuzzyEmail: true });
  return parser;
}

/** A token's attribute as text (markdown-it types them as numbers too), or undefined. */
export function attribute(token: Token, name: string): string | undefined {
  const value = token.attrGet(name);
  return value === null ? undefined : String(value);
}

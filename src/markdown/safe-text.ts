import { sliceWhole } from "../slice-whole.js";

// Zero-width, bidi (the Arabic letter mark too) and other invisible format characters, and
// Unicode tag characters (U+E0000–U+E007F), which can spell out text no reader sees. So can
// variation selectors, one byte each (a run after an emoji looked like the emoji; found by a
// review): all go but text or emoji presentation (U+FE0E, U+FE0F) right after an emoji or a
// keycap's base (❤️, 1️⃣). Also lone surrogates (with the `u` flag a whole pair is one
// character, outside the class): half an emoji, left by a cut, is no valid Unicode, and a strict
// JSON server refuses a request that holds one.
const INVISIBLE =
  // eslint-disable-next-line no-misleading-character-class -- the selectors alone are matched
  /[\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFE00-\uFE0D\uFEFF\uD800-\uDFFF]|[\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}]|(?<![\p{Extended_Pictographic}0-9#*])[\uFE0E\uFE0F]/gu;
// The same but the zero-width non-joiner and joiner (U+200C, U+200D), which join or part letters
// (Persian, Indic scripts) and emoji (👨‍👩‍👧): code a suggested change commits keeps them.
const INVISIBLE_BUT_JOINERS =
  // eslint-disable-next-line no-misleading-character-class -- as above
  /[\u00AD\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFE00-\uFE0D\uFEFF\uD800-\uDFFF]|[\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}]|(?<![\p{Extended_Pictographic}0-9#*])[\uFE0E\uFE0F]/gu;
// Control characters other than tab and newline.
// eslint-disable-next-line no-control-regex -- matching them is the point
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

// eslint-disable-next-line no-misleading-character-class -- as above
const INVISIBLE_CHARACTER = new RegExp(`^(?:${INVISIBLE.source})$`, "u");

/** Whether `char`, one code point, is one that stripInvisible removes as invisible. */
export function isInvisible(char: string): boolean {
  return INVISIBLE_CHARACTER.test(char);
}

/**
 * Removes invisible, bidi, tag and control characters and lone surrogates (tab and newline
 * stay); with `keepJoiners`, not the zero-width joiner and non-joiner.
 */
export function stripInvisible(text: string, keepJoiners = false): string {
  return text.replace(keepJoiners ? INVISIBLE_BUT_JOINERS : INVISIBLE, "").replace(CONTROL, "");
}

/** What text may point at: the repository commented in, and the issues Talos retrieved. */
export interface TextScope {
  /** `owner/repo`, lower-cased. */
  repo: string;
  /** Issue and pull request numbers that may be referenced (`#12`). */
  references: ReadonlySet<number>;
  /** Hosts images may come from besides GitHub's (a GitHub Enterprise Server's, GHE_HOST). */
  imageHosts?: readonly string[] | undefined;
}

export interface TextPlace {
  /** The text begins a line: `#`, `-`, `+`, `=` and `1.` would start a block there. */
  lineStart: boolean;
  /** In a table cell, `|` ends the cell even inside code. */
  inTable?: boolean;
  /** In a heading, a trailing `#` would close it. */
  inHeading?: boolean;
}

/**
 * Why a link or image target may not be posted, or undefined when it may: `https:` only, without
 * credentials, and a GitHub issue or pull request URL only for this repository's references. An
 * image only from GitHub's own hosts: GitHub's proxy fetches every image as soon as anyone views
 * the thread, so an image from any host let a prompt-injected answer send what the model read
 * (a private file, the maintainers' notes) to that host in its address, with no click.
 */
export function targetProblem(
  href: string,
  scope: TextScope,
  kind: "link" | "image" = "link",
): string | undefined {
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    return `to a relative or invalid target ${JSON.stringify(href.slice(0, 60))}`;
  }
  const host = url.hostname.toLowerCase();
  if (kind === "image" && !isImageHost(host, scope.imageHosts ?? []))
    return `from a host other than GitHub's: ${host.slice(0, 60)}`;
  if (url.protocol !== "https:") return `to a ${url.protocol} URL`;
  if (url.username || url.password) return "to a URL with credentials";
  // The path as GitHub's router reads it: escapes decoded (`/issues/%32` is issue 2), slashes
  // run together (`//o/r/issues/2`).
  let path: string;
  try {
    path = decodeURIComponent(url.pathname).replace(/\/+/g, "/");
  } catch {
    return "to a URL with a malformed escape";
  }
  const issue = /^\/([^/]+)\/([^/]+)\/(?:issues|pull|discussions)\/(\d+)/.exec(path);
  const retrieved =
    !issue ||
    (`${issue[1]}/${issue[2]}`.toLowerCase() === scope.repo &&
      scope.references.has(Number(issue[3])));
  return retrieved ? undefined : `to an issue Talos did not retrieve: ${path}`;
}

/**
 * GitHub's own image hosts, and a GitHub Enterprise Server's (`media.` and its other subdomains
 * when it isolates them): where GitHub itself serves what people attach.
 */
function isImageHost(host: string, extra: readonly string[]): boolean {
  if (host === "github.com" || UPLOAD_HOSTS.has(host)) return true;
  return extra.some((own) => host === own || host.endsWith(`.${own}`));
}

// The githubusercontent.com hosts GitHub serves files from: attachments (old and private),
// avatars, raw and gist files, release assets and LFS media. Not every subdomain: camo is
// GitHub's proxy of any host's images, which fetches the original on each view its cache allows,
// so its address told a third party when the thread was read (found by a review).
const UPLOAD_HOSTS = new Set(
  [
    "user-images",
    "private-user-images",
    "cloud",
    "avatars",
    "avatars0",
    "avatars1",
    "avatars2",
    "avatars3",
    "raw",
    "gist",
    "objects",
    "release-assets",
    "media",
  ].map((name) => `${name}.githubusercontent.com`),
);

/**
 * Writes plain text as Markdown that renders exactly as that text and does nothing else: every
 * character that could open Markdown or HTML is escaped, and each word GitHub would turn into a
 * notification or a link goes into a code span, where GitHub links nothing:
 * - `@name` and `@org/team` (mentions), e-mail addresses;
 * - URLs (`scheme://`, `www.`), which GitHub autolinks;
 * - issue references (`#12`, `owner/repo#12`, `GH-12`) to anything but the numbers in scope.
 * Invisible characters go first: the text may be the parser's, which has decoded entities
 * (`&#x202E;`, `&#xE0049;`) the cleaning of the source could not see.
 * Linear in the text's length.
 */
export function renderText(source: string, scope: TextScope, place: TextPlace): string {
  const text = stripInvisible(source);
  const out: string[] = [];
  let lineStart = place.lineStart;
  // Words split at ASCII whitespace, by index (a regex's match objects would be garbage).
  for (let at = 0; at < text.length;) {
    let end = at;
    const space = isSpace(text.charCodeAt(at));
    while (end < text.length && isSpace(text.charCodeAt(end)) === space) end++;
    const piece = text.slice(at, end);
    at = end;
    if (space) {
      // A line break in a text (`&#10;`, which the parser decodes) shows as a space: written as
      // one, as written it began a line, where `# heading` or `- item` became one (found by a
      // review).
      out.push(hasLineBreak(piece) ? piece.replace(/[\n\r]/g, " ") : piece);
      continue;
    }
    out.push(
      isLive(piece, scope) ? codeSpan(piece, place.inTable) : escapeWord(piece, place, lineStart),
    );
    lineStart = false;
  }
  return out.join("");
}

function hasLineBreak(space: string): boolean {
  return space.includes("\n") || space.includes("\r");
}

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

// A word with none of these is neither live nor in need of escaping (but at a line start).
const PLAIN = /^[^<&\\`*[\]|~$>_#@:.)-]*$/;

/** Whether GitHub would make something of this word: a mention, a link or a reference. */
function isLive(word: string, scope: TextScope): boolean {
  if (PLAIN.test(word)) return false;
  if (/@[\p{L}\p{N}]/u.test(word)) return true;
  const lower = word.toLowerCase();
  if (lower.includes("://") || lower.includes("www.") || lower.includes("mailto:")) return true;
  if (/gh-\d/.test(lower)) return true;
  // Where the word starts once opening brackets and quotes are skipped, for `owner/repo#12`.
  let start = 0;
  while (start < word.length && OPENERS.includes(word[start]!)) start++;
  for (let at = word.indexOf("#"); at !== -1; at = word.indexOf("#", at + 1)) {
    if (!/\d/.test(word[at + 1] ?? "")) continue;
    if (!isAllowedReference(word, at, start, scope)) return true;
  }
  return false;
}

const OPENERS = "([{\"'“‘";

/** `#12` after a boundary, or `owner/repo#12` for this repository, with 12 in scope. */
function isAllowedReference(word: string, hash: number, start: number, scope: TextScope): boolean {
  let end = hash + 1;
  while (end < word.length && /\d/.test(word[end]!)) end++;
  if (!scope.references.has(Number(word.slice(hash + 1, end)))) return false;
  if (hash === 0 || OPENERS.includes(word[hash - 1]!)) return true;
  // Qualified: only `owner/repo#12` naming this repository, at the start of the word.
  return hash - start === scope.repo.length && word.slice(start, hash).toLowerCase() === scope.repo;
}

// Characters that open inline Markdown (or close it) wherever they are.
const ALWAYS = new Set(["\\", "`", "*", "[", "]", "|", "~", "$", ">"]);
// Characters that start a block at a line's start. `:` too: GitHub (cmark-gfm) reads a line
// like `:-:` as a table's delimiter row, no pipe needed, and the line before as its header;
// markdown-it sees a paragraph. In that table each later line is cut into cells at every pipe,
// inside code spans too, so `@octocat|x`, written as code, became a live mention (found by a
// review). A delimiter row starts with `|`, `-` or `:`, each escaped here.
const LINE_START = new Set(["#", "+", "-", "=", ":"]);

function escapeWord(word: string, place: TextPlace, lineStart: boolean): string {
  if (!lineStart && PLAIN.test(word)) return word;
  let out = "";
  // `1.` or `12)` opening a line would make an ordered list.
  let digits = 0;
  while (lineStart && /\d/.test(word[digits] ?? "")) digits++;
  for (let i = 0; i < word.length; i++) {
    const char = word[i]!;
    if (char === "<") out += "&lt;";
    else if (char === "&") out += "&amp;";
    else if (ALWAYS.has(char)) out += `\\${char}`;
    else if (char === "_" && !(isAlnum(word[i - 1]) && isAlnum(word[i + 1]))) out += "\\_";
    else if (i === 0 && lineStart && LINE_START.has(char)) out += `\\${char}`;
    else if (char === "#" && place.inHeading) out += "\\#";
    else if (digits > 0 && i === digits && (char === "." || char === ")")) out += `\\${char}`;
    else out += char;
  }
  return out;
}

function isAlnum(char: string | undefined): boolean {
  return char !== undefined && /[\p{L}\p{N}]/u.test(char);
}

/**
 * Text to embed in Markdown Talos writes: every ASCII punctuation character backslash-escaped
 * (CommonMark allows that of each), so the text reads as itself whatever it holds.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[!-/:-@[-`{-~]/g, "\\$&").replace(/\s+/g, " ");
}

/**
 * A code span that shows `content` literally: fenced with one more backtick than its longest
 * run, padded when it starts or ends with one. A Talos marker inside is broken up, so no text
 * Talos posts can hold a marker but the one it appends.
 */
export function codeSpan(content: string, inTable = false): string {
  let longest = 0;
  for (const [run] of content.matchAll(/`+/g)) longest = Math.max(longest, run.length);
  const fence = "`".repeat(longest + 1);
  const pad = content.startsWith("`") || content.endsWith("`") || content.trim() === "" ? " " : "";
  let body = breakMarkers(content.replace(/\n/g, " "));
  if (inTable) body = body.replace(/\|/g, "\\|");
  return `${fence}${pad}${body}${pad}${fence}`;
}

/**
 * A name (a path, a hunk heading, a branch) as one line, as the model reads and cites it. git
 * allows any character but NUL in a file name: a control character would start a line of its own
 * in the prompt, and an invisible one, which the prompt's fence strips, made `src/auth\u200B.ts`
 * read as `src/auth.ts`, so the model's comments on the one were placed on the other. Each is
 * written as an escape (`\x0a`, `\u{200b}`), and `\` as `\\`, so that no two names read the
 * same.
 */
export function escapeName(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === "\\") out += "\\\\";
    // C1 controls too (NEL ends a line), as are the line and paragraph separators below.
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f))
      out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (isInvisible(char) || code === 0x2028 || code === 0x2029)
      out += `\\u{${code.toString(16)}}`;
    else out += char;
  }
  return out;
}

/**
 * A name as posted and as the prompt shows it: escaped (escapeName), so that no two names read
 * the same, in a code span. The safe output strips invisible characters, and `src/auth\u200B.ts`,
 * a look-alike that GitHub gave no diff of, was listed as `src/auth.ts` beside the real one; a
 * branch named with a backtick closed the span it was shown in.
 */
export function nameSpan(name: string): string {
  return codeSpan(escapeName(name));
}

/**
 * Text from a hostile source (a key of a repository's config, say) quoted in a message: cut to
 * `max` characters first (never half a surrogate pair), on one line, as a code span, so that no
 * mention, HTML or Markdown in it is live.
 */
export function quotedCode(text: string, max = 80): string {
  const capped = text.length > max ? `${sliceWhole(text, max)}…` : text;
  return codeSpan(capped.replace(/\s+/g, " "));
}

/**
 * Breaks up every `<!-- talos:` in code (a zero-width space after `<!`), so that no comment can
 * carry a Talos marker except where Talos itself appends one.
 */
export function breakMarkers(code: string): string {
  let out = "";
  let at = 0;
  for (let open = findMarker(code, 0); open !== -1; open = findMarker(code, open + 4)) {
    out += `${code.slice(at, open)}<!\u200B--`;
    at = open + 4;
  }
  return out + code.slice(at);
}

/** Where the next `<!--` that opens a Talos marker (`<!-- talos:`, any case) starts, or -1. */
export function findMarker(text: string, from: number): number {
  for (let open = text.indexOf("<!--", from); open !== -1; open = text.indexOf("<!--", open + 4)) {
    let next = open + 4;
    while (next < text.length && /\s/.test(text[next]!)) next++;
    if (text.slice(next, next + 6).toLowerCase() === "talos:") return open;
  }
  return -1;
}

/**
 * Any text as inert Markdown, line by line: what a Markdown parse that missed its deadline, or a
 * block too long to keep, is shown as. Stops before `max` characters, so its cost is bounded by
 * what it returns, however long the text.
 */
export function renderPlainText(
  text: string,
  scope: TextScope,
  max = Infinity,
): { markdown: string; complete: boolean } {
  let markdown = "";
  for (const line of text.split("\n")) {
    const room = max - markdown.length - (markdown ? 1 : 0);
    const source = line.trim();
    // Escaping only lengthens text: more than `room` characters of source cannot fit.
    let rendered = renderText(source.slice(0, Math.max(0, room)), scope, { lineStart: true });
    if (source.length > room || rendered.length > room) {
      // Cut in proportion, then a tenth more until it fits.
      let cut = Math.floor((Math.min(source.length, room) * room) / Math.max(rendered.length, 1));
      for (; rendered.length > room && cut > 0; cut = Math.floor(cut * 0.9)) {
        rendered = renderText(source.slice(0, cut), scope, { lineStart: true });
      }
      if (rendered.length > room) rendered = "";
      return {
        markdown: markdown + (markdown && rendered ? "\n" : "") + rendered,
        complete: false,
      };
    }
    markdown += (markdown ? "\n" : "") + rendered;
  }
  return { markdown, complete: true };
}

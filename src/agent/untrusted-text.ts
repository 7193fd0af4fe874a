import { randomBytes } from "node:crypto";

// Elements GitHub renders (or drops) in Markdown. Only these are treated as markup, so that code
// such as `Array<string>` keeps its angle brackets.
const HTML_TAGS =
  "a|abbr|b|bdi|bdo|blockquote|br|caption|center|cite|code|dd|del|details|dfn|div|dl|dt|em|font|h[1-6]|hr|i|img|ins|kbd|li|mark|ol|p|picture|pre|q|rp|rt|ruby|s|samp|small|source|span|strike|strong|sub|summary|sup|table|tbody|td|tfoot|th|thead|time|tr|tt|u|ul|var|video|wbr";

const RULES: Array<[RegExp, string]> = [
  // HTML comments are invisible on GitHub: a favourite place to hide instructions.
  [/<!--[\s\S]*?(?:-->|$)/g, ""],
  [/<(script|style|template|noscript|iframe|object)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, ""],
  // Elements hidden from readers, with everything inside them.
  [
    new RegExp(
      `<(${HTML_TAGS})\\b[^>]*(?:\\bhidden\\b|display\\s*:\\s*none|visibility\\s*:\\s*hidden|aria-hidden\\s*=\\s*["']?true)[^>]*>[\\s\\S]*?<\\/\\1\\s*>`,
      "gi",
    ),
    "",
  ],
  // Images carry their text in alt and title attributes nobody reads.
  [/<img\b[^>]*>/gi, ""],
  // Markdown's own comment idiom: a link reference definition pointing nowhere.
  [/^[ \t]*\[[^\]\n]*\]:[ \t]*(?:#|<>)(?:[ \t].*)?$/gm, ""],
  [new RegExp(`</?(?:${HTML_TAGS})\\b[^>]*>`, "gi"), ""],
  // Zero-width, bidi and other invisible format characters, and Unicode tag characters
  // (U+E0000–U+E007F), which can spell out text no reader sees.
  [
    /[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF]|[\u{E0000}-\u{E007F}]/gu,
    "",
  ],
  // Control characters other than tab and newline.
  // eslint-disable-next-line no-control-regex -- matching them is the point
  [/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, ""],
  [/\n{3,}/g, "\n\n"],
];

/**
 * Removes what a reader of the GitHub page would not see but a model would read: HTML comments,
 * hidden elements, markup, invisible and bidi characters.
 */
export function cleanUntrustedText(text: string): string {
  let out = text.replace(/\r\n?/g, "\n");
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement);
  return out.trim();
}

/** Wraps untrusted text in delimiters its author cannot guess or close. */
export interface Fence {
  /** The tag name, different for every run, that the system prompt names. */
  readonly tag: string;
  wrap(source: string, text: string): string;
}

export function createFence(
  scrub: (text: string) => string,
  random = () => randomBytes(6).toString("hex"),
): Fence {
  const tag = `untrusted-${random()}`;
  const strip = (text: string) => scrub(cleanUntrustedText(text)).split(tag).join("");
  return {
    tag,
    wrap(source, text) {
      const label = strip(source)
        .replace(/["<>\n]/g, " ")
        .slice(0, 200);
      return `<${tag} source="${label}">\n${strip(text)}\n</${tag}>`;
    },
  };
}

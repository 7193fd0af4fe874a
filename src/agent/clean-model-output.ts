// GitHub rejects comments over 65,536 characters; leave room for the marker and notes.
const MAX_LENGTH = 60_000;

/**
 * Makes model output safe to post: no `@mentions` (which would notify arbitrary users or teams),
 * no raw HTML (which could hide text, or forge a Talos marker), no invisible characters. Code
 * spans and fenced blocks are left as they are, since GitHub renders them literally.
 */
export function cleanModelOutput(text: string): string {
  const parts = text
    .replace(/\r\n?/g, "\n")
    .replace(
      /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]|[\u{E0000}-\u{E007F}]/gu,
      "",
    )
    .split(/(^(?:```|~~~)[^\n]*\n[\s\S]*?(?:^(?:```|~~~)[ \t]*$|(?![\s\S]))|`[^`\n]+`)/m);
  const cleaned = parts.map((part, index) => (index % 2 === 1 ? part : cleanProse(part))).join("");
  const trimmed = cleaned.trim();
  return trimmed.length > MAX_LENGTH ? `${trimmed.slice(0, MAX_LENGTH)}\n\n…(truncated)` : trimmed;
}

function cleanProse(text: string): string {
  return (
    text
      // Escaping `<` turns every tag, comment and marker into visible text.
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      // A `>` that opens a line (or follows another) is a Markdown quote; any other is escaped.
      .replace(/(?<!^[ \t]*(?:>[ \t]*)*)>/gm, "&gt;")
      // A mention inside a code span notifies nobody; e-mail addresses are not mentions.
      .replace(
        /(^|[^\w`/.-])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\/[A-Za-z0-9_.-]+)?)/g,
        "$1`@$2`",
      )
  );
}

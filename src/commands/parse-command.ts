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

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const QUOTE = /^ {0,3}>/;
// Markdown treats four spaces of indentation as a code block; allow up to three.
const LEAD = "^ {0,3}";

/**
 * Finds the first command in a comment: a line that starts with `/talos <command> [args]` or
 * `@<slug> <command> [args]`, case-insensitively. Lines inside fenced code blocks, `>` quotes
 * and HTML comments are not commands: they quote or hide text rather than address the bot.
 */
export function parseCommand(
  body: string,
  options: ParseCommandOptions = {},
): ParsedCommand | null {
  const prefixes = ["/talos"];
  if (options.slug) prefixes.push(`@${escapeRegExp(options.slug)}(?:\\[bot\\])?`);
  const pattern = new RegExp(`${LEAD}(?:${prefixes.join("|")})(?=\\s|$)(?:\\s+(\\S+))?(.*)$`, "i");
  let fence: string | undefined;
  for (const line of stripHtmlComments(body).split(/\r?\n/)) {
    const fenceMatch = FENCE.exec(line);
    if (fenceMatch?.[1]) {
      const marker = fenceMatch[1];
      if (!fence) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      continue;
    }
    if (fence || QUOTE.test(line)) continue;
    const match = pattern.exec(line);
    if (match) {
      const name = (match[1] ?? "help").toLowerCase().replace(/[.,:;!?]+$/, "");
      return { name, args: (match[2] ?? "").trim() };
    }
  }
  return null;
}

function stripHtmlComments(text: string): string {
  return text.replace(/<!--[\s\S]*?(-->|$)/g, "");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

import { z } from "zod";
import { cleanUntrustedText } from "../agent/untrusted-text.js";
import { clipResult, MAX_RESULT_CHARS } from "./clip-result.js";
import { defineTool } from "./define-tool.js";

export const listCommentsTool = defineTool({
  name: "list_comments",
  description:
    "Read the most recent comments of an issue or pull request of this repository, newest first. Says how many older comments were left out.",
  schema: z.object({
    number: z.number().int().positive().describe("the issue or pull request number"),
    limit: z.number().int().min(1).max(50).default(20).describe("how many of the latest comments"),
  }),
  async execute({ number, limit }, { github }) {
    // Each body as a reader sees it, cleaned once: weighed against the room as shown, then
    // shown. A comment hidden in an HTML comment took the room of the others, and one left
    // unclosed hid them all.
    const cleaned = new Map<string, string>();
    const clean = (body: string) => {
      let text = cleaned.get(body);
      if (text === undefined) cleaned.set(body, (text = cleanUntrustedText(body)));
      return text;
    };
    // Only the newest pages are read, up to what the result can hold.
    const { comments, total, omitted } = await github.listRecentComments(number, {
      maxChars: MAX_RESULT_CHARS,
      maxComments: limit,
      weigh: (body) => clean(body).length,
    });
    if (comments.length === 0) return `#${number} has no comments.`;
    const header =
      omitted > 0
        ? `Newest first: the latest ${comments.length} of ${total} comments; ${omitted} older comment(s) left out.\n\n`
        : `Newest first: all ${total} comment(s).\n\n`;
    // Newest first, so that a result cut to fit the prompt (at its end, here and in the fence)
    // loses the oldest comments, not the newest the tool is asked for.
    return clipResult(
      header +
        [...comments]
          .reverse()
          .map((c) => `--- ${c.author ?? "unknown"} at ${c.createdAt}:\n${clean(c.body)}`)
          .join("\n\n"),
    );
  },
});

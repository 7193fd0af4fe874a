import { z } from "zod";
import { clipResult } from "./clip-result.js";
import { defineTool } from "./define-tool.js";

export const listCommentsTool = defineTool({
  name: "list_comments",
  description:
    "Read the most recent comments of an issue or pull request of this repository, oldest first.",
  schema: z.object({
    number: z.number().int().positive().describe("the issue or pull request number"),
    limit: z.number().int().min(1).max(50).default(20).describe("how many of the latest comments"),
  }),
  async execute({ number, limit }, { github }) {
    const comments = (await github.listComments(number)).slice(-limit);
    if (comments.length === 0) return `#${number} has no comments.`;
    return clipResult(
      comments
        .map((c) => `--- ${c.author ?? "unknown"} at ${c.createdAt}:\n${c.body}`)
        .join("\n\n"),
    );
  },
});

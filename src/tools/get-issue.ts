import { z } from "zod";
import { cleanUntrustedText } from "../agent/untrusted-text.js";
import { clipResult } from "./clip-result.js";
import { defineTool } from "./define-tool.js";

export const getIssueTool = defineTool({
  name: "get_issue",
  description:
    "Read an issue or pull request of this repository: title, state, author, labels and description.",
  schema: z.object({
    number: z.number().int().positive().describe("the issue or pull request number"),
  }),
  async execute({ number }, { github }) {
    const issue = await github.getIssue(number);
    return clipResult(
      [
        `${issue.isPullRequest ? "Pull request" : "Issue"} #${issue.number}: ${issue.title}`,
        `State: ${issue.state}. Author: ${issue.author ?? "unknown"}. Labels: ${issue.labels.join(", ") || "none"}.`,
        "",
        // The body as a reader sees it; the title and labels are shown as plain text.
        cleanUntrustedText(issue.body ?? "") || "(no description)",
      ].join("\n"),
    );
  },
});

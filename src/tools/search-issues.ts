import { z } from "zod";
import { defineTool } from "./define-tool.js";

export const searchIssuesTool = defineTool({
  name: "search_issues",
  description:
    "Search the issues and pull requests of this repository (GitHub search syntax, e.g. `crash label:bug`).",
  schema: z.object({
    query: z.string().min(1).max(200),
    state: z.enum(["open", "closed", "all"]).default("all"),
    limit: z.number().int().min(1).max(10).default(5),
  }),
  async execute({ query, state, limit }, { github }) {
    const results = await github.searchIssues(query, {
      limit,
      ...(state === "all" ? {} : { state }),
    });
    if (results.length === 0) return "No matching issues or pull requests.";
    return results
      .map((r) => `#${r.number} [${r.state}${r.isPullRequest ? ", pull request" : ""}] ${r.title}`)
      .join("\n");
  },
});

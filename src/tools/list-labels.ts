import { z } from "zod";
import { clipResult } from "./clip-result.js";
import { defineTool } from "./define-tool.js";

export const listLabelsTool = defineTool({
  name: "list_labels",
  description: "List the labels that exist in this repository, with their descriptions.",
  schema: z.object({}),
  async execute(_args, { github }) {
    const labels = await github.listLabels();
    if (labels.length === 0) return "This repository has no labels.";
    // GitHub sets no limit on how many labels a repository has.
    return clipResult(
      labels.map((l) => (l.description ? `${l.name}: ${l.description}` : l.name)).join("\n"),
    );
  },
});

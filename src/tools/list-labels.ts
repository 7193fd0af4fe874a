import { z } from "zod";
import { MAX_RESULT_CHARS } from "./clip-result.js";
import { defineTool } from "./define-tool.js";
import { sliceWhole } from "../slice-whole.js";

export const listLabelsTool = defineTool({
  name: "list_labels",
  description: "List the labels that exist in this repository, with their descriptions.",
  schema: z.object({}),
  async execute(_args, { github }) {
    // GitHub sets no limit on how many labels a repository has: read no more than is shown.
    const labels = await github.listLabels({ maxChars: MAX_RESULT_CHARS });
    if (labels.length === 0) return "This repository has no labels.";
    const text = labels
      .map((l) => (l.description ? `${l.name}: ${l.description}` : l.name))
      .join("\n");
    if (text.length <= MAX_RESULT_CHARS) return text;
    // Not "in all", as clipResult says: the pages past the limit were not read.
    return `${sliceWhole(text, MAX_RESULT_CHARS)}\n…(cut: the repository has more labels than fit)`;
  },
});

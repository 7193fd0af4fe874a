import { z } from "zod";
import { labelChars } from "../github/create-repo-client.js";
import { MAX_RESULT_CHARS } from "./clip-result.js";
import { defineTool } from "./define-tool.js";
import { labelList } from "./label-as-seen.js";

export const listLabelsTool = defineTool({
  name: "list_labels",
  description: "List the labels that exist in this repository, with their descriptions.",
  schema: z.object({}),
  async execute(_args, { github }) {
    // GitHub sets no limit on how many labels a repository has: read no more than is shown.
    const labels = await github.listLabels({ maxChars: MAX_RESULT_CHARS });
    if (labels.length === 0) return "This repository has no labels.";
    // Each label as triage shows it: a tool result is fenced as it is, not cleaned again.
    const { text, complete } = labelList(labels, MAX_RESULT_CHARS);
    // listLabels stops after the page whose labels, as GitHub sends them, pass the limit: cleaned
    // shorter, they may all fit here, with more pages left unread.
    const sent = labels.reduce((sum, l, i) => sum + (i > 0 ? 1 : 0) + labelChars(l), 0);
    if (complete && sent <= MAX_RESULT_CHARS) return text;
    // Not "in all", as clipResult says: the pages past the limit were not read.
    return `${text}\n…(cut: the repository has more labels than fit)`;
  },
});

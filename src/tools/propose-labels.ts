import { z } from "zod";
import type { LabelInfo } from "../github/create-repo-client.js";
import { defineTool, type Tool } from "./define-tool.js";

export interface LabelProposal {
  /** Label names exactly as they exist in the repository. */
  labels: string[];
  reason: string;
}

/**
 * The triage flow's one write tool. It writes nothing itself: it records a proposal, and refuses
 * any label outside `allowed` (the repository's existing labels, narrowed by the config), so no
 * text in an issue can get a label invented or applied that the maintainers did not allow.
 */
export function createProposeLabelsTool(
  allowed: readonly LabelInfo[],
  record: (proposal: LabelProposal) => void,
): Tool {
  const byName = new Map(allowed.map((label) => [label.name.toLowerCase(), label.name]));
  return defineTool({
    name: "propose_labels",
    description: "Propose labels for the new issue, chosen only from the labels you were given.",
    schema: z.object({
      labels: z.array(z.string().max(100)).max(10).describe("label names from the list, or none"),
      reason: z.string().max(500).describe("one sentence on why"),
    }),
    async execute({ labels, reason }) {
      const refused = labels.filter((label) => !byName.has(label.toLowerCase()));
      if (refused.length > 0) {
        return `Refused: ${refused.map((l) => JSON.stringify(l)).join(", ")} ${
          refused.length === 1 ? "is" : "are"
        } not among the labels you may propose. Nothing was recorded. Choose only from: ${[...byName.values()].join(", ")}.`;
      }
      const names = [...new Set(labels.map((label) => byName.get(label.toLowerCase()) ?? label))];
      record({ labels: names, reason });
      return names.length > 0 ? `Recorded: ${names.join(", ")}.` : "Recorded: no labels.";
    },
  });
}

import { z } from "zod";
import type { LabelInfo } from "../github/create-repo-client.js";
import { clipResult } from "./clip-result.js";
import { defineTool, type Tool } from "./define-tool.js";

export interface LabelProposal {
  /** Label names exactly as they exist in the repository. */
  labels: string[];
  /** What the model proposed that is not among the allowed labels, as it wrote it. */
  dropped: string[];
  reason: string;
}

/**
 * The triage flow's one write tool. It writes nothing itself: it records a proposal of labels
 * from `allowed` (the repository's existing labels, narrowed by the config) and drops any other,
 * telling the model which, so no text in an issue can get a label invented or applied that the
 * maintainers did not allow, and one bad label does not cost the good ones.
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
      const dropped = [...new Set(labels.filter((label) => !byName.has(label.toLowerCase())))];
      const names = [...new Set(labels.flatMap((label) => byName.get(label.toLowerCase()) ?? []))];
      record({ labels: names, dropped, reason });
      const recorded = names.length > 0 ? `Recorded: ${names.join(", ")}.` : "Recorded: no labels.";
      if (dropped.length === 0) return recorded;
      // The allowed labels are the repository's, as many as it has.
      return clipResult(
        `${recorded} Dropped: ${dropped.map((l) => JSON.stringify(l)).join(", ")} ${
          dropped.length === 1 ? "is" : "are"
        } not among the labels you may propose. Choose only from: ${[...byName.values()].join(", ")}.`,
      );
    },
  });
}

import { z } from "zod";
import type { LabelInfo } from "../github/create-repo-client.js";
import { clipResult } from "./clip-result.js";
import { defineTool, type Tool } from "./define-tool.js";
import { labelNameAsSeen } from "./label-as-seen.js";

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
  // The model reads each name as labelNameAsSeen gives it, a joiner in an emoji gone: what it
  // writes is matched that way too, or such a label could never be proposed.
  const bySeen = new Map<string, string[]>();
  for (const { name } of allowed) {
    const seen = labelNameAsSeen(name).toLowerCase();
    const names = bySeen.get(seen);
    if (names) names.push(name);
    else bySeen.set(seen, [name]);
  }
  // A name written exactly wins, as before; else the one label that reads so, or the several
  // (`bug` and `bug` with a zero-width space read the same), between which no guess is made.
  const find = (label: string): string | string[] | undefined => {
    const exact = byName.get(label.toLowerCase());
    if (exact !== undefined) return exact;
    const names = bySeen.get(labelNameAsSeen(label).toLowerCase());
    return names?.length === 1 ? names[0] : names;
  };
  return defineTool({
    name: "propose_labels",
    description: "Propose labels for the new issue, chosen only from the labels you were given.",
    schema: z.object({
      labels: z.array(z.string().max(100)).max(10).describe("label names from the list, or none"),
      reason: z.string().max(500).describe("one sentence on why"),
    }),
    async execute({ labels, reason }) {
      const found = labels.map((label) => ({ label, match: find(label) }));
      const unknown = [...new Set(found.flatMap((f) => (f.match === undefined ? f.label : [])))];
      const ambiguous = [...new Set(found.flatMap((f) => (Array.isArray(f.match) ? f.label : [])))];
      const names = [
        ...new Set(found.flatMap((f) => (typeof f.match === "string" ? f.match : []))),
      ];
      record({ labels: names, dropped: [...unknown, ...ambiguous], reason });
      const quote = (dropped: string[]) => dropped.map((l) => JSON.stringify(l)).join(", ");
      const be = (dropped: string[]) => (dropped.length === 1 ? "is" : "are");
      const parts = [names.length > 0 ? `Recorded: ${names.join(", ")}.` : "Recorded: no labels."];
      if (ambiguous.length > 0)
        parts.push(
          `Dropped: ${quote(ambiguous)} ${be(ambiguous)} the name of more than one label as you read them, so which is meant cannot be told.`,
        );
      if (unknown.length > 0) {
        const choices = [...new Set(allowed.map((label) => labelNameAsSeen(label.name)))];
        parts.push(
          `Dropped: ${quote(unknown)} ${be(unknown)} not among the labels you may propose. Choose only from: ${choices.join(", ")}.`,
        );
      }
      // The allowed labels are the repository's, as many as it has.
      return parts.length === 1 ? parts[0]! : clipResult(parts.join(" "));
    },
  });
}

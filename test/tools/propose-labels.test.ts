import { describe, expect, it } from "vitest";
import { MAX_RESULT_CHARS } from "../../src/tools/clip-result.js";
import { createProposeLabelsTool, type LabelProposal } from "../../src/tools/propose-labels.js";
import { createFakeRepoClient } from "../helpers/fake-repo-client.js";
import { captureLogs } from "../helpers/test-app.js";

describe("propose_labels", () => {
  it("names the allowed labels after a dropped one within the tool result limit, however many exist", async () => {
    const allowed = Array.from({ length: 2_000 }, (_, i) => ({
      name: `area/component-${String(i).padStart(4, "0")}`.padEnd(50, "x"),
      description: null,
    }));
    const proposals: LabelProposal[] = [];
    const tool = createProposeLabelsTool(allowed, (p) => proposals.push(p));
    const { log } = await captureLogs("warn");

    const result = await tool.execute(
      tool.schema.parse({ labels: [allowed[7]!.name, "security-approved"], reason: "r" }),
      { github: createFakeRepoClient(), log },
    );

    expect(proposals).toEqual([
      { labels: [allowed[7]!.name], dropped: ["security-approved"], reason: "r" },
    ]);
    expect(
      result.startsWith(`Recorded: ${allowed[7]!.name}. Dropped: "security-approved" is`),
    ).toBe(true);
    expect(result.length).toBeLessThanOrEqual(MAX_RESULT_CHARS + 100);
  });

  it("accepts a name as the model reads it, never guessing between labels that read the same", async () => {
    const allowed = [
      { name: "🧑\u200D💻 dx", description: null },
      { name: "bug", description: null },
      { name: "bug\u200B", description: null },
      { name: "a\u200Bb", description: null },
      { name: "a\u200Cb", description: null },
    ];
    const proposals: LabelProposal[] = [];
    const tool = createProposeLabelsTool(allowed, (p) => proposals.push(p));
    const { log } = await captureLogs("warn");

    const result = await tool.execute(
      tool.schema.parse({ labels: ["🧑💻 DX", "bug", "ab"], reason: "r" }),
      { github: createFakeRepoClient(), log },
    );

    // The joiner the model never sees is not asked of it; a name written exactly wins, as it
    // matched before; "ab" names two labels, and neither is picked.
    expect(proposals).toEqual([{ labels: ["🧑\u200D💻 dx", "bug"], dropped: ["ab"], reason: "r" }]);
    expect(result).toContain('Dropped: "ab" is the name of more than one label');
  });
});

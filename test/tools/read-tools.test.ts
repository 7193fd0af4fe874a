import { describe, expect, it } from "vitest";
import { MAX_RESULT_CHARS } from "../../src/tools/clip-result.js";
import { listLabelsTool } from "../../src/tools/list-labels.js";
import { createFakeRepoClient } from "../helpers/fake-repo-client.js";
import { captureLogs } from "../helpers/test-app.js";

describe("read tool results", () => {
  it("list_labels cuts a repository's thousands of labels to the tool result limit, saying so", async () => {
    // GitHub allows label names of 50 characters and descriptions of 100, and no limit on count.
    const labels = Array.from({ length: 2_000 }, (_, i) => ({
      name: `area/component-${String(i).padStart(4, "0")}`.padEnd(50, "x"),
      description: "d".repeat(100),
    }));
    const github = createFakeRepoClient({ labels });
    const { log } = await captureLogs("warn");

    const result = await listLabelsTool.execute({}, { github, log });

    expect(result.length).toBeLessThanOrEqual(MAX_RESULT_CHARS + 100);
    expect(result.startsWith(`${labels[0]!.name}: ${labels[0]!.description}\n`)).toBe(true);
    expect(result).toContain("(cut: ");
  });
});

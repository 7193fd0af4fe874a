import { beforeAll, describe, expect, it } from "vitest";
import { checkSafeMarkdown } from "../../src/markdown/check-safe-markdown.js";
import { runHostileThread } from "../helpers/hostile-server.js";
import { buildDist } from "../helpers/server-process.js";

/**
 * The security issue's done-when, against `npm start`'s server: a 65,536-character comment of
 * hostile Markdown and HTML, then `/talos summarize`. How fast `/healthz` answered meanwhile is
 * reported by `npm run bench -- hostile`; here, that it always answered, and what was posted.
 */
describe("hostile text in the started server", () => {
  beforeAll(() => buildDist());

  it.each([
    ["a hostile comment", false],
    ["a hostile comment with a /talos help line", true],
  ])(
    "%s, then /talos summarize: the summary comes, safe, and /healthz answers throughout",
    async (_name, helpLine) => {
      const result = await runHostileThread({ helpLine });

      expect(result.statuses).toEqual([200, 200]);
      expect(result.healthFailures).toBe(0);
      expect(result.health.length).toBeGreaterThan(2);
      const summary = result.summary ?? "";
      expect(summary).toMatch(/^\*\*Summary of this thread\*\*[\s\S]*\n\n<!-- talos:summary -->$/);
      const text = summary.slice(0, -"<!-- talos:summary -->".length);
      expect(checkSafeMarkdown(text, { repo: "Codertocat/Hello-World", references: [1] })).toEqual(
        [],
      );
      expect(text).not.toContain("@octocat ");
      if (helpLine) {
        // Parsed in a worker: answered, or (on a machine too slow for the deadline) plain text.
        const missed = result.output.includes("missed its deadline");
        expect(result.helpAnswered || missed).toBe(true);
      }
    },
    120_000,
  );
});

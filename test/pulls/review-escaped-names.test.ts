// A review's inline comment on a file whose name escapeName writes escaped: the prompt shows the
// name so, the model cites it so, and the comment goes on that file. The prompt's names had been
// escaped another way than the answer is read back (a line separator: every comment on the file
// dropped), and a run of presentation selectors was cut to one by the prompt's cleaning, which
// read as another file's name.
import { describe, expect, it } from "vitest";
import type { PullRequestFile } from "../../src/pulls/pull-request-file.js";
import { runReview } from "../helpers/run-review.js";

const added = (filename: string): PullRequestFile => ({
  filename,
  status: "added",
  additions: 1,
  deletions: 0,
  changes: 1,
  patch: "@@ -0,0 +1 @@\n+eval(input);",
});

const comment = (path: string) => ({ path, line: 1, severity: "major", body: "Check this." });

describe("a comment on a file whose name is shown escaped", () => {
  // The zero-width space is the control: escaped alike before the fix.
  it.each([
    ["a zero-width space", "src/a\u200Bb.ts", "src/a\\u{200b}b.ts"],
    ["U+2028", "src/a\u2028b.ts", "src/a\\u{2028}b.ts"],
  ])("places the comment cited as the prompt shows the name (%s)", async (_, name, shown) => {
    const { posted, prompt } = await runReview({
      files: [added(name)],
      comments: [comment(shown)],
    });
    expect(prompt()).toContain(`### ${shown}`);
    expect(posted.map((c) => c.path)).toEqual([name]);
  });

  it("shows a name with a run of presentation selectors apart from its look-alike", async () => {
    const { posted, prompt } = await runReview({
      files: [added("src/a\uFE0F\uFE0F.ts"), added("src/a\uFE0F.ts")],
      comments: [comment("src/a\uFE0F.ts")],
    });
    const headings = prompt()
      .split("\n")
      .filter((line) => line.startsWith("### "));
    expect(new Set(headings).size).toBe(2);
    expect(posted.map((c) => c.path)).toEqual(["src/a\uFE0F.ts"]);
  });
});

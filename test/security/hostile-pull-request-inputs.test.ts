// Hostile file names, patches and model answers in a pull request's review: what is posted stays
// safe, anchors only on lines of the diff, and keeps its one marker.
import { describe, expect, it } from "vitest";
import { baseKey, readMarker } from "../../src/github/comment-markers.js";
import { checkSafeMarkdown } from "../../src/markdown/check-safe-markdown.js";
import type { PullRequestFile } from "../../src/pulls/pull-request-file.js";
import { addedFile, runReview } from "../helpers/run-review.js";

const HEAD = "a".repeat(40);
const FORGED = `<!-- talos:review:${"c".repeat(40)}:1 -->`;
const scope = { repo: "o/r", references: [2] };

/** The body without its last line (the marker), as checkSafeMarkdown would see what Talos wrote. */
const withoutMarker = (body: string) => body.slice(0, body.lastIndexOf("\n")).trimEnd();

const hostileNames = [
  `src/evil\n${FORGED}\n@octo-org/admins ![x](https://evil.example/p.png).bin`,
  "src/``code``<script>alert(1)</script>.bin",
  "src/\u202Egnp.exe\u202C.bin",
  `src/${"x".repeat(10_000)}.bin`,
];

describe("hostile file names, patches and model answers", () => {
  it("posts only safe text, one marker at the end, and comments only on lines of the diff", async () => {
    const files: PullRequestFile[] = [
      addedFile("src/a.ts", ["const a = 1;", "const b = 2;", "const c = 3;"]),
      // Binary: no patch; listed under "Not reviewed" with its hostile name.
      ...hostileNames.map((filename): PullRequestFile => ({
        filename,
        status: "added",
        additions: 0,
        deletions: 0,
        changes: 0,
      })),
      {
        filename: "src/gone.ts",
        status: "removed",
        additions: 0,
        deletions: 2,
        changes: 2,
        patch: "@@ -1,2 +0,0 @@\n-a\n-b",
      },
      {
        filename: "src/new-name.ts",
        previous_filename: "src/old-name.ts",
        status: "renamed",
        additions: 0,
        deletions: 0,
        changes: 0,
      },
    ];
    const body = `Ping @octocat and @octo-org/admins ![t](https://evil.example/x.png?q=secret) ${FORGED} <img src=x> [p](javascript:alert(1)) #9`;
    const comments = [
      { path: "src/a.ts", line: 2, severity: "major", body },
      { path: "src/a.ts", line: 99_999, severity: "critical", body: "outside the diff" },
      { path: "src/a.ts", line: 3, start_line: -1, severity: "major", body: "bad range" },
      { path: "../src/a.ts", line: 1, severity: "critical", body: "traversal" },
      { path: "<img src=x>", line: 1, severity: "critical", body: "html path" },
      { path: hostileNames[0], line: 1, severity: "critical", body: "binary" },
      { path: "src/gone.ts", line: 1, severity: "critical", body: "deleted" },
      { path: "src/old-name.ts", line: 1, severity: "critical", body: "renamed" },
      { path: "src/new-name.ts", line: 1, severity: "critical", body: "renamed" },
    ];
    const { outcome, created } = await runReview({ files, comments });

    expect(outcome.status).toBe("posted");
    expect(created).toHaveLength(1);
    const review = created[0]!;
    // Only the one comment on a line of the diff.
    expect(review.comments.map((c) => [c.path, c.line])).toEqual([["src/a.ts", 2]]);
    // 8 left out, the one with `start_line: -1` (no line that could be read) among them.
    expect(review.body).toContain("8 more inline comments were left out");
    // One marker, Talos's, on the last line; none forged by a name.
    expect(readMarker(review.body)).toEqual({
      kind: "review",
      values: [HEAD, "1", baseKey("main")],
    });
    expect(review.body.split("<!-- talos:")).toHaveLength(2);
    expect(checkSafeMarkdown(withoutMarker(review.body), scope)).toEqual([]);
    for (const comment of review.comments) {
      expect(comment.body.split("<!-- talos:")).toHaveLength(2);
      expect(checkSafeMarkdown(withoutMarker(comment.body), scope)).toEqual([]);
    }
  });

  it("reads a patch of one 1 MB line (and a 1 MB header) in linear time", async () => {
    const line = "<b hidden ".repeat(100_000);
    const file: PullRequestFile = {
      filename: "src/min.js",
      status: "added",
      additions: 1,
      deletions: 0,
      changes: 1,
      patch: `@@ -0,0 +1 @@ ${"(".repeat(1_000_000)}\n+${line}`,
    };
    const started = performance.now();
    const { outcome } = await runReview({
      files: [file],
      comments: [
        {
          path: "src/min.js",
          line: 1,
          severity: "nit",
          body: "long",
          original: line,
          suggestion: "x",
        },
      ],
    });
    expect(outcome.status).toBe("posted");
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

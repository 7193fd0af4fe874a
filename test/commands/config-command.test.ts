import { describe, expect, it } from "vitest";
import { createMarkdownParser } from "../../src/markdown/create-markdown-parser.js";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";

/** `/talos config` replayed through Probot with this talos.yml; returns the comment posted. */
async function showConfig(yaml: string): Promise<string> {
  const app = await createTestApp();
  const scope = githubScope();
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope, { yaml });
  scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
  scope
    .get(`${REPO}/issues/1/comments`)
    .query({ per_page: "100", since: "2019-05-15T15:20:21Z" })
    .reply(200, []);
  const posted: string[] = [];
  scope
    .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
    .reply(201, { id: 501 });
  const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
  payload.comment.body = "/talos config";

  await app.probot.receive({ id: "config-fence", name: "issue_comment", payload } as never);

  expect(scope.pendingMocks()).toEqual([]);
  expect(posted).toHaveLength(1);
  return posted[0]!;
}

describe("/talos config", () => {
  it("keeps values made of backtick and tilde runs inside the one code block", async () => {
    const yaml = [
      "triage:",
      "  labels:",
      '    - "```"',
      '    - "a\\n```\\nb"',
      '    - "~~~~~"',
      "review:",
      "  ignore:",
      '    - "``````/**"',
      "pull_requests:",
      '  ignore_title: "^```$"',
    ].join("\n");

    const body = await showConfig(yaml);

    const lines = body.split("\n");
    const open = lines.findIndex((line) => /^`{3,}yaml$/.test(line));
    const fence = lines[open]!.replace("yaml", "");
    const close = lines.indexOf(fence, open + 1);
    const block = lines.slice(open + 1, close).join("\n");
    expect(fence.length).toBeGreaterThan(6);
    expect(block).toContain("``````/**");
    expect(block).toContain("~~~~~");
    expect(block).toContain("^```$");
    expect(block).toMatch(/ {6}```\n/);
    expect(lines.slice(close + 1).join("\n")).toContain("The file has no problems.");
  });

  it("lists each problem as one item, however many lines the misspelt key holds", async () => {
    const yaml = ['"a\\n```\\nb": 1', "review:", "  ignore: [7]"].join("\n");

    const body = await showConfig(yaml);

    const problems = body.slice(body.indexOf("**Problems**")).split("\n");
    expect(problems.filter((line) => line.startsWith("- "))).toEqual([
      expect.stringContaining("is not a known setting (ignored)"),
      "- .github/talos.yml: `review.ignore[0]` (`7`) is invalid; dropped",
      expect.stringContaining("`review.ignore` has a mistake"),
    ]);
    expect(problems.some((line) => /^\s*`{3}/.test(line))).toBe(false);
  });

  it("shows a hostile misspelt key as one capped code span, with nothing escaping it", async () => {
    const hostile = "a`b<!-- x -->@everyone";
    const multiline = "c\n<!-- y -->\n@octocat ```";
    const long = `${"k".repeat(10_000)}@everyone`;
    // Cut before the emoji, not between the halves of its surrogate pair.
    const astral = `${"e".repeat(79)}\u{1F600}@everyone`;
    const yaml = [hostile, multiline, long, astral]
      .map((key) => `? ${JSON.stringify(key)}\n: 1`)
      .join("\n");

    const body = await showConfig(yaml);

    const problems = body
      .slice(body.indexOf("**Problems**"))
      .split("\n")
      .filter((line) => line.startsWith("- "));
    expect(problems).toEqual([
      "- .github/talos.yml: ``a`b<!-- x -->@everyone`` is not a known setting (ignored)",
      "- .github/talos.yml: ```` c <!-- y --> @octocat ``` ```` is not a known setting (ignored)",
      `- .github/talos.yml: \`${"k".repeat(80)}…\` is not a known setting (ignored)`,
      `- .github/talos.yml: \`${"e".repeat(79)}…\` is not a known setting (ignored)`,
    ]);
    // Rendered as GitHub would: the mentions and the HTML comments are only ever code.
    const inline = createMarkdownParser()
      .parse(body, {})
      .flatMap((token) => token.children ?? []);
    const live = inline.filter(
      (token) => token.type !== "code_inline" && /@|<!--/.test(token.content),
    );
    expect(live).toEqual([]);
    expect(inline.filter((token) => token.type === "html_inline")).toEqual([]);
  });

  it("shows hostile invalid list items as capped code spans", async () => {
    const yaml = [
      "review:",
      "  ignore:",
      '    - { "<!-- z -->`@everyone": 1 }',
      `    - ${JSON.stringify(`${"x".repeat(300)}@everyone`)}`,
    ].join("\n");

    const body = await showConfig(yaml);

    const problems = body
      .slice(body.indexOf("**Problems**"))
      .split("\n")
      .filter((line) => line.startsWith("- "));
    expect(problems.slice(0, 2)).toEqual([
      `- .github/talos.yml: \`review.ignore[1]\` (\`"${"x".repeat(79)}…\`) is invalid; dropped`,
      '- .github/talos.yml: `review.ignore[0]` (``{"<!-- z -->`@everyone":1}``) is invalid; dropped',
    ]);
    const inline = createMarkdownParser()
      .parse(body, {})
      .flatMap((token) => token.children ?? []);
    expect(
      inline.filter((token) => token.type !== "code_inline" && /@|<!--/.test(token.content)),
    ).toEqual([]);
  });

  const EVERY_TITLE =
    "**Note:** `pull_requests.ignore_title` matches every title, so no pull request gets a summary or a review on push. To ignore none, use a pattern no title matches, such as `^$`.";

  it.each(['""', '".*"', '"^"', '"(?i)"'])(
    "says when ignore_title %s matches every title, which switches pull-request automation off",
    async (pattern) => {
      const body = await showConfig(`pull_requests:\n  ignore_title: ${pattern}\n`);
      expect(body).toContain("The file has no problems.");
      expect(body).toContain(EVERY_TITLE);
    },
  );

  it.each(['"^$"', '"^wip"', "'\\[skip'"])(
    "says nothing of an ignore_title %s that leaves titles out",
    async (pattern) => {
      const body = await showConfig(`pull_requests:\n  ignore_title: ${pattern}\n`);
      expect(body).toContain("The file has no problems.");
      expect(body).not.toContain("matches every title");
    },
  );
});

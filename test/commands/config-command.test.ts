import { describe, expect, it } from "vitest";
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
      "- .github/talos.yml: `review.ignore[0]` (7) is invalid; dropped",
      expect.stringContaining("`review.ignore` has a mistake"),
    ]);
    expect(problems.some((line) => /^\s*`{3}/.test(line))).toBe(false);
  });
});

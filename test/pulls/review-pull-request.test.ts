import { AIMessage } from "@langchain/core/messages";
import { expect, it } from "vitest";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
const HEAD_1 = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
// "Update branch": a merge of master into the branch, so HEAD_1 is its ancestor.
const HEAD_2 = "2b5c1a7e0f3d4c6b8a9e1f2d3c4b5a6978877665";
const BOT = "talos-bot[bot]";
const PUSH = loadFixture<{ files: any[] }>("pulls/compare.push.json");
const SMALL = loadFixture<any[]>("pulls/files.small.json");

// The PR's own diff at HEAD_2 (against the new merge base): its first commit's changes plus the
// push's `localStorage` line (new line 6); nothing master brought in.
const PR_FILES = [
  {
    ...SMALL[0],
    additions: 4,
    deletions: 1,
    changes: 5,
    patch:
      "@@ -1,4 +1,7 @@\n const themes = ['light'];\n-export function setTheme(name) {\n+export function setTheme(name, store) {\n+  if (!themes.includes(name)) return;\n+  store.theme = name;\n   document.body.className = name;\n+  localStorage.setItem('theme', name);\n }",
  },
  ...SMALL.slice(1),
];
// HEAD_1...HEAD_2 is "ahead" and carries master's new file along with the PR's line.
const UPSTREAM = {
  filename: "lib/upstream.js",
  status: "added",
  additions: 2,
  deletions: 0,
  changes: 2,
  patch: "@@ -0,0 +1,2 @@\n+export const x = 1;\n+export const y = 2;",
};

it("after 'Update branch' (base merged in), a push review keeps the PR's inline comment and leaves master's changes out", async () => {
  const model = scriptedModel().respond(
    new AIMessage(
      JSON.stringify({
        verdict: "ok",
        comments: [
          { path: "src/theme.js", line: 6, severity: "minor", body: "On the PR's own change." },
          { path: "lib/upstream.js", line: 1, severity: "major", body: "On master's code." },
        ],
      }),
    ),
  );
  const app = await createTestApp({ model });
  const scope = githubScope();
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope, { yaml: "pull_requests:\n  enabled: false\n" });
  const pull = {
    number: 2,
    title: "t",
    body: "b",
    state: "open",
    draft: false,
    user: { login: "Codertocat", type: "User" },
    head: { sha: HEAD_2, ref: "changes" },
    base: { sha: BASE, ref: "master" },
    changed_files: PR_FILES.length,
    html_url: "https://github.com/Codertocat/Hello-World/pull/2",
  };
  scope.get(`${REPO}/pulls/2`).times(2).reply(200, pull);
  scope
    .get(`${REPO}/pulls/2/reviews`)
    .query({ per_page: "100" })
    .reply(200, [
      {
        id: 79,
        user: { login: BOT },
        body: `Earlier.\n\n<!-- talos:review:${HEAD_1}:1 -->`,
        commit_id: HEAD_1,
      },
    ]);
  scope
    .get(`${REPO}/compare/${HEAD_1}...${HEAD_2}`)
    .query({ per_page: "1", page: "1" })
    .reply(200, { ...PUSH, files: [...PUSH.files, UPSTREAM] });
  scope.get(`${REPO}/pulls/2/files`).query({ per_page: "100" }).reply(200, PR_FILES);
  scope.get(REPO).reply(200, {
    full_name: "Codertocat/Hello-World",
    default_branch: "master",
    visibility: "public",
    archived: false,
    description: "",
  });
  scope
    .get(`${REPO}/contents/.gitattributes`)
    .query({ ref: "master" })
    .reply(404, { message: "Not Found" });
  // As GitHub does: a comment on a path outside the pull request's diff fails the request (422).
  const prPaths = new Set(PR_FILES.map((f) => f.filename));
  const posted: any[] = [];
  scope
    .post(`${REPO}/pulls/2/reviews`)
    .times(2)
    .reply((_uri, body: any) => {
      if (body.comments.some((c: any) => !prPaths.has(c.path)))
        return [422, { message: "Unprocessable Entity", errors: ["Path could not be resolved"] }];
      posted.push(body);
      return [200, { id: 90, html_url: "https://github.com/x" }];
    });

  const payload = loadFixture<any>("pull_request.synchronize.json");
  payload.pull_request.head.sha = HEAD_2;
  await app.probot.receive({ id: `d-${Math.random()}`, name: "pull_request", payload } as never);

  // The first attempt is accepted: no 422, no fallback without inline comments.
  expect(posted).toHaveLength(1);
  expect(posted[0].commit_id).toBe(HEAD_2);
  expect(posted[0].event).toBe("COMMENT");
  expect(posted[0].comments).toEqual([
    expect.objectContaining({ path: "src/theme.js", line: 6, side: "RIGHT" }),
  ]);
  expect(posted[0].body).not.toContain("GitHub refused");
  expect(posted[0].body).not.toContain("lib/upstream.js");
  const prompt = String(model.calls[0]!.messages[1]!.content);
  expect(prompt).toContain("localStorage.setItem");
  expect(prompt).not.toContain("lib/upstream.js");
  expect(prompt).not.toContain("export const x");
  // One POST only: the mock's second use (the fallback) stays unused.
  expect(scope.pendingMocks()).toEqual([`POST https://api.github.com:443${REPO}/pulls/2/reviews`]);
});

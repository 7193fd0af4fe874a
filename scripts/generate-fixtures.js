// Derives the webhook fixtures from GitHub's real example payloads in @octokit/webhooks-examples.
// Run `node scripts/generate-fixtures.js` after changing the cases below; the output is committed.
// Most examples lack an `installation` key, without which Probot hands out an unauthenticated
// client, so every fixture gets one.
import { readFile, writeFile } from "node:fs/promises";

const index = JSON.parse(
  await readFile(
    new URL(
      "../node_modules/@octokit/webhooks-examples/api.github.com/index.json",
      import.meta.url,
    ),
    "utf8",
  ),
);
const example = (name, action) =>
  structuredClone(index.find((e) => e.name === name).examples.find((x) => x.action === action));
const INSTALLATION = { id: 2, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMg==" };

function comment(action, body, changes = {}) {
  const payload = example("issue_comment", action);
  payload.installation = INSTALLATION;
  payload.comment.body = body;
  Object.assign(payload.comment, changes.comment);
  Object.assign(payload.sender, changes.sender);
  return payload;
}

const fixtures = {
  "issue_comment.created.help.json": comment("created", "/talos help"),
  "issue_comment.created.config.json": comment("created", "Could you check this?\r\n/talos config"),
  "issue_comment.created.code-block.json": comment(
    "created",
    "To get help, write:\r\n```\r\n/talos help\r\n```",
  ),
  "issue_comment.created.not-allowed.json": comment("created", "/talos help", {
    comment: { author_association: "NONE" },
  }),
  "issue_comment.created.bot.json": comment("created", "/talos help", {
    sender: { login: "renovate[bot]", type: "Bot" },
  }),
  "issue_comment.edited.help.json": comment("edited", "/talos help"),
  "installation_repositories.added.json": (() => {
    const payload = example("installation_repositories", "added");
    payload.installation.id = INSTALLATION.id;
    return payload;
  })(),
};

// Pull requests: GitHub's example PR #2 of Codertocat/Hello-World (head ec26c3e, base f95f852),
// opened and pushed to.
function pullRequest(action, changes = {}) {
  const payload = example("pull_request", action);
  payload.installation = INSTALLATION;
  Object.assign(payload.pull_request, changes.pull_request);
  Object.assign(payload.pull_request.user, changes.user);
  Object.assign(payload.sender, changes.sender);
  if (changes.after) {
    payload.before = payload.pull_request.head.sha;
    payload.after = changes.after;
    payload.pull_request.head.sha = changes.after;
  }
  return payload;
}
fixtures["pull_request.opened.json"] = pullRequest("opened", {
  pull_request: {
    title: "Add a dark theme to the editor",
    body: "Closes #1. Adds a theme switch.",
  },
});
fixtures["pull_request.opened.draft.json"] = pullRequest("opened", {
  pull_request: { draft: true },
});
fixtures["pull_request.opened.wip.json"] = pullRequest("opened", {
  pull_request: { title: "[WIP] dark theme" },
});
fixtures["pull_request.opened.dependabot.json"] = pullRequest("opened", {
  pull_request: { title: "Bump lodash from 4.17.20 to 4.17.21" },
  user: { login: "dependabot[bot]", type: "Bot" },
  sender: { login: "dependabot[bot]", type: "Bot" },
});
fixtures["pull_request.synchronize.json"] = (() => {
  const payload = example("pull_request", "synchronize");
  payload.installation = INSTALLATION;
  payload.pull_request.title = "Add a dark theme to the editor";
  return payload;
})();
fixtures["issue_comment.created.review.json"] = (() => {
  const payload = comment("created", "/talos review");
  // A comment on pull request #2: GitHub sends its issue side, with `pull_request` set.
  Object.assign(payload.issue, {
    number: 2,
    title: "Add a dark theme to the editor",
    html_url: "https://github.com/Codertocat/Hello-World/pull/2",
    pull_request: {
      url: "https://api.github.com/repos/Codertocat/Hello-World/pulls/2",
      html_url: "https://github.com/Codertocat/Hello-World/pull/2",
      diff_url: "https://github.com/Codertocat/Hello-World/pull/2.diff",
      patch_url: "https://github.com/Codertocat/Hello-World/pull/2.patch",
    },
  });
  return payload;
})();

// The files of pull requests as `GET /repos/{owner}/{repo}/pulls/{n}/files` lists them, and of a
// comparison, in GitHub's shape: a patch per file, none for binary or huge files.
function hunk(start, lines, prefix = "+") {
  const body = lines.map((line) => `${prefix}${line}`).join("\n");
  const counts =
    prefix === "+"
      ? `-${start},0 +${start},${lines.length}`
      : `-${start},${lines.length} +${start},0`;
  return `@@ ${counts} @@\n${body}`;
}
function modified(filename, n, extra = {}) {
  const lines = Array.from(
    { length: n },
    (_, i) => `export const value${i} = compute(${i}); // ${filename}`,
  );
  const patch = `@@ -10,3 +10,${n + 3} @@ export function setup() {\n const a = 1;\n const b = 2;\n${lines.map((l) => `+${l}`).join("\n")}\n const c = 3;`;
  return { filename, status: "modified", additions: n, deletions: 0, changes: n, patch, ...extra };
}
const smallFiles = [
  {
    filename: "src/theme.js",
    status: "modified",
    additions: 3,
    deletions: 1,
    changes: 4,
    patch:
      "@@ -1,4 +1,6 @@\n const themes = ['light'];\n-export function setTheme(name) {\n+export function setTheme(name, store) {\n+  if (!themes.includes(name)) return;\n+  store.theme = name;\n   document.body.className = name;\n }",
  },
  {
    filename: "src/colours.js",
    previous_filename: "src/colors.js",
    status: "renamed",
    additions: 1,
    deletions: 1,
    changes: 2,
    patch:
      "@@ -1,2 +1,2 @@\n-export const dark = '#000';\n+export const dark = '#111';\n export const light = '#fff';",
  },
  { filename: "assets/dark-theme.png", status: "added", additions: 0, deletions: 0, changes: 0 },
];
const manyFiles = [];
for (let i = 0; i < 150; i++)
  manyFiles.push(modified(`src/module-${String(i).padStart(3, "0")}.ts`, 1));
for (let i = 0; i < 100; i++)
  manyFiles.push(modified(`test/module-${String(i).padStart(3, "0")}.test.ts`, 1));
for (let i = 0; i < 60; i++)
  manyFiles.push(modified(`docs/page-${String(i).padStart(2, "0")}.md`, 1));
for (let i = 0; i < 34; i++) manyFiles.push(modified(`vendor/lib-${i}/index.js`, 40));
manyFiles.push(modified("package-lock.json", 400));
manyFiles.push({
  filename: "src/generated-table.ts",
  status: "modified",
  additions: 40000,
  deletions: 0,
  changes: 40000,
});
manyFiles.push({
  filename: "assets/logo.png",
  status: "modified",
  additions: 0,
  deletions: 0,
  changes: 0,
});
manyFiles.push({
  ...modified("src/new-name.ts", 5),
  status: "renamed",
  previous_filename: "src/old-name.ts",
});
manyFiles.push({
  filename: "src/unused.ts",
  status: "removed",
  additions: 0,
  deletions: 12,
  changes: 12,
  patch: hunk(
    1,
    Array.from({ length: 12 }, (_, i) => `line ${i}`),
    "-",
  ),
});
manyFiles.push({
  filename: "src/trimmed.ts",
  status: "modified",
  additions: 0,
  deletions: 3,
  changes: 3,
  patch: hunk(5, ["a", "b", "c"], "-"),
});
const pushFiles = [
  {
    filename: "src/theme.js",
    status: "modified",
    additions: 1,
    deletions: 0,
    changes: 1,
    patch:
      "@@ -4,3 +4,4 @@ export function setTheme(name, store) {\n   store.theme = name;\n   document.body.className = name;\n+  localStorage.setItem('theme', name);\n }",
  },
];
const api = {
  "files.small.json": smallFiles,
  "files.350.json": manyFiles,
  "compare.push.json": {
    status: "ahead",
    ahead_by: 1,
    behind_by: 0,
    total_commits: 1,
    files: pushFiles,
  },
};
for (const [file, body] of Object.entries(api)) {
  await writeFile(
    new URL(`../fixtures/pulls/${file}`, import.meta.url),
    JSON.stringify(body, null, 2) + "\n",
  );
  console.log(`wrote fixtures/pulls/${file}`);
}

for (const [file, payload] of Object.entries(fixtures)) {
  await writeFile(
    new URL(`../fixtures/${file}`, import.meta.url),
    JSON.stringify(payload, null, 2) + "\n",
  );
  console.log(`wrote fixtures/${file}`);
}

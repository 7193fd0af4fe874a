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

for (const [file, payload] of Object.entries(fixtures)) {
  await writeFile(
    new URL(`../fixtures/${file}`, import.meta.url),
    JSON.stringify(payload, null, 2) + "\n",
  );
  console.log(`wrote fixtures/${file}`);
}

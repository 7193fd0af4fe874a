import { createPublicKey } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { pullRequestSummaryMarker } from "../../src/github/comment-markers.js";
import {
  startGitHubStandIn,
  type GitHubStandIn,
  type StandInComment,
  type StandInPullFile,
} from "../helpers/github-stand-in.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestApp, loadFixture, TEST_PRIVATE_KEY } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "Codertocat/Hello-World";
const BOT = "talos-bot[bot]";
const BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
const OLD_HEAD = "1111111111111111111111111111111111111111";
const HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

/**
 * A thread of 100 people's comments and then Talos's own: its comment is on the second page of
 * the listing. With `deleting`, one person's comment is deleted as the first page is served, so
 * the second page starts one comment later and Talos's own is read on neither (found by a review:
 * a second triage comment, a second summary).
 */
function threadWithOwnCommentOnPage2(
  github: GitHubStandIn,
  number: number,
  own: string,
  deleting: boolean,
): void {
  const people: StandInComment[] = Array.from({ length: 100 }, (_, i) =>
    github.addComment(REPO, number, { body: `comment ${i}`, login: "hubot" }),
  );
  github.addComment(REPO, number, { body: own, login: BOT, type: "Bot" });
  if (!deleting) return;
  const push = github.requests.push.bind(github.requests);
  let deleted = false;
  github.requests.push = (...requests) => {
    for (const request of requests) {
      const firstPage =
        request.method === "GET" &&
        request.path === `/repos/${REPO}/issues/${number}/comments` &&
        !new URLSearchParams(request.query).has("page");
      if (firstPage && !deleted) {
        deleted = true;
        const list = github.comments.get(`${REPO}#${number}`)!;
        list.splice(list.indexOf(people[0]!), 1);
      }
    }
    return push(...requests);
  };
}

const ownComments = (github: GitHubStandIn, number: number, marker: string) =>
  (github.comments.get(`${REPO}#${number}`) ?? []).filter(
    (c) => c.user.login === BOT && c.body.includes(marker),
  );

describe("Talos's own comment on a later page of a thread, while a comment is deleted", () => {
  let github: GitHubStandIn;
  afterEach(() => github?.close());

  it.each([false, true])(
    "a redelivered new issue's triage (deleted meanwhile: %s): found, no model call, no second comment",
    async (deleting) => {
      github = await startGitHubStandIn({ publicKey: createPublicKey(TEST_PRIVATE_KEY) });
      github.setFile(
        REPO,
        ".github/talos.yml",
        "triage:\n  enabled: true\n  comment: true\nsimilar:\n  enabled: false\nmemory:\n  enabled: false\n",
      );
      github.labels.set(REPO, ["bug", "docs"]);
      // Read again before the automatic work: as opened, still open.
      const { issue } = webhookExample("issues", "opened");
      github.issues.set(`${REPO}#1`, {
        number: 1,
        title: issue.title,
        body: issue.body,
        state: "open",
        user: { login: issue.user.login },
        labels: [],
      });
      const marker = "<!-- talos:triage:1 -->";
      threadWithOwnCommentOnPage2(
        github,
        1,
        `**Triage**: suggested labels \`bug\`.\n\n${marker}`,
        deleting,
      );
      const model = scriptedModel()
        .respondWithTools([{ name: "propose_labels", args: { labels: ["docs"], reason: "r" } }])
        .respond("Looks like docs.");
      const app = await createTestApp({ baseUrl: github.url, model });

      await app.probot.receive({
        id: "opened-again",
        name: "issues",
        payload: webhookExample("issues", "opened"),
      } as never);

      expect(github.count("GET", `/repos/${REPO}/issues/1`)).toBe(1);
      expect(model.callCount).toBe(0);
      expect(ownComments(github, 1, marker).map((c) => c.body)).toEqual([
        `**Triage**: suggested labels \`bug\`.\n\n${marker}`,
      ]);
    },
  );

  it.each([false, true])(
    "a push's pull-request summary (deleted meanwhile: %s): the one summary is edited",
    async (deleting) => {
      github = await startGitHubStandIn({ publicKey: createPublicKey(TEST_PRIVATE_KEY) });
      github.setPull(REPO, {
        number: 2,
        title: "Add a dark theme to the editor",
        body: "Adds a theme switch.",
        state: "open",
        draft: false,
        user: { login: "Codertocat", type: "User" },
        head: { sha: HEAD, ref: "changes" },
        base: { sha: BASE, ref: "master" },
        files: loadFixture<StandInPullFile[]>("pulls/files.small.json"),
      });
      threadWithOwnCommentOnPage2(
        github,
        2,
        `**Summary of this pull request** at \`1111111\`.\n\nold text\n\n**Files touched** (1):\n- x\n\n<!-- talos:pr-summary:${OLD_HEAD} -->`,
        deleting,
      );
      const model = scriptedModel().respond("- **What it changes**: a dark theme.");
      const app = await createTestApp({ baseUrl: github.url, model });
      const payload = loadFixture<{ pull_request: { head: { sha: string } } }>(
        "pull_request.synchronize.json",
      );
      payload.pull_request.head.sha = HEAD;

      await app.probot.receive({ id: "pushed", name: "pull_request", payload } as never);

      const summaries = ownComments(github, 2, "<!-- talos:pr-summary:");
      expect(summaries).toHaveLength(1);
      expect(summaries[0]!.body).toContain(pullRequestSummaryMarker(HEAD, "master"));
      // Found, the old summary was read: the model was asked about the push alone, with it.
      expect(model.callCount).toBe(1);
      // The thread read once, its two pages (again when that read missed the summary: one page,
      // a comment fewer); the summary found there is edited without another read.
      const reads = github.requests.filter(
        (r) => r.method === "GET" && r.path === `/repos/${REPO}/issues/2/comments`,
      );
      expect(reads).toHaveLength(deleting ? 3 : 2);
    },
  );
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pullRequestSummaryMarker } from "../../src/github/comment-markers.js";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { parsePatch } from "../../src/pulls/parse-patch.js";
import { eventually } from "../helpers/eventually.js";
import {
  startGitHubStandIn,
  type GitHubStandIn,
  type StandInPull,
  type StandInPullFile,
} from "../helpers/github-stand-in.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../helpers/openai-stand-in.js";
import { createRestDescription } from "../helpers/rest-description.js";
import {
  buildDist,
  jobFinished,
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import { loadFixture, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

const REPO = "Codertocat/Hello-World";
const BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e";
const HEADS = [
  "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
  "2b5c1a7e0f3d4c6b8a9e1f2d3c4b5a6978877665",
  "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
  "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
];
const SMALL = loadFixture<StandInPullFile[]>("pulls/files.small.json");
const MANY = loadFixture<StandInPullFile[]>("pulls/files.350.json");
const PUSH = loadFixture<{ files: StandInPullFile[] }>("pulls/compare.push.json").files;
const BOT = "talos-bot[bot]";

function pull(number: number, head: string, files: StandInPullFile[]): StandInPull {
  return {
    number,
    title: "Add a dark theme to the editor",
    body: "Adds a theme switch.",
    state: "open",
    draft: false,
    user: { login: "Codertocat", type: "User" },
    head: { sha: head, ref: "changes" },
    base: { sha: BASE, ref: "master" },
    files,
  };
}

/** A push: the head moves on, its file list grows, and GitHub can compare the two heads. */
function push(github: GitHubStandIn, from: string, to: string, line: string) {
  const change: StandInPullFile = {
    ...PUSH[0]!,
    patch: `@@ -4,3 +4,5 @@ export function setTheme(name, store) {\n   store.theme = name;\n   document.body.className = name;\n+  localStorage.setItem('theme', name);\n+  // ${line}\n }`,
    additions: 2,
    changes: 2,
  };
  github.setPull(REPO, pull(2, to, [...SMALL.slice(1), change]));
  github.setComparison(REPO, from, to, { status: "ahead", files: [change] });
}

/**
 * The done-when list of pull-request support, against `node dist/main.js` (what `npm start`
 * runs) with the GitHub and OpenAI-compatible stand-ins.
 */
describe("pull requests in the started server", () => {
  let github: GitHubStandIn;
  let llm: OpenAIStandIn;
  let server: ServerProcess;
  const rest = createRestDescription();
  const signed = { secret: TEST_WEBHOOK_SECRET };
  const ours = (number: number) =>
    (github.comments.get(`${REPO}#${number}`) ?? []).filter((c) => c.user.login === BOT);

  async function deliver(id: string, event: string, payload: unknown) {
    const res = await sendWebhook(server.url, { id, event, payload }, signed);
    expect(res.status).toBe(200);
    await jobFinished(server, id);
  }

  function pullRequestEvent(action: "opened" | "synchronize", head: string) {
    const payload = loadFixture<any>(
      action === "opened" ? "pull_request.opened.json" : "pull_request.synchronize.json",
    );
    payload.pull_request.head.sha = head;
    return payload;
  }

  function reviewComment(number: number, body: string, id: number) {
    const payload = loadFixture<any>("issue_comment.created.review.json");
    payload.issue.number = number;
    payload.comment.body = body;
    payload.comment.id = id;
    return payload;
  }

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    llm = await startOpenAIStandIn();
    github.setPull(REPO, pull(2, HEADS[0]!, SMALL));
    github.setPull(REPO, { ...pull(3, HEADS[0]!, MANY), title: "Regenerate everything" });
    server = await startServerProcess(
      await standInServerEnv(github.host, {
        OPENAI_API_KEY: "sk-e2e-pull-requests-0123456789",
        OPENAI_BASE_URL: llm.baseUrl,
        TALOS_MODEL: "local-model",
      }),
      { cwd: makeWorkDir() },
    );
  });

  afterAll(async () => {
    if (process.env.DEBUG_E2E) console.log(server?.output());
    await server?.kill();
    await github?.close();
    await llm?.close();
  });

  it("opening a pull request and pushing twice leaves one summary comment, marked with the newest head", async () => {
    llm.script(
      { content: "- **What it changes**: a dark theme.\n- **Risk areas**: none stand out." },
      { content: "- **What it changes**: a dark theme, now saved.\n- **Risk areas**: storage." },
      { content: "- **What it changes**: a dark theme, saved and logged." },
    );
    await deliver("e2e-pr-opened", "pull_request", pullRequestEvent("opened", HEADS[0]!));
    push(github, HEADS[0]!, HEADS[1]!, "first push");
    await deliver("e2e-pr-push-1", "pull_request", pullRequestEvent("synchronize", HEADS[1]!));
    push(github, HEADS[1]!, HEADS[2]!, "second push");
    await deliver("e2e-pr-push-2", "pull_request", pullRequestEvent("synchronize", HEADS[2]!));

    const summaries = ours(2);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.body.endsWith(pullRequestSummaryMarker(HEADS[2]!, "master"))).toBe(true);
    expect(summaries[0]!.body).toContain("saved and logged");
    expect(
      github.writes().filter((w) => w.method === "POST" && w.path.endsWith("/issues/2/comments")),
    ).toHaveLength(1);
    // The pushes were read through the compare API, and only their changes went to the model.
    expect(github.count("GET", `/repos/${REPO}/compare/${HEADS[1]}...${HEADS[2]}`)).toBe(1);
    expect(JSON.stringify(llm.requests[2]?.messages)).toContain("second push");
    expect(JSON.stringify(llm.requests[2]?.messages)).not.toContain("first push");
    expect(rest.checkAll(github.requests)).toEqual([]);
  });

  it("/talos review gives one COMMENT review with at most 8 inline comments, all on diff lines", async () => {
    const comments = Array.from({ length: 12 }, (_, i) => ({
      path: i % 3 === 0 ? "src/theme.js" : i % 3 === 1 ? "src/colours.js" : "src/nowhere.js",
      line: i % 3 === 0 ? 2 + (i % 5) : 1,
      severity: ["critical", "major", "minor", "nit"][i % 4],
      body: `Finding ${i}.`,
    }));
    comments.push(
      ...Array.from({ length: 8 }, (_, i) => ({
        path: "src/theme.js",
        line: 100 + i,
        severity: "critical",
        body: "Off the diff.",
      })),
    );
    llm.script({ content: JSON.stringify({ verdict: "Sound, with a few nits.", comments }) });

    await deliver("e2e-review", "issue_comment", reviewComment(2, "/talos review", 9101));

    const reviews = github.reviews.get(`${REPO}#2`) ?? [];
    expect(reviews).toHaveLength(1);
    const review = reviews[0]!;
    expect(review.state).toBe("COMMENTED");
    expect(review.commit_id).toBe(HEADS[2]);
    expect(review.comments.length).toBeGreaterThan(0);
    expect(review.comments.length).toBeLessThanOrEqual(8);
    const files = github.pulls.get(`${REPO}#2`)!.files;
    for (const comment of review.comments) {
      const patch = files.find((f) => f.filename === comment.path)?.patch ?? "";
      const lines = parsePatch(patch).flatMap((h) => h.lines.flatMap((l) => l.newLine ?? []));
      expect(lines).toContain(comment.line);
    }
    expect(ours(2)).toHaveLength(1); // the summary; the review needs no reply comment
    expect(rest.checkAll(github.requests)).toEqual([]);
  });

  it("a 350-file pull request is reviewed within review.max_tokens, the rest listed as not reviewed", async () => {
    llm.script({ content: JSON.stringify({ verdict: "Mostly generated.", comments: [] }) });

    await deliver("e2e-review-350", "issue_comment", reviewComment(3, "/talos review", 9102));

    const review = (github.reviews.get(`${REPO}#3`) ?? [])[0]!;
    expect(review.body).toContain("**Not reviewed**");
    expect(review.body).toContain("Did not fit the token budget (`review.max_tokens`)");
    const prompt = JSON.stringify(llm.requests.at(-1)?.messages);
    const diff = prompt.slice(
      prompt.indexOf("pull request diff"),
      prompt.indexOf("Files not shown"),
    );
    expect(createTokenCounter().countTokens(JSON.parse(`"${diff}"`))).toBeLessThanOrEqual(
      20_000 + 200,
    );
    const listed = github.requests.filter((r) => r.path === `/repos/${REPO}/pulls/3/files`);
    expect(listed).toHaveLength(4); // 100 a page
    expect(github.requests.some((r) => r.path.endsWith(".diff"))).toBe(false);
  });

  it("a burst of five pushes collapses into one summary run and one review run, on the newest head", async () => {
    const heads = Array.from({ length: 5 }, (_, i) => `${"c".repeat(39)}${i}`);
    let previous = HEADS[3]!;
    for (const [i, head] of heads.entries()) {
      push(github, previous, head, `burst ${i}`);
      previous = head;
    }
    // The summary and the review both cover everything since the last commit each saw.
    const newest = heads.at(-1)!;
    const since = github.comparisons.get(`${REPO}:${HEADS[3]}...${heads[0]}`)!;
    github.setComparison(REPO, HEADS[2]!, newest, { status: "ahead", files: since.files });
    llm.script(
      { content: "- **What it changes**: a dark theme, after a burst of pushes." },
      { content: JSON.stringify({ verdict: "The burst is fine.", comments: [] }) },
    );
    const before = llm.chatArrivals();

    // All five arrive before the first job runs, as a burst does.
    await Promise.all(
      heads.map((head, i) =>
        sendWebhook(
          server.url,
          {
            id: `e2e-burst-${i}`,
            event: "pull_request",
            payload: pullRequestEvent("synchronize", head),
          },
          signed,
        ),
      ),
    );
    for (const i of heads.keys()) await jobFinished(server, `e2e-burst-${i}`);

    expect(llm.chatArrivals() - before).toBe(2);
    const summaries = ours(2).filter((c) => c.body.includes("talos:pr-summary"));
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.body.endsWith(pullRequestSummaryMarker(newest, "master"))).toBe(true);
    const reviews = github.reviews.get(`${REPO}#2`) ?? [];
    expect(reviews.map((r) => r.commit_id)).toEqual([HEADS[2], newest]);
  });

  it("a push during the model's answer gives no stale review, and the reply says so", async () => {
    llm.script({ content: JSON.stringify({ verdict: "Fine.", comments: [] }) });
    llm.hold();
    const arrived = llm.chatArrivals();
    const sent = deliver(
      "e2e-review-moved",
      "issue_comment",
      reviewComment(2, "/talos review --full", 9103),
    );
    await llm.waitForChat(arrived + 1);
    const head = github.pulls.get(`${REPO}#2`)!.head.sha;
    push(github, head, HEADS[3]!, "moved");
    llm.release();
    await sent;

    expect(github.reviews.get(`${REPO}#2`)).toHaveLength(2);
    await eventually(() => ours(2).length === 2, "the reply");
    expect(ours(2)[1]!.body).toContain(
      `moved from \`${head.slice(0, 7)}\` to \`${HEADS[3]!.slice(0, 7)}\` while I was reviewing it`,
    );
  });
});

import { eventually } from "./eventually.js";
import { loadFixture, TEST_WEBHOOK_SECRET } from "./test-app.js";
import { HOSTILE_FRAGMENTS, hostileText } from "./hostile-input.js";
import { startGitHubStandIn } from "./github-stand-in.js";
import { startOpenAIStandIn } from "./openai-stand-in.js";
import {
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
} from "./server-process.js";

const REPO = "Codertocat/Hello-World";
const LENGTH = 65_536;

/**
 * A comment of 65,536 characters built to be slow to parse: every hostile fragment in turn, then
 * markdown-it's slowest patterns (`![` and `[` runs); with `helpLine`, a `/talos help` line first,
 * so that the whole comment is parsed for it (the fragments open code blocks, quotes and HTML
 * that a later line could not escape).
 */
export function hostileComment(helpLine: boolean): string {
  const fragments = HOSTILE_FRAGMENTS.filter((f) => !f.startsWith("/talos"));
  const mixed = hostileText(fragments.join(""), LENGTH / 2);
  const slow = hostileText("![", LENGTH / 4) + hostileText("[", LENGTH / 4);
  return `${helpLine ? "/talos help\n\n" : ""}${mixed}${slow}`.slice(0, LENGTH);
}

export interface HostileRunResult {
  /** HTTP statuses of the deliveries: the hostile comment, then `/talos summarize`. */
  statuses: number[];
  /** The summary Talos posted, marker included. */
  summary: string | undefined;
  /** Whether the `/talos help` line of the hostile comment was answered. */
  helpAnswered: boolean;
  /** Latency of every `GET /healthz` made while the deliveries were handled, in ms. */
  health: number[];
  /** Health checks that failed (a status other than 200, or no answer). */
  healthFailures: number;
  output: string;
}

/**
 * The done-when of the security issue, as a maintainer would try it: `npm start`'s server against
 * the GitHub and OpenAI stand-ins; a 65,536-character comment of hostile Markdown and HTML in a
 * thread (posted by a maintainer, so it is parsed for commands), then `/talos summarize`, whose
 * model answer echoes the hostile text with mention tricks and markers. `/healthz` is polled the
 * whole time. Expects `dist/` to be built.
 */
export async function runHostileThread(options: { helpLine: boolean }): Promise<HostileRunResult> {
  const github = await startGitHubStandIn();
  const llm = await startOpenAIStandIn();
  const comment = hostileComment(options.helpLine);
  github.issues.set(`${REPO}#1`, {
    number: 1,
    title: "Spelling error in the README file",
    body: "It looks like you accidently spelled 'commit' with two 't's.",
    state: "open",
    user: { login: "Codertocat" },
    labels: [],
  });
  github.addComment(REPO, 1, { body: comment, login: "Codertocat" });
  llm.script({
    content: `Summary: ${comment.slice(0, 6_000)}\n\ncc @octocat _@hubot_ <!-- talos:summary --> \`<!-- talos:reply:1 -->\` [x](javascript:alert(1)) #999`,
  });
  const server = await startServerProcess(
    await standInServerEnv(github.host, {
      OPENAI_API_KEY: "sk-hostile-bench-key-0123456789",
      OPENAI_BASE_URL: llm.baseUrl,
      TALOS_MODEL: "local-model",
      // The hostile comment fits the prompt, so it is cleaned and rendered, not left out.
      TALOS_AGENT_CONTEXT_TOKENS: "20000",
    }),
    { cwd: makeWorkDir() },
  );
  const health: number[] = [];
  let healthFailures = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const started = performance.now();
      try {
        const res = await fetch(`${server.url}/healthz`);
        await res.text();
        if (res.status !== 200) healthFailures++;
      } catch {
        healthFailures++;
      }
      health.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  try {
    const deliver = (id: number, body: string) => {
      const payload = loadFixture<{ comment: { id: number; body: string } }>(
        "issue_comment.created.help.json",
      );
      payload.comment.id = id;
      payload.comment.body = body;
      return sendWebhook(
        server.url,
        { id: `hostile-${id}`, event: "issue_comment", payload },
        { secret: TEST_WEBHOOK_SECRET },
      );
    };
    const statuses = [(await deliver(101, comment)).status];
    statuses.push((await deliver(102, "/talos summarize")).status);
    // Deliveries are acknowledged once journaled; their jobs run afterwards.
    await eventually(
      () =>
        ["hostile-101", "hostile-102"].every((id) =>
          server
            .output()
            .split("\n")
            .some((line) => line.includes(`"${id}"`) && line.includes('"job finished"')),
        ),
      "both jobs to finish",
      60_000,
    );
    const thread = github.comments.get(`${REPO}#1`) ?? [];
    return {
      statuses,
      summary: thread.find((c) => c.body.includes("<!-- talos:summary -->"))?.body,
      helpAnswered: thread.some((c) => c.body.endsWith("<!-- talos:reply:101 -->")),
      health,
      healthFailures,
      output: server.output(),
    };
  } finally {
    polling = false;
    await poll;
    await server.kill();
    await github.close();
    await llm.close();
  }
}

import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { pino } from "pino";
import { Probot } from "probot";
import { parseEnv } from "../src/config.js";
import { createTalos } from "../src/index.js";
import { createFakeClock } from "../test/helpers/fake-clock.js";
import { startGitHubStandIn } from "../test/helpers/github-stand-in.js";
import { loadFixture } from "../test/helpers/test-app.js";
import { webhookExample } from "../test/helpers/webhook-examples.js";
import { printTable, summarize } from "./stats.js";

const EVENTS = 200;
const TTL_MS = 5 * 60_000;
const REPOS = [
  { installation: 2, owner: "acme", name: "one" },
  { installation: 2, owner: "acme", name: "two" },
  { installation: 3, owner: "globex", name: "three" },
];
const CONFIG =
  "triage:\n  enabled: true\n  apply_labels: true\nautomation:\n  max_runs_per_hour: 1000\n";

/** A language model that answers at once: labels for triage, a sentence otherwise. */
class InstantModel extends BaseChatModel {
  _llmType() {
    return "instant";
  }
  override bindTools() {
    return this;
  }
  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    const triage = String(messages[1]?.content).includes("propose_labels");
    const proposed = messages.some((m) => m.getType() === "tool");
    const message =
      triage && !proposed
        ? new AIMessage({
            content: "",
            tool_calls: [
              { name: "propose_labels", args: { labels: ["bug"], reason: "crash" }, id: "c1" },
            ],
          })
        : new AIMessage("Done.");
    return { generations: [{ text: "", message }] };
  }
}

interface BurstEvent {
  name: string;
  payload: Record<string, unknown>;
}

/** The burst: half issue openings, half maintainers' commands, spread over the repositories. */
function makeBurst(): BurstEvent[] {
  return Array.from({ length: EVENTS }, (_, i) => {
    const repo = REPOS[i % REPOS.length]!;
    const repository = {
      ...webhookExample("issues", "opened").repository,
      name: repo.name,
      full_name: `${repo.owner}/${repo.name}`,
      owner: { login: repo.owner },
    };
    if (i % 2 === 0) {
      const payload = webhookExample("issues", "opened", repo.installation);
      Object.assign(payload.issue, { number: 1000 + i, comments: 0, body: "It crashes." });
      return { name: "issues", payload: { ...payload, repository } };
    }
    const payload = loadFixture<{
      installation: object;
      repository: object;
      comment: { id: number; body: string };
    }>("issue_comment.created.help.json");
    payload.installation = { id: repo.installation };
    payload.repository = repository;
    payload.comment.id = 10_000 + i;
    payload.comment.body = i % 4 === 1 ? "/talos help" : "/talos ask why does it crash?";
    return { name: "issue_comment", payload };
  });
}

type Counts = { hit: number; miss: number; revalidated: number };

async function runBurst(cached: boolean) {
  const github = await startGitHubStandIn();
  for (const repo of REPOS) {
    github.setFile(`${repo.owner}/${repo.name}`, ".github/talos.yml", CONFIG);
    github.labels.set(`${repo.owner}/${repo.name}`, ["bug", "documentation", "question"]);
  }
  const clock = createFakeClock();
  const log = pino({ level: "silent" });
  const dataDir = mkdtempSync(join(tmpdir(), "talos-bench-"));
  const talos = await createTalos({
    env: parseEnv({
      TALOS_DATA_DIR: dataDir,
      TALOS_CACHE_TTL_MS: String(TTL_MS),
      TALOS_AUTOMATION_MAX_PER_HOUR: "100000",
    }),
    log,
    version: "bench",
    clock,
    ephemeralJobs: true,
    model: new InstantModel({}),
    // The benchmark measures requests and Talos's own time, not GitHub's write spacing.
    octokit: { throttle: false, retry: false, cache: cached },
  });
  let networkMs = 0;
  const timedFetch: typeof fetch = async (input, init) => {
    const start = performance.now();
    try {
      return await fetch(input, init);
    } finally {
      networkMs += performance.now() - start;
    }
  };
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  const probot = new Probot({
    appId: 1,
    privateKey,
    log,
    Octokit: talos.Octokit,
    baseUrl: github.url,
    request: { fetch: timedFetch },
  });
  await probot.load(talos.app, { cwd: process.cwd(), addHandler: () => undefined });

  const burst = makeBurst();
  // A new issue is read again before its automatic work: GitHub holds the issues the burst opens.
  for (const { name, payload } of burst) {
    if (name !== "issues") continue;
    const { repository, issue } = payload as {
      repository: { full_name: string };
      issue: { number: number; title: string; body: string };
    };
    github.issues.set(`${repository.full_name}#${issue.number}`, {
      number: issue.number,
      title: issue.title,
      body: issue.body,
      state: "open",
      user: { login: "Codertocat" },
      labels: [],
    });
  }
  const overheads: number[] = [];
  for (const [i, event] of burst.entries()) {
    // Half-way, the TTL runs out: the second half revalidates instead of reading afresh.
    if (i === EVENTS / 2) clock.advance(TTL_MS + 1_000);
    networkMs = 0;
    const start = performance.now();
    await probot.receive({ id: `bench-${i}`, name: event.name, payload: event.payload } as never);
    await talos.services.jobs.idle();
    overheads.push(performance.now() - start - networkMs);
  }

  const byKind: Record<string, Counts> = {};
  for (const { labels, value } of (await talos.metrics.cacheRequests.get()).values) {
    const counts = (byKind[String(labels.kind)] ??= { hit: 0, miss: 0, revalidated: 0 });
    counts[labels.result as keyof Counts] += value;
  }
  // Two views of the hit ratio: reads served from the cache's content (a 304 revalidation
  // included, as HTTP caches count it), and reads served without any request.
  const ratio = (served: (c: Counts) => number) =>
    Object.fromEntries(
      Object.entries(byKind).map(([kind, c]) => [
        kind,
        served(c) / (c.hit + c.miss + c.revalidated),
      ]),
    );
  const result = {
    requests: github.requests.length,
    requestsPerEvent: github.requests.length / EVENTS,
    notModified: github.requests.filter((r) => r.status === 304).length,
    reads: Object.fromEntries(
      ["config", "repo", "labels"].map((kind) => [
        kind,
        github.requests.filter((r) => r.method === "GET" && kindOf(r.path) === kind).length,
      ]),
    ),
    hitRatio: ratio((c) => c.hit + c.revalidated),
    noRequestRatio: ratio((c) => c.hit),
    overheadMs: summarize(overheads),
    writes: github.writes().length,
  };
  await talos.close();
  await github.close();
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}

function kindOf(path: string): string | undefined {
  if (path.endsWith("/contents/.github%2Ftalos.yml")) return "config";
  if (/^\/repos\/[^/]+\/[^/]+$/.test(path)) return "repo";
  if (path.endsWith("/labels") && !path.includes("/issues/")) return "labels";
  return undefined;
}

export async function runGitHubBench({ json }: { json: boolean }) {
  const off = await runBurst(false);
  const on = await runBurst(true);
  const result = {
    suite: "github",
    events: EVENTS,
    mix: {
      "issue opened (triage)": EVENTS / 2,
      "/talos help": EVENTS / 4,
      "/talos ask": EVENTS / 4,
    },
    repositories: REPOS.length,
    installations: new Set(REPOS.map((r) => r.installation)).size,
    cacheOff: off,
    cacheOn: on,
    requestRatio: off.requestsPerEvent / on.requestsPerEvent,
  };
  if (!json) {
    console.log(
      `github: a burst of ${EVENTS} events (${EVENTS / 2} issue openings with triage, ${EVENTS / 4} /talos help, ${EVENTS / 4} /talos ask)`,
    );
    console.log(
      `over ${REPOS.length} repositories and ${result.installations} installations; the cache TTL runs out half-way\n`,
    );
    printTable(
      [["off (naive baseline)", off] as const, ["on", on] as const].map(([name, run]) => ({
        cache: name,
        requests: run.requests,
        "per event": run.requestsPerEvent,
        "config reads": run.reads.config ?? 0,
        "repo reads": run.reads.repo ?? 0,
        "label reads": run.reads.labels ?? 0,
        "304s": run.notModified,
        "overhead p50 ms": run.overheadMs.p50,
        "overhead p99 ms": run.overheadMs.p99,
      })),
    );
    const percent = (ratios: Record<string, number>) =>
      Object.entries(ratios)
        .map(([kind, value]) => `${kind} ${(value * 100).toFixed(1)}%`)
        .join(", ");
    console.log(
      `\n${result.requestRatio.toFixed(2)}× fewer GitHub requests per event with the cache`,
    );
    console.log(
      `hit ratio (served from the cache, 304 revalidations included): ${percent(on.hitRatio)}`,
    );
    console.log(`served without any request: ${percent(on.noRequestRatio)}`);
  }
  return result;
}

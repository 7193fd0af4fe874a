import { existsSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { systemClock } from "../src/clock.js";
import { parseEnv, RepoConfigSchema } from "../src/config.js";
import { createMemoryRegistry } from "../src/create-services.js";
import type { IssueInfo } from "../src/github/create-repo-client.js";
import { findSimilarIssues } from "../src/memory/find-similar-issues.js";
import { createLocalEmbedder } from "../src/memory/local-embedder.js";
import { toIssueMemory } from "../src/memory/memory-inputs.js";
import type { RepositoryMemory } from "../src/memory/repository-memory.js";
import { createMetrics } from "../src/metrics/create-metrics.js";
import { startGitHubStandIn, type GitHubStandIn } from "../test/helpers/github-stand-in.js";
import {
  buildDist,
  jobFinished,
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../test/helpers/server-process.js";
import { loadFixture, TEST_WEBHOOK_SECRET } from "../test/helpers/test-app.js";
import { generateIssueText, ISSUE_VOCABULARY, type IssueText } from "./generate-issue-text.js";
import { printTable } from "./stats.js";

// Issue 12's done-when: the first `/talos similar` on a repository with a memory of 100,000
// records is answered within 3 s of the webhook, by a server just started with `npm start`.
const DEFAULT_RECORDS = 100_000;
const TARGET_MS = 3_000;
const CHUNK = 1_000;
// The fixture's repository and installation: together they name the memory's directory.
const REPO = "Codertocat/Hello-World";
const INSTALLATION = 2;
const REPOSITORY_ID = 186_853_002;
// A reply that takes this long is a hang, not a measurement (the fallback at 100k takes ~20 s).
const REPLY_BOUND_MS = 180_000;
// The one file whose absence makes the store read the vectra files (memory-snapshot.ts).
const SNAPSHOT_HEADER = "snapshot.json";
// What the store logs when it reads the vectra files instead (vectra-memory-store.ts).
const FALLBACK_MESSAGE = "memory snapshot not usable";

export interface StartBenchOptions {
  json: boolean;
  /** Records in the repository's memory; 100,000 by default. */
  records?: number;
}

/** A memory issue the new issue repeats (a duplicate report): the search must find something. */
interface Query {
  /** The new issue's number, outside the memory's 1..N. */
  number: number;
  /** The remembered issue whose title and first sentence the new one repeats. */
  duplicateOf: number;
  commentId: number;
  delivery: string;
}

interface SimilarResult {
  /** From just before the webhook is sent to the stand-in receiving the reply's POST. */
  replyMs: number;
  /** The webhook's response: Talos acknowledges once the delivery is journaled. */
  ackMs: number;
  /**
   * The reply's time in three parts, told apart by the requests the stand-in received: up to the
   * 👀 reaction (the job starts, the installation token, the config, the command's parse), the
   * command (the memory opened if it is not, then searched) up to the reply's lookup of the
   * thread's comments, and the reply written.
   */
  phases: { beforeCommandMs: number; commandMs: number; replyWriteMs: number };
  /** The memory's issues the reply names, in its order. */
  named: number[];
  /** Whether the reply names the issue the new one repeats. */
  namesDuplicate: boolean;
}

interface WayResult {
  /** From spawning `node dist/main.js` to its "Listening on" log line. */
  listenMs: number;
  first: SimilarResult;
  warm?: SimilarResult;
}

export async function runStartBench({ json, records = DEFAULT_RECORDS }: StartBenchOptions) {
  if (!Number.isSafeInteger(records) || records < 1)
    throw new Error(`--records must be a positive integer, not ${records}`);
  const started = performance.now();
  // Other processes share this machine: the load says how much they took from the figures.
  const loadAtStart = loadavg()[0]!;
  // What `npm start` runs first; untimed, and nothing when dist/ is current.
  buildDist();
  const github = await startGitHubStandIn();
  const cwd = makeWorkDir();
  // The stand-in environment's data directory is a new temporary one: the memory goes there.
  const env = await standInServerEnv(github.host);
  const dataDir = env.TALOS_DATA_DIR!;
  const memoryDir = join(dataDir, "memory", String(INSTALLATION), String(REPOSITORY_ID));
  const queries = createQueries(records);
  let server: ServerProcess | undefined;
  try {
    const setupSeconds = await createMemory(env, records);
    // GitHub has the remembered issues: a similar issue is read before it is named.
    for (let number = 1; number <= records; number++) {
      const { title, state, author } = rememberedIssue(number);
      github.issues.set(`${REPO}#${number}`, {
        number,
        title,
        body: "",
        state,
        user: { login: author! },
        labels: [],
      });
    }

    const snapshotStart = await startServer(env, cwd);
    server = snapshotStart.server;
    const snapshot: WayResult = {
      listenMs: snapshotStart.listenMs,
      first: await askSimilar(server, github, queries.first, records),
      warm: await askSimilar(server, github, queries.warm, records),
    };
    if (server.output().includes(FALLBACK_MESSAGE))
      throw new Error("the server did not open the memory from its snapshot");
    await server.kill();
    server = undefined;
    // The command's part, split in this process, with the server stopped (the store is locked).
    const inProcess = await splitCommand(env, queries, records);

    // The naive baseline: the same memory from its vectra files alone.
    if (!existsSync(join(memoryDir, SNAPSHOT_HEADER)))
      throw new Error(`no ${SNAPSHOT_HEADER} in ${memoryDir}: the store wrote no snapshot`);
    rmSync(join(memoryDir, SNAPSHOT_HEADER));
    const baselineStart = await startServer(env, cwd);
    server = baselineStart.server;
    const vectraFiles: WayResult = {
      listenMs: baselineStart.listenMs,
      first: await askSimilar(server, github, queries.baseline, records),
    };
    if (!server.output().includes(FALLBACK_MESSAGE))
      throw new Error("the server did not fall back to the vectra files");
    await server.kill();
    server = undefined;

    const result = {
      suite: "start",
      records,
      vocabulary: ISSUE_VOCABULARY.size,
      setupSeconds,
      machine: { cores: cpus().length, loadAverage1m: { start: loadAtStart, end: loadavg()[0]! } },
      snapshot,
      vectraFiles,
      inProcess,
      // The fallback writes the snapshot anew, so that the next start is fast again.
      snapshotRewritten: existsSync(join(memoryDir, SNAPSHOT_HEADER)),
      baselineOverSnapshot: vectraFiles.first.replyMs / snapshot.first.replyMs,
      target: {
        firstSimilarMs: TARGET_MS,
        records,
        met: snapshot.first.replyMs <= TARGET_MS,
      },
      totalSeconds: (performance.now() - started) / 1000,
    };
    if (!json) printReport(result);
    return result;
  } finally {
    await server?.kill();
    await github.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** Three new issues, each repeating a different remembered one, so that no answer is cached. */
function createQueries(records: number) {
  const query = (i: number, fraction: number): Query => ({
    number: records + 1 + i,
    duplicateOf: Math.max(1, Math.min(records, Math.round(records * fraction))),
    commentId: 880_000_001 + i,
    delivery: `bench-start-${i}`,
  });
  return { first: query(0, 0.37), warm: query(1, 0.81), baseline: query(2, 0.53) };
}

/**
 * The untimed setup: N issues remembered through the registry the server builds from the same
 * environment, so the directory layout and `repository.json` are exactly the server's. Closing
 * flushes the last chunk and releases the directory lock. Returns the seconds it took.
 */
async function createMemory(env: Record<string, string>, records: number): Promise<number> {
  const started = performance.now();
  const registry = createMemoryRegistry(parseEnv(env), {
    // The server's embedder without OPENAI_API_KEY: a store embedded otherwise is refused.
    embedder: createLocalEmbedder(),
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
  });
  try {
    const memory = await registry.open({
      installation: INSTALLATION,
      repository: REPOSITORY_ID,
      name: REPO,
    });
    for (let from = 1; from <= records; from += CHUNK) {
      const numbers = Array.from(
        { length: Math.min(CHUNK, records - from + 1) },
        (_, i) => from + i,
      );
      await memory.addMany(numbers.map((n) => toIssueMemory(REPO, rememberedIssue(n))));
    }
  } finally {
    await registry.closeAll();
  }
  return (performance.now() - started) / 1000;
}

function rememberedIssue(number: number): IssueInfo {
  const { title, body } = generateIssueText(number);
  return {
    number,
    title,
    body,
    // Most of a large tracker's issues are closed.
    state: number % 4 === 0 ? "open" : "closed",
    author: `user${number % 997}`,
    labels: [],
    isPullRequest: false,
    url: `https://github.com/${REPO}/issues/${number}`,
    createdAt: new Date(Date.UTC(2019, 5, 1) + number * 600_000).toISOString(),
  };
}

/**
 * What the command's part of the first reply is made of, timed in this process with the
 * server's registry and embedder: the store's opening, the first search (which builds the
 * keyword and near-duplicate indexes from every record's text), and a second search.
 */
async function splitCommand(
  env: Record<string, string>,
  queries: ReturnType<typeof createQueries>,
  records: number,
) {
  const registry = createMemoryRegistry(parseEnv(env), {
    embedder: createLocalEmbedder(),
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
  });
  const settings = RepoConfigSchema.parse({}).similar;
  const search = async (memory: RepositoryMemory, query: Query) => {
    const started = performance.now();
    const hits = await findSimilarIssues(memory, newIssue(query), settings);
    if (!hits.some((hit) => hit.record.number === query.duplicateOf))
      throw new Error(`the search in this process did not find #${query.duplicateOf}`);
    return performance.now() - started;
  };
  try {
    const started = performance.now();
    const memory = await registry.open({
      installation: INSTALLATION,
      repository: REPOSITORY_ID,
      name: REPO,
    });
    const openMs = performance.now() - started;
    const { records: opened } = await memory.stats();
    if (opened !== records) throw new Error(`the store opened with ${opened} records`);
    return {
      openMs,
      firstSearchMs: await search(memory, queries.first),
      warmSearchMs: await search(memory, queries.warm),
    };
  } finally {
    await registry.closeAll();
  }
}

function newIssue(query: Query): IssueInfo {
  return {
    ...rememberedIssue(query.number),
    ...newIssueText(query),
    state: "open",
  };
}

/** The new issue: the remembered one's title and first sentence, and a sentence of its own. */
function newIssueText(query: Query): IssueText {
  const original = generateIssueText(query.duplicateOf);
  const firstSentence = original.body.slice(0, original.body.indexOf(". ") + 1);
  return {
    title: original.title,
    body: `${firstSentence} ${generateIssueText(query.number).body}`.trim(),
  };
}

/** Spawns `node dist/main.js` as `npm start` does, and times it until it listens. */
async function startServer(
  env: Record<string, string>,
  cwd: string,
): Promise<{ server: ServerProcess; listenMs: number }> {
  const spawnedAt = Date.now();
  const server = await startServerProcess(env, { cwd });
  // The log line's own time: the readiness poll would round it up to its 100 ms period.
  const listening = logLines(server).find((line) => String(line.msg).startsWith("Listening on"));
  const listenMs =
    typeof listening?.time === "number" ? listening.time - spawnedAt : Date.now() - spawnedAt;
  return { server, listenMs };
}

/**
 * A maintainer's `/talos similar` on the new issue, timed from just before the webhook is sent
 * to the stand-in receiving the reply. Then checks that the reply is the command's one reply and
 * names issues of the memory, which proves the memory was read.
 */
async function askSimilar(
  server: ServerProcess,
  github: GitHubStandIn,
  query: Query,
  records: number,
): Promise<SimilarResult> {
  const payload = loadFixture<{ issue: object; comment: object }>(
    "issue_comment.created.help.json",
  );
  const issue = newIssue(query);
  Object.assign(payload.issue, {
    number: issue.number,
    title: issue.title,
    body: issue.body,
    html_url: issue.url,
  });
  // The command takes no text: it searches with the issue's title and description.
  Object.assign(payload.comment, { id: query.commentId, body: "/talos similar" });
  const commentsPath = `/repos/${REPO}/issues/${query.number}/comments`;
  const reactionPath = `/repos/${REPO}/issues/comments/${query.commentId}/reactions`;
  const isReply = (r: { method: string; path: string }) =>
    r.method === "POST" && r.path === commentsPath;
  const seen = github.requests.length;
  // When each request of this delivery reached the stand-in, to the poll's millisecond.
  const arrivals: number[] = [];

  const sentAt = performance.now();
  // Not awaited before polling: requests the job makes while the webhook's response is on its
  // way are stamped when they arrive.
  const acknowledged = sendWebhook(
    server.url,
    { id: query.delivery, event: "issue_comment", payload },
    { secret: TEST_WEBHOOK_SECRET },
  ).then(async (response) => {
    if (response.status !== 200)
      throw new Error(`webhook answered ${response.status}: ${await response.text()}`);
    return performance.now() - sentAt;
  });
  acknowledged.catch(() => undefined);
  // Polled every millisecond: the stand-in runs in this process and records a request when it
  // dispatches it. The server's log is read less often: parsing it competes with the server.
  for (let polls = 0; ; polls++) {
    const now = performance.now();
    while (seen + arrivals.length < github.requests.length) arrivals.push(now - sentAt);
    if (github.requests.slice(seen).some(isReply)) break;
    if (now - sentAt > REPLY_BOUND_MS || server.child.exitCode !== null)
      throw new Error(`no reply to ${query.delivery}:\n${server.output().slice(-4_000)}`);
    if (polls % 250 === 0) failedJob(server, query.delivery);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const ackMs = await acknowledged;
  const ours = github.requests.slice(seen, seen + arrivals.length);
  const arrivalOf = (method: string, path: string) =>
    arrivals[ours.findIndex((r) => r.method === method && r.path === path)] ?? Number.NaN;
  const replyMs = arrivalOf("POST", commentsPath);
  const reactedMs = arrivalOf("POST", reactionPath);
  const lookedUpMs = arrivalOf("GET", commentsPath);
  await jobFinished(server, query.delivery);

  const thread = github.comments.get(`${REPO}#${query.number}`) ?? [];
  const replies = github.requests.slice(seen).filter(isReply);
  if (replies.length !== 1 || thread.length !== 1)
    throw new Error(`expected one reply on #${query.number}, got ${thread.length}`);
  const reply = thread[0]!.body;
  if (
    !reply.startsWith("**Possibly related**") ||
    !reply.includes(`talos:reply:${query.commentId}`)
  )
    throw new Error(`#${query.number}'s reply is not the similar command's:\n${reply}`);
  const named = [...reply.matchAll(/#(\d+)/g)]
    .map((m) => Number(m[1]))
    .filter((n) => n >= 1 && n <= records);
  if (named.length === 0) throw new Error(`the reply names no remembered issue:\n${reply}`);
  return {
    replyMs,
    ackMs,
    phases: {
      beforeCommandMs: reactedMs,
      commandMs: lookedUpMs - reactedMs,
      replyWriteMs: replyMs - lookedUpMs,
    },
    named,
    namesDuplicate: named.includes(query.duplicateOf),
  };
}

/** Throws if the server logged the delivery's job as failed: no reply would come. */
function failedJob(server: ServerProcess, delivery: string): void {
  const failed = logLines(server).find(
    (line) => line.delivery === delivery && String(line.msg).startsWith("job failed"),
  );
  if (failed) throw new Error(`the job of ${delivery} failed: ${JSON.stringify(failed)}`);
}

function logLines(server: ServerProcess): Array<Record<string, unknown>> {
  return server
    .output()
    .split("\n")
    .flatMap((line) => {
      if (!line.startsWith("{")) return [];
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

const n = (value: number) => value.toLocaleString("en-US");

function printReport(r: {
  records: number;
  vocabulary: number;
  setupSeconds: number;
  machine: { cores: number; loadAverage1m: { start: number; end: number } };
  snapshot: WayResult;
  vectraFiles: WayResult;
  inProcess: { openMs: number; firstSearchMs: number; warmSearchMs: number };
  snapshotRewritten: boolean;
  baselineOverSnapshot: number;
  target: { firstSimilarMs: number; met: boolean };
  totalSeconds: number;
}): void {
  console.log(
    `start: the first \`/talos similar\` after \`node dist/main.js\` starts (what \`npm start\` runs), on a repository memory of ${n(r.records)} issues`,
  );
  console.log(
    `  memory: ${n(r.records)} made-up issues (a title and 2-3 sentences from ${r.vocabulary} words, seeded), the local embedder (no OPENAI_API_KEY), added ${n(CHUNK)} at a time; setup ${r.setupSeconds.toFixed(1)} s, untimed`,
  );
  console.log(
    "  reply = from just before the signed issue_comment webhook is sent to the GitHub stand-in receiving the reply's POST; the store opens within it, on first use",
  );
  console.log(
    "  snapshot: the memory as flushed (snapshot.json and its files next to the vectra files); vectra files only: snapshot.json deleted, so the store decodes the vectra files",
  );
  console.log(
    '  listen = from spawning the server to its "Listening on" log line; warm = a second `/talos similar` (another issue) right after the first',
  );
  console.log(
    "  the memory's files were just written, so they are in the page cache, as after a restart but not after a reboot",
  );
  console.log(
    `  ${r.machine.cores} cores; 1-minute load average ${r.machine.loadAverage1m.start.toFixed(1)} at the start, ${r.machine.loadAverage1m.end.toFixed(1)} at the end\n`,
  );
  const row = (way: string, which: string, s: SimilarResult, listenMs?: number) => ({
    way,
    similar: which,
    "listen ms": listenMs ?? "-",
    "ack ms": s.ackMs,
    "reply ms": s.replyMs,
    "to the 👀 ms": s.phases.beforeCommandMs,
    "command ms": s.phases.commandMs,
    "reply write ms": s.phases.replyWriteMs,
    "issues named": s.named.map((x) => `#${x}`).join(" "),
    "names the duplicate": s.namesDuplicate ? "yes" : "no",
  });
  printTable([
    row("snapshot", "first", r.snapshot.first, r.snapshot.listenMs),
    ...(r.snapshot.warm ? [row("snapshot", "warm", r.snapshot.warm)] : []),
    row("vectra files only", "first", r.vectraFiles.first, r.vectraFiles.listenMs),
  ]);
  console.log(
    "\n  to the 👀 = the job's start, the installation token, .github/talos.yml and the command's parse, up to the reaction;",
  );
  console.log(
    "  command = from the reaction to the reply's lookup of the thread: the store opened (on first use) and searched",
  );
  const p = r.inProcess;
  console.log(
    `  the command's part in this process, same registry and embedder: open ${n(Math.round(p.openMs))} ms, first search ${n(Math.round(p.firstSearchMs))} ms (it loads the keyword and near-duplicate indexes from the segments' words files, and counts the last segment's texts), second search ${n(Math.round(p.warmSearchMs))} ms`,
  );
  console.log(
    `\nvectra files only ÷ snapshot, first reply: ${r.baselineOverSnapshot.toFixed(1)}×; snapshot rewritten by the fallback: ${r.snapshotRewritten ? "yes" : "no"}`,
  );
  console.log(
    `target: first \`/talos similar\` within ${n(r.target.firstSimilarMs)} ms at ${n(r.records)} records: ${r.target.met ? "met" : "NOT met"} (${n(Math.round(r.snapshot.first.replyMs))} ms)`,
  );
  console.log(`total ${r.totalSeconds.toFixed(0)} s`);
}

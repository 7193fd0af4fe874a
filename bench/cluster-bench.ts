import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { startGitHubStandIn, type GitHubStandIn } from "../test/helpers/github-stand-in.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../test/helpers/openai-stand-in.js";
import {
  buildDist,
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../test/helpers/server-process.js";
import {
  freshSchema,
  deleteKeys,
  dropSchema,
  postgresAnswers,
  redisAnswers,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "../test/helpers/shared-services.js";
import { loadFixture, TEST_WEBHOOK_SECRET } from "../test/helpers/test-app.js";
import { printTable, summarize } from "./stats.js";

// The scale-out issue's burst: 300 `/talos ask` commands over 30 issues in 10 installations,
// each answered by a model that takes 200 ms, sent to 1 and then 3 instances on one Redis.
export interface ClusterBenchOptions {
  json: boolean;
  /** 10 installations of 3 issues of 10 commands by default: 300 in all. */
  installations?: number;
  threadsPerInstallation?: number;
  eventsPerThread?: number;
}

interface Sizes {
  installations: number;
  threadsPerInstallation: number;
  eventsPerThread: number;
}
const MODEL_LATENCY_MS = 200;
// GitHub's write spacing per installation, which Talos keeps cluster-wide (Bottleneck over
// Redis). GitHub asks for 1 s between writes; with that, an installation's 30 replies take 30 s
// however many instances run, and the burst measures the spacing, not the instances.
const WRITE_SPACING_MS = 50;
const TARGET_RATIO = 2.4;
const ANSWER = "X fails because its config file is missing.";
const REPLY_BOUND_MS = 120_000;

interface Planned {
  delivery: string;
  installation: number;
  repo: string;
  number: number;
  commentId: number;
}

interface RunResult {
  instances: number;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  duplicates: number;
  missing: number;
  /** The most writes of one installation that GitHub received in one second, all instances together. */
  busiestSecond: number;
  jobsByInstance: number[];
  /** CPU seconds each instance used during the burst (user and system, from /proc). */
  cpuSecondsByInstance: number[];
  /**
   * Where the machine's CPU went during the burst: every core's busy seconds, and those of the
   * shared services and of this process (the GitHub and OpenAI stand-ins and the senders).
   */
  machine: { busySeconds: number; redis: number; postgres: number; bench: number };
}

/** Every core's busy seconds so far, from /proc/stat (Linux); NaN elsewhere. */
function machineBusySeconds(): number {
  try {
    const [, user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8")
      .split("\n")[0]!
      .trim()
      .split(/\s+/)
      .map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The CPU seconds so far of every process named `name` (redis-server, postgres). */
function processSeconds(name: string): number {
  let total = 0;
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === name)
        total += cpuSeconds(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return total;
}

/** What `machine` reports, so far. */
function machineCpu() {
  const own = process.cpuUsage();
  return {
    busySeconds: machineBusySeconds(),
    redis: processSeconds("redis-server"),
    postgres: processSeconds("postgres"),
    bench: (own.user + own.system) / 1e6,
  };
}

/** A process's CPU seconds so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime, fields 14 and 15 of the whole line, in clock ticks (100 a second).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The burst of run `run`: its own issues, comments and deliveries, so runs do not meet. */
function plan(run: number, sizes: Sizes): Planned[] {
  const threads: Planned[][] = [];
  for (let i = 0; i < sizes.installations; i++)
    for (let t = 0; t < sizes.threadsPerInstallation; t++)
      threads.push(
        Array.from({ length: sizes.eventsPerThread }, () => ({
          delivery: "",
          installation: 1_000 + i,
          repo: `org-${i}/repo-${i}`,
          number: 100 * (run + 1) + t,
          commentId: 0,
        })),
      );
  // Interleaved: the first event of every thread, then the second, …
  const events: Planned[] = [];
  for (let e = 0; e < sizes.eventsPerThread; e++)
    for (const thread of threads) events.push(thread[e]!);
  return events.map((event, i) => ({
    ...event,
    delivery: `burst-${run}-${i}`,
    commentId: 900_000 + run * 10_000 + i,
  }));
}

function payloadOf(event: Planned) {
  const payload = loadFixture<{
    comment: { id: number; body: string };
    issue: { number: number };
    installation: { id: number };
    repository: { id: number; name: string; full_name: string; owner: { login: string } };
  }>("issue_comment.created.help.json");
  const [owner, name] = event.repo.split("/") as [string, string];
  payload.comment.id = event.commentId;
  payload.comment.body = `/talos ask why does X fail? (${event.delivery})`;
  payload.issue.number = event.number;
  payload.installation.id = event.installation;
  payload.repository = {
    ...payload.repository,
    id: event.installation * 10,
    name,
    full_name: event.repo,
    owner: { ...payload.repository.owner, login: owner },
  };
  return payload;
}

async function runBurst(
  count: number,
  sizes: Sizes,
  github: GitHubStandIn,
  llm: OpenAIStandIn,
  cwd: string,
  withDatabase: boolean,
): Promise<RunResult> {
  const prefix = `talos-bench-${randomUUID()}`;
  // A schema of its own per burst: memory and budgets start empty, as the journal does.
  const schema = freshSchema("talos_bench");
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const env = await standInServerEnv(github.host, {
        OPENAI_API_KEY: "sk-bench-cluster-0123456789abcdef",
        OPENAI_BASE_URL: llm.baseUrl,
        TALOS_MODEL: "local-model",
        REDIS_URL: TEST_REDIS_URL,
        TALOS_REDIS_PREFIX: prefix,
        ...(withDatabase ? { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema } : {}),
        TALOS_GITHUB_WRITE_INTERVAL_MS: String(WRITE_SPACING_MS),
        TALOS_GITHUB_NOTIFICATION_INTERVAL_MS: String(WRITE_SPACING_MS),
        TALOS_AUTOMATION_MAX_PER_HOUR: "1000000",
        // Steady state: the repositories' first events would backfill their new memories.
        TALOS_BACKFILL_MAX: "0",
        LOG_LEVEL: "info",
      });
      servers.push(await startServerProcess(env, { cwd }));
    }
    const events = plan(count, sizes);
    const sentAt = new Map<number, number>();
    const writesBefore = github.writes().length;
    const cpuBefore = servers.map((server) => cpuSeconds(server.child.pid));
    const machineBefore = machineCpu();
    const start = performance.now();
    // One sender per thread, each sending its thread's events in order (acknowledged before the
    // next), to the instances in turn: a burst that keeps each issue's order.
    const byThread = new Map<string, Planned[]>();
    for (const event of events) {
      const key = `${event.repo}#${event.number}`;
      byThread.set(key, [...(byThread.get(key) ?? []), event]);
    }
    let next = 0;
    await Promise.all(
      [...byThread.values()].map(async (thread) => {
        for (const event of thread) {
          const server = servers[next++ % servers.length]!;
          sentAt.set(event.commentId, Date.now());
          const res = await sendWebhook(
            server.url,
            { id: event.delivery, event: "issue_comment", payload: payloadOf(event) },
            { secret: TEST_WEBHOOK_SECRET },
          );
          if (res.status !== 200) throw new Error(`${event.delivery}: answered ${res.status}`);
        }
      }),
    );
    const replyOf = (event: Planned) =>
      (github.comments.get(`${event.repo}#${event.number}`) ?? []).filter((c) =>
        c.body.endsWith(`<!-- talos:reply:${event.commentId} -->`),
      );
    const deadline = Date.now() + REPLY_BOUND_MS;
    while (!events.every((e) => replyOf(e).length > 0) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    const seconds = (performance.now() - start) / 1000;
    const cpuSecondsByInstance = servers.map(
      (server, i) => cpuSeconds(server.child.pid) - cpuBefore[i]!,
    );
    const machineAfter = machineCpu();
    const machine = {
      busySeconds: machineAfter.busySeconds - machineBefore.busySeconds,
      redis: machineAfter.redis - machineBefore.redis,
      postgres: machineAfter.postgres - machineBefore.postgres,
      bench: machineAfter.bench - machineBefore.bench,
    };
    // Late copies would show within a poll interval or two.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const writes = github
      .writes()
      .slice(writesBefore)
      .filter((w) => w.method === "POST" && /\/issues\/\d+\/comments$/.test(w.path));
    const postedAt = new Map<number, number>();
    for (const write of writes) {
      const id = /talos:reply:(\d+)/.exec(String((write.body as { body?: string })?.body))?.[1];
      if (id && !postedAt.has(Number(id))) postedAt.set(Number(id), write.at);
    }
    const latencies = events.flatMap((e) => {
      const posted = postedAt.get(e.commentId);
      return posted === undefined ? [] : [posted - sentAt.get(e.commentId)!];
    });
    // The spacing is granted cluster-wide before each write is sent; what reaches GitHub jitters
    // with each instance's event loop. So: the most writes of one installation in any second.
    let busiestSecond = 0;
    for (let i = 0; i < sizes.installations; i++) {
      const times = github
        .writes()
        .slice(writesBefore)
        .filter((w) => w.installation === 1_000 + i)
        .map((w) => w.at)
        .sort((a, b) => a - b);
      for (let j = 0, k = 0; j < times.length; j++) {
        while (times[j]! - times[k]! >= 1_000) k++;
        busiestSecond = Math.max(busiestSecond, j - k + 1);
      }
    }
    const latency = summarize(latencies);
    const jobsByInstance = servers.map(
      (s) =>
        s
          .output()
          .split("\n")
          .filter(
            (line) =>
              line.includes('"msg":"job finished"') && line.includes(`"delivery":"burst-${count}-`),
          ).length,
    );
    return {
      instances: count,
      events: events.length,
      seconds,
      eventsPerSecond: events.length / seconds,
      latencyP50Ms: latency.p50,
      latencyP99Ms: latency.p99,
      duplicates: events.reduce((sum, e) => sum + Math.max(0, replyOf(e).length - 1), 0),
      missing: events.filter((e) => replyOf(e).length === 0).length,
      busiestSecond,
      jobsByInstance,
      cpuSecondsByInstance,
      machine,
    };
  } finally {
    for (const server of servers) await server.kill("SIGTERM").catch(() => undefined);
    await deleteKeys(prefix);
    if (withDatabase) await dropSchema(schema);
  }
}

export async function runClusterBench({
  json,
  installations = 10,
  threadsPerInstallation = 3,
  eventsPerThread = 10,
}: ClusterBenchOptions) {
  const sizes = { installations, threadsPerInstallation, eventsPerThread };
  if (!(await redisAnswers())) {
    const skipped = {
      skipped: `Redis does not answer at ${TEST_REDIS_URL}: start redis-server (or set TALOS_TEST_REDIS_URL) to run the cluster bench`,
    };
    if (!json) console.log(skipped.skipped);
    return skipped;
  }
  // The deployment the README describes: memory and budgets in PostgreSQL, where it answers.
  const withDatabase = await postgresAnswers();
  const loadAtStart = loadavg()[0]!;
  buildDist();
  const github = await startGitHubStandIn();
  const llm = await startOpenAIStandIn();
  llm.fallback({ content: ANSWER });
  llm.latency(MODEL_LATENCY_MS);
  const cwd = makeWorkDir();
  try {
    const one = await runBurst(1, sizes, github, llm, cwd, withDatabase);
    const three = await runBurst(3, sizes, github, llm, cwd, withDatabase);
    const ratio = three.eventsPerSecond / one.eventsPerSecond;
    const result: ClusterResult = {
      events: one.events,
      installations,
      threads: installations * threadsPerInstallation,
      modelLatencyMs: MODEL_LATENCY_MS,
      writeSpacingMs: WRITE_SPACING_MS,
      cores: cpus().length,
      loadAtStart,
      services: withDatabase ? "Redis and PostgreSQL" : "Redis",
      runs: [one, three],
      ratio,
      targets: {
        duplicates: {
          target: 0,
          measured: one.duplicates + three.duplicates,
          met: one.duplicates + three.duplicates === 0 && one.missing + three.missing === 0,
        },
        throughputRatio: { target: TARGET_RATIO, measured: ratio, met: ratio >= TARGET_RATIO },
      },
    };
    if (!json) printReport(result);
    return result;
  } finally {
    await github.close();
    await llm.close();
  }
}

interface ClusterResult {
  events: number;
  installations: number;
  threads: number;
  modelLatencyMs: number;
  writeSpacingMs: number;
  cores: number;
  loadAtStart: number;
  /** Redis for the jobs; PostgreSQL, when it answers, for the memory and the budgets. */
  services: string;
  runs: RunResult[];
  ratio: number;
  targets: {
    duplicates: { target: number; measured: number; met: boolean };
    throughputRatio: { target: number; measured: number; met: boolean };
  };
}

function printReport(r: ClusterResult) {
  console.log(
    `cluster: ${r.events} /talos ask over ${r.threads} issues in ${r.installations} installations, model ${r.modelLatencyMs} ms, writes spaced ${r.writeSpacingMs} ms per installation (cluster-wide), on ${r.services}, ${r.cores} cores, load ${r.loadAtStart.toFixed(2)} at start`,
  );
  printTable(
    r.runs.map((run) => ({
      instances: run.instances,
      "events/s": run.eventsPerSecond.toFixed(1),
      "burst s": run.seconds.toFixed(2),
      "latency p50 ms": run.latencyP50Ms.toFixed(0),
      "latency p99 ms": run.latencyP99Ms.toFixed(0),
      duplicates: run.duplicates,
      missing: run.missing,
      "writes/s of an installation, most": run.busiestSecond,
      "jobs per instance": run.jobsByInstance.join(" / "),
      "CPU s per instance": run.cpuSecondsByInstance.map((c) => c.toFixed(1)).join(" / "),
    })),
  );
  // Whether the machine, not Talos, bounds the throughput: how busy its cores were, and with what.
  console.log(
    "\nthe machine during each burst (CPU seconds; the stand-ins run in the bench's own process)",
  );
  printTable(
    r.runs.map((run) => {
      const instances = run.cpuSecondsByInstance.reduce((a, b) => a + b, 0);
      const { busySeconds, redis, postgres, bench } = run.machine;
      return {
        instances: run.instances,
        "cores busy": `${((100 * busySeconds) / (r.cores * run.seconds)).toFixed(0)}%`,
        "busy s": busySeconds.toFixed(1),
        Talos: instances.toFixed(1),
        PostgreSQL: postgres.toFixed(1),
        Redis: redis.toFixed(1),
        "bench and stand-ins": bench.toFixed(1),
        other: (busySeconds - instances - postgres - redis - bench).toFixed(1),
        "CPU ms per command, all": ((1000 * busySeconds) / run.events).toFixed(0),
      };
    }),
  );
  const { duplicates, throughputRatio } = r.targets;
  console.log(
    `\ntarget 0 duplicate replies (and none missing): ${duplicates.met ? "met" : "not met"} (${duplicates.measured})`,
  );
  console.log(
    `target 3 instances ≥ ${throughputRatio.target}× the throughput of 1: ${throughputRatio.met ? "met" : "not met"} (${throughputRatio.measured.toFixed(2)}×)`,
  );
}

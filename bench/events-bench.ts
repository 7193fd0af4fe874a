import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { createWriteStream, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { pino, type Logger } from "pino";
import { Probot, ProbotOctokit, type Context } from "probot";
import { parseEnv } from "../src/config.js";
import { createTalos } from "../src/index.js";
import { loadFixture } from "../test/helpers/test-app.js";
import { webhookExample } from "../test/helpers/webhook-examples.js";
import { printTable, summarize } from "./stats.js";
import { seededRandom } from "../test/helpers/seeded-random.js";

// The targets of the soak: Talos's own time per event, and a heap that stops growing.
const TARGET_P50_MS = 5;
const TARGET_HEAP_GROWTH = 0.1;
const EVENTS = 20_000;
const IN_FLIGHT = 16;
// The one-at-a-time pass runs on the first deliveries of the plan, this many at most.
const SEQUENTIAL = 2_000;
const RECENT_ISSUES = 50;
const REPOS = [
  { installation: 2, owner: "acme", name: "one", id: 7001 },
  { installation: 2, owner: "acme", name: "two", id: 7002 },
  { installation: 3, owner: "globex", name: "three", id: 7003 },
];
const LABELS = ["bug", "documentation", "question", "enhancement"];
// Pull requests are only remembered here, as before summaries existed: the baseline app must
// make the same requests, and `npm run bench -- review` measures pull-request work.
const CONFIG = [
  "triage:\n  enabled: true\n  apply_labels: true",
  "similar:\n  enabled: true",
  "automation:\n  max_runs_per_hour: 1000000",
  "pull_requests:\n  enabled: false",
  "review:\n  on_push: false",
  "",
].join("\n");
const STAND_IN = new URL("../test/helpers/github-stand-in.ts", import.meta.url).href;

/** One cycle of 20 deliveries, in a shuffled order per cycle. */
const MIX = {
  "/talos help": 3,
  "/talos ask": 2,
  "plain comment": 4,
  "issues.opened": 2,
  "issues.edited": 2,
  "issues.closed": 1,
  "pull_request.opened": 1,
  "issues.labeled": 1,
  "label.created": 1,
  "bot comment": 2,
  "bot issues.opened": 1,
} as const;
type Kind = keyof typeof MIX;
const KINDS = Object.keys(MIX) as Kind[];
const CYCLE = KINDS.flatMap((kind) => Array<Kind>(MIX[kind]).fill(kind));
const OPENS: Kind[] = ["issues.opened", "bot issues.opened", "pull_request.opened"];
const TOPICS = [
  ["Crash on start without a config file", "Starting it without `.github/talos.yml` crashes."],
  ["Windows build fails", "The build fails on Windows with a path error in the bundler."],
  ["Docs: the install page is out of date", "The install page still names the old command."],
  ["Memory grows after a day", "RSS grows by 200 MB a day on our server."],
  ["Add a dark theme", "Please add a dark theme to the dashboard."],
  ["Login times out behind a proxy", "Behind our proxy, login times out after 30 s."],
] as const;

export interface EventsBenchOptions {
  json: boolean;
  /** Deliveries per app; 20,000 by default. Tests pass fewer. */
  events?: number;
  /** Deliveries in flight at once (received, and not yet done); 16 by default. */
  inFlight?: number;
}

/** One delivery of the plan: what it is, where, and about which issue. */
interface PlannedEvent {
  kind: Kind;
  repo: number;
  number: number;
}

/**
 * Per delivery: the time spent waiting on GitHub or the model (overlapping waits counted once),
 * and in the Talos run the requests it sent, for the baseline to send the same.
 */
interface EventTiming {
  index: number;
  waiting: number;
  waitStart: number;
  waitedMs: number;
  requests: RecordedRequest[] | undefined;
}

type RecordedRequest = [
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
];

/**
 * The deliveries: the mix in a shuffled order per cycle of 20, over three repositories; openings
 * take the next number, everything else is about one of the repository's 50 latest issues.
 */
function planEvents(count: number): { plan: PlannedEvent[]; last: number[] } {
  const random = seededRandom(20_261_124);
  const last = REPOS.map(() => RECENT_ISSUES);
  const plan: PlannedEvent[] = [];
  let cycle: Kind[] = [];
  for (let i = 0; i < count; i++) {
    if (cycle.length === 0) cycle = shuffle([...CYCLE], random);
    const kind = cycle.pop()!;
    const repo = Math.floor(random() * REPOS.length);
    const number = OPENS.includes(kind)
      ? ++last[repo]!
      : last[repo]! - Math.floor(random() * RECENT_ISSUES);
    plan.push({ kind, repo, number });
  }
  return { plan, last };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** A webhook payload, reshaped freely as tests do. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Payload = Record<string, any>;

/** Payload templates, read once; deliveries are shallow copies that share the rest. */
function createPayloads() {
  const comment = loadFixture<Payload>("issue_comment.created.help.json");
  const opened = webhookExample("issues", "opened");
  const edited = webhookExample("issues", "edited");
  const pull = webhookExample("pull_request", "opened");
  const labeled = webhookExample("issues", "labeled");
  const label = webhookExample("label", "created");
  const human = comment.sender as Record<string, unknown>;
  const bot = { ...human, login: "renovate[bot]", type: "Bot" };
  const repositories = REPOS.map((repo) => ({
    ...(comment.repository as object),
    id: repo.id,
    name: repo.name,
    full_name: `${repo.owner}/${repo.name}`,
    owner: { ...(comment.repository.owner as object), login: repo.owner },
  }));

  return (index: number, { kind, repo, number }: PlannedEvent) => {
    const ref = REPOS[repo]!;
    const [title, text] = TOPICS[number % TOPICS.length]!;
    const common = { repository: repositories[repo], installation: { id: ref.installation } };
    const htmlUrl = `https://github.com/${ref.owner}/${ref.name}/issues/${number}`;
    const issue = (template: Payload, body: string, user = template.user, comments = 0) => ({
      ...template,
      number,
      title: `${title} (${number})`,
      body,
      html_url: htmlUrl,
      user,
      comments,
      labels: [],
    });
    const commentOn = (body: string, association: string, sender: object) => ({
      name: "issue_comment",
      payload: {
        ...comment,
        ...common,
        issue: issue(comment.issue, text, comment.issue.user, 1),
        comment: {
          ...comment.comment,
          id: 90_000_000 + index,
          body,
          author_association: association,
          html_url: `${htmlUrl}#issuecomment-${90_000_000 + index}`,
          created_at: "2026-11-24T12:00:00Z",
          user: sender,
        },
        sender,
      },
    });
    // `bench-event-N` in what the model reads charges its time to delivery N.
    switch (kind) {
      case "/talos help":
        return commentOn("/talos help", "MEMBER", human);
      case "/talos ask":
        return commentOn(
          `/talos ask why does this happen? (bench-event-${index})`,
          "MEMBER",
          human,
        );
      case "plain comment":
        return commentOn("Same here, on version 2.3. Any news?", "NONE", human);
      case "bot comment":
        return commentOn("/talos help", "NONE", bot);
      case "issues.opened":
      case "bot issues.opened": {
        const sender = kind === "bot issues.opened" ? bot : opened.sender;
        const body = `${text}\n\n(bench-event-${index})`;
        return {
          name: "issues",
          payload: { ...opened, ...common, issue: issue(opened.issue, body, sender), sender },
        };
      }
      case "issues.edited":
      case "issues.closed": {
        const closed = kind === "issues.closed";
        return {
          name: "issues",
          payload: {
            ...edited,
            changes: closed ? undefined : edited.changes,
            ...common,
            action: closed ? "closed" : "edited",
            issue: { ...issue(edited.issue, `${text} Edited.`), state: closed ? "closed" : "open" },
          },
        };
      }
      case "pull_request.opened":
        return {
          name: "pull_request",
          payload: {
            ...pull,
            ...common,
            number,
            pull_request: { ...issue(pull.pull_request, text), html_url: htmlUrl },
          },
        };
      case "issues.labeled":
        return {
          name: "issues",
          payload: { ...labeled, ...common, issue: issue(labeled.issue, text) },
        };
      case "label.created":
        return { name: "label", payload: { ...label, ...common } };
    }
  };
}

/**
 * A language model that answers at once: triage proposes a label, every other question gets a
 * short Markdown answer, one in two after a `search_issues` call. Its time is charged to the
 * delivery whose marker the prompt carries.
 */
class BenchModel extends BaseChatModel {
  calls = 0;
  unattributedMs = 0;
  readonly #timingOf: (text: string) => EventTiming | undefined;

  constructor(timingOf: (text: string) => EventTiming | undefined) {
    super({});
    this.#timingOf = timingOf;
  }

  _llmType() {
    return "bench";
  }

  override bindTools() {
    return this;
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    const start = performance.now();
    this.calls++;
    const text = messages.map((m) => (typeof m.content === "string" ? m.content : "")).join("\n");
    const timing = this.#timingOf(text);
    const triage = String(messages[1]?.content).includes("propose_labels");
    const called = messages.some((m) => m.getType() === "tool");
    const reply = (content: string, toolCall?: { name: string; args: Record<string, unknown> }) =>
      new AIMessage({
        content,
        tool_calls: toolCall ? [{ ...toolCall, id: `call_${this.calls}` }] : [],
        // OpenAI reports usage, so Talos charges budgets from it rather than counting tokens.
        usage_metadata: {
          input_tokens: Math.ceil(text.length / 4),
          output_tokens: Math.ceil(content.length / 4) + 10,
          total_tokens: Math.ceil(text.length / 4) + Math.ceil(content.length / 4) + 10,
        },
      });
    const message = triage
      ? called
        ? reply("Proposed.")
        : reply("", { name: "propose_labels", args: { labels: ["bug"], reason: "a crash" } })
      : !called && (timing?.index ?? 0) % 2 === 1
        ? reply("", { name: "search_issues", args: { query: "crash config" } })
        : reply(
            "**Short answer:** the config file is missing.\n\n- add `.github/talos.yml`\n- restart the server",
          );
    const elapsed = performance.now() - start;
    if (timing && timing.waiting === 0) timing.waitedMs += elapsed;
    else if (!timing) this.unattributedMs += elapsed;
    return { generations: [{ text: "", message }] };
  }
}

/** The GitHub stand-in (test/helpers/github-stand-in.ts) in a child process of its own. */
interface StandInProcess {
  url: string;
  stats(): Promise<{
    requests: number;
    /** Requests to /app routes: the app's identity and installation tokens. */
    app: number;
    byStatus: Record<string, number>;
    writes: number;
  }>;
  close(): Promise<void>;
}

const CHILD = `
const { startGitHubStandIn } = await import(${JSON.stringify(STAND_IN)});
const github = await startGitHubStandIn();
process.on("message", async (message) => {
  if (message.type === "setup") {
    for (const [repo, path, text] of message.files) github.setFile(repo, path, text);
    for (const [repo, names] of message.labels) github.labels.set(repo, names);
    for (const [key, issue] of message.issues) github.issues.set(key, issue);
    process.send({ type: "ready" });
  } else if (message.type === "stats") {
    const byStatus = {};
    for (const r of github.requests) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    const app = github.requests.filter((r) => r.path.startsWith("/app")).length;
    process.send({ type: "stats", requests: github.requests.length, app, byStatus, writes: github.writes().length });
  } else if (message.type === "close") {
    await github.close();
    process.disconnect();
  }
});
process.send({ type: "url", url: github.url });
`;

function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string }) => {
      if (message.type !== type) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve(message as T);
    };
    const onExit = (code: number | null) =>
      reject(new Error(`the GitHub stand-in exited (${code})`));
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

async function startStandInProcess(last: number[]): Promise<StandInProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const { url } = await nextMessage<{ url: string }>(child, "url");
  const issues = REPOS.flatMap((repo, r) =>
    Array.from({ length: last[r]! }, (_, i) => {
      const number = i + 1;
      const [title, body] = TOPICS[number % TOPICS.length]!;
      return [
        `${repo.owner}/${repo.name}#${number}`,
        {
          number,
          title: `${title} (${number})`,
          body,
          state: "open",
          user: { login: "Codertocat" },
          labels: [],
        },
      ];
    }),
  );
  child.send({
    type: "setup",
    files: REPOS.map((repo) => [`${repo.owner}/${repo.name}`, ".github/talos.yml", CONFIG]),
    labels: REPOS.map((repo) => [`${repo.owner}/${repo.name}`, LABELS]),
    issues,
  });
  await nextMessage(child, "ready");
  return {
    url,
    stats: async () => {
      const reply = nextMessage<Awaited<ReturnType<StandInProcess["stats"]>>>(child, "stats");
      child.send({ type: "stats" });
      return reply;
    },
    close: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.send({ type: "close" });
      await exited;
    },
  };
}

/** Waits on GitHub and the model, overlapping ones counted once. */
function beginWait(timing: EventTiming): void {
  if (timing.waiting++ === 0) timing.waitStart = performance.now();
}
function endWait(timing: EventTiming): void {
  if (--timing.waiting === 0) timing.waitedMs += performance.now() - timing.waitStart;
}

/** The delivery a GitHub client's requests are charged to, once it is known. */
interface Charge {
  timing?: EventTiming | undefined;
}
const CHARGES = new WeakMap<object, Charge>();
// Requests outside /app that no delivery was charged for: their time counts as overhead.
const UNCHARGED = { requests: 0 };

/**
 * A fetch whose time, until the body is read, is charged to one delivery; in the Talos run it
 * also records the request (not the installation-token ones, which each app makes for itself).
 */
function timedFetch(charge: Charge, base: string): typeof fetch {
  return async (input, init) => {
    const timing = charge.timing;
    if (timing) beginWait(timing);
    try {
      const url = String(input instanceof Request ? input.url : input);
      const path = url.slice(base.length);
      if (!timing && !path.startsWith("/app")) UNCHARGED.requests++;
      if (timing?.requests && !path.startsWith("/app")) {
        const headers = (init?.headers ?? {}) as Record<string, string>;
        const kept: Record<string, string> = {};
        for (const name of ["accept", "if-none-match"])
          if (headers[name]) kept[name] = headers[name];
        const method = init?.method ?? "GET";
        timing.requests.push(
          typeof init?.body === "string" ? [method, path, kept, init.body] : [method, path, kept],
        );
      }
      const response = await fetch(input, init);
      const body =
        response.status === 204 || response.status === 304 ? null : await response.arrayBuffer();
      const copy = new Response(body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
      Object.defineProperty(copy, "url", { value: response.url });
      return copy;
    } finally {
      if (timing) endWait(timing);
    }
  };
}

/**
 * Probot's Octokit class with a fetch per client. Probot makes a client per delivery and
 * handler, and `chargeDelivery` says which delivery it serves. (An AsyncLocalStorage would
 * follow Talos's jobs wrongly, and its promise hooks slow every app down.)
 */
function chargingOctokit(Base: typeof ProbotOctokit, base: string): typeof ProbotOctokit {
  return class extends Base {
    // A mixin's constructor must take `any[]`.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    constructor(...args: any[]) {
      const options = (args[0] ?? {}) as { request?: Record<string, unknown> };
      const charge: Charge = {};
      super({ ...options, request: { ...options.request, fetch: timedFetch(charge, base) } });
      CHARGES.set(this, charge);
    }
  } as typeof ProbotOctokit;
}

/** Binds the client of a delivery's context to its timing; the id ends with its index. */
function chargeDelivery(context: { id: string; octokit: object }, live: Map<number, EventTiming>) {
  const charge = CHARGES.get(context.octokit);
  if (charge) charge.timing = live.get(Number(context.id.slice(context.id.indexOf("-") + 1)));
}

/** `global.gc`, from `--expose-gc` or switched on here through V8's flags. */
function findGc(): { gc: (() => void) | undefined; how: string } {
  if (typeof globalThis.gc === "function") return { gc: globalThis.gc, how: "--expose-gc" };
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    if (typeof gc === "function") return { gc: gc as () => void, how: "v8.setFlagsFromString" };
  } catch {
    // Measured without a collection then; the result says so.
  }
  return { gc: undefined, how: "none (heap measured without a forced collection)" };
}

/** fdatasync and fsync calls and appended bytes, per file, counted on FileHandle's prototype. */
async function countFileSyncs(directory: string) {
  const probe = join(directory, "probe");
  const handle = await open(probe, "w");
  const proto = Object.getPrototypeOf(handle) as Record<
    string,
    (this: { fd: number }, ...args: unknown[]) => Promise<unknown>
  >;
  await handle.close();
  const counts = {
    journalSyncs: 0,
    journalBytes: 0,
    memorySyncs: 0,
    budgetSyncs: 0,
    otherSyncs: 0,
  };
  // Which file a handle writes, read once per handle from /proc (Linux).
  const kinds = new WeakMap<object, string>();
  const where = (handle: { fd: number }) => {
    let kind = kinds.get(handle);
    if (kind) return kind;
    try {
      const path = readlinkSync(`/proc/self/fd/${handle.fd}`);
      kind = path.includes(`${sep}jobs`)
        ? "journal"
        : path.includes("memory")
          ? "memory"
          : path.includes("budgets")
            ? "budgets"
            : "other";
    } catch {
      kind = "other";
    }
    kinds.set(handle, kind);
    return kind;
  };
  const original = { datasync: proto.datasync!, sync: proto.sync!, appendFile: proto.appendFile! };
  const count = (handle: { fd: number }) => {
    const file = where(handle);
    if (file === "journal") counts.journalSyncs++;
    else if (file === "memory") counts.memorySyncs++;
    else if (file === "budgets") counts.budgetSyncs++;
    else counts.otherSyncs++;
  };
  proto.datasync = function (this: { fd: number }) {
    count(this);
    return original.datasync.call(this);
  };
  proto.sync = function (this: { fd: number }) {
    count(this);
    return original.sync.call(this);
  };
  proto.appendFile = function (this: { fd: number }, data: unknown, ...rest: unknown[]) {
    if (where(this) === "journal") counts.journalBytes += Buffer.byteLength(String(data));
    return original.appendFile.call(this, data, ...rest);
  };
  return {
    counts,
    restore: () => Object.assign(proto, original),
  };
}

interface Checkpoint {
  events: number;
  rssMb: number;
  heapUsedMb: number;
  /** ArrayBuffers outside the heap: the memory stores' vectors, mostly. */
  arrayBuffersMb: number;
  /** Records in memory, and the open stores' estimated RAM: data Talos keeps on purpose. */
  memoryRecords: number;
  openMemoryMb: number;
  cacheEntries: number;
  cacheMb: number;
}

interface AppRun {
  overheads: Float64Array;
  failures: number;
  wallMs: number;
  cpuMs: number;
  checkpoints: Checkpoint[];
}

interface Delivery {
  name: string;
  payload: object;
}

/**
 * Sends the plan with `inFlight` deliveries at once: a slot sends one, waits until it is done
 * (its job has run, or `receive` resolved when there is no job), then sends the next. At each
 * checkpoint, every slot drains, then `measure` runs.
 */
async function drive(options: {
  plan: PlannedEvent[];
  inFlight: number;
  live: Map<number, EventTiming>;
  record: boolean;
  deliver: (index: number, delivery: Delivery) => Promise<void>;
  finished?: (timing: EventTiming) => void;
  checkpoints: number[];
  measure?: (events: number) => Promise<Checkpoint>;
}): Promise<AppRun> {
  const { plan, live } = options;
  const payloadOf = createPayloads();
  const overheads = new Float64Array(plan.length);
  const checkpoints: Checkpoint[] = [];
  let failures = 0;
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (const end of options.checkpoints) {
    const slot = async () => {
      while (next < end) {
        const index = next++;
        const delivery = payloadOf(index, plan[index]!);
        const timing: EventTiming = {
          index,
          waiting: 0,
          waitStart: 0,
          waitedMs: 0,
          requests: options.record ? [] : undefined,
        };
        live.set(index, timing);
        const start = performance.now();
        try {
          await options.deliver(index, delivery);
        } catch {
          failures++;
        }
        overheads[index] = performance.now() - start - timing.waitedMs;
        live.delete(index);
        options.finished?.(timing);
      }
    };
    await Promise.all(Array.from({ length: options.inFlight }, slot));
    if (options.measure) checkpoints.push(await options.measure(end));
  }
  const usage = process.cpuUsage(cpu);
  return {
    overheads,
    failures,
    wallMs: performance.now() - started,
    cpuMs: (usage.user + usage.system) / 1000,
    checkpoints,
  };
}

/** Errors logged during a run: how many, and the first few distinct messages. */
interface ErrorLog {
  count: number;
  first: string[];
}

function createLog(): { log: Logger; errors: ErrorLog } {
  const errors: ErrorLog = { count: 0, first: [] };
  // A server logs at info: the lines are made and written, to /dev/null. Errors are counted.
  const log = pino(
    {
      level: "info",
      hooks: {
        logMethod(args, method, level) {
          if (level >= 50) {
            errors.count++;
            const [fields, message] = args as unknown[];
            const err = (fields as { err?: { message?: string } } | undefined)?.err;
            const line = `${String(message)}${err?.message ? `: ${err.message}` : ""}`.slice(
              0,
              300,
            );
            if (errors.first.length < 3 && !errors.first.includes(line)) errors.first.push(line);
          }
          method.apply(this, args);
        },
      },
    },
    pino.destination({ dest: "/dev/null", sync: false }),
  );
  return { log, errors };
}

interface RunOptions {
  plan: PlannedEvent[];
  /** The last issue number of each repository, for the stand-in's issues. */
  last: number[];
  inFlight: number;
  checkpoints: number[];
  privateKey: string;
  /** The Talos run writes each delivery's requests here; the baseline sends them again. */
  recordFile: string;
  gc: (() => void) | undefined;
  /** Measure the heap at the checkpoints. */
  heap: boolean;
}

async function runTalos(options: RunOptions) {
  const dataDir = mkdtempSync(join(tmpdir(), "talos-events-bench-"));
  const syncs = await countFileSyncs(dataDir);
  const github = await startStandInProcess(options.last);
  const live = new Map<number, EventTiming>();
  const model = new BenchModel((text) => {
    for (const match of text.matchAll(/bench-event-(\d+)/g)) {
      const timing = live.get(Number(match[1]));
      if (timing) return timing;
    }
    return undefined;
  });
  const { log, errors } = createLog();
  const talos = await createTalos({
    env: parseEnv({
      TALOS_DATA_DIR: dataDir,
      TALOS_AUTOMATION_MAX_PER_HOUR: "1000000",
      TALOS_DAILY_TOKEN_BUDGET: "1000000000000",
      // A failed job is parked at once: a retry's backoff (30 s and more) would stall its thread
      // and the run. Failures are counted, and the first errors shown.
      TALOS_JOB_MAX_ATTEMPTS: "1",
      // Each repository's first event would backfill its memory (never backfilled here): reads
      // the baseline does not make, and not the per-event work this measures.
      TALOS_BACKFILL_MAX: "0",
    }),
    log,
    version: "bench",
    model,
    // The benchmark measures Talos's own time, not GitHub's write spacing.
    octokit: { throttle: false, retry: false },
  });
  const probot = new Probot({
    appId: 1,
    privateKey: options.privateKey,
    log,
    Octokit: chargingOctokit(talos.Octokit, github.url),
    baseUrl: github.url,
  });
  await probot.load(talos.app, { cwd: process.cwd(), addHandler: () => undefined });
  const { jobs, journal } = talos.services;
  // As `npm start` does with a model configured (src/main.ts): the Markdown workers and the
  // token counter's encoder (half a second, once) are made before the server listens, not by the
  // first deliveries counted here.
  talos.services.markdown.warm();
  talos.services.tokenCounter.warm();
  // A job runs with the context its delivery was journaled with: that client is the one to
  // charge. (Probot gives each handler a context and client of its own.)
  const submit = jobs.submit.bind(jobs);
  jobs.submit = (job, context) => {
    chargeDelivery(context, live);
    return submit(job, context);
  };
  const records = createWriteStream(options.recordFile);
  const uncharged = UNCHARGED.requests;
  // How long `receive` took for journaled deliveries: what GitHub waits for before its 2xx.
  const acks: number[] = [];
  const run = await drive({
    ...options,
    live,
    record: true,
    deliver: async (index, delivery) => {
      const id = `talos-${index}`;
      const start = performance.now();
      // Watched before it is sent, so that no run of its job can end unseen.
      const ran = jobs.waitFor(id);
      ran.catch(() => undefined);
      await probot.receive({ id, ...delivery } as never);
      const acknowledged = performance.now() - start;
      // An accepted delivery is journaled (or has already run): wait for its job.
      if (journal!.list().some((job) => job.id === id)) {
        acks.push(acknowledged);
        await ran;
      }
    },
    finished: (timing) => records.write(`${JSON.stringify([timing.index, timing.requests])}\n`),
    measure: options.heap
      ? async (events) => {
          await jobs.idle();
          return {
            ...measureHeap(events, options.gc),
            memoryRecords: (await talos.metrics.memoryRecords.get()).values.reduce(
              (sum, v) => sum + v.value,
              0,
            ),
            openMemoryMb: talos.memory.openStores().bytes / 2 ** 20,
            cacheEntries: talos.cache.size,
            cacheMb: talos.cache.bytes / 2 ** 20,
          };
        }
      : undefined,
  });
  await new Promise((resolve) => records.end(resolve));
  const stats = await github.stats();
  const jobOutcomes: Record<string, number> = {};
  for (const { labels, value } of (await talos.metrics.jobs.get()).values)
    jobOutcomes[String(labels.outcome)] = (jobOutcomes[String(labels.outcome)] ?? 0) + value;
  await talos.close();
  await github.close();
  syncs.restore();
  rmSync(dataDir, { recursive: true, force: true });
  return {
    ...run,
    github: stats,
    jobs: jobOutcomes,
    modelCalls: model.calls,
    unattributedModelMs: model.unattributedMs,
    unchargedRequests: UNCHARGED.requests - uncharged,
    ackMs: summarize(acks),
    syncs: { ...syncs.counts },
    errors,
  };
}

/** Probot alone: one `onAny` handler sends the requests Talos sent for the same delivery. */
async function runBaseline(options: RunOptions) {
  const requests = new Map<number, RecordedRequest[]>();
  for (const line of readFileSync(options.recordFile, "utf8").split("\n")) {
    if (!line) continue;
    const [index, list] = JSON.parse(line) as [number, RecordedRequest[]];
    requests.set(index, list);
  }
  const github = await startStandInProcess(options.last);
  const live = new Map<number, EventTiming>();
  const { log, errors } = createLog();
  // Throttling and retries off, with the function form (see DEPENDENCIES.md), as for Talos.
  const Plain = ProbotOctokit.defaults((o: { throttle?: object }) => ({
    ...o,
    retry: { enabled: false },
    throttle: { ...o.throttle, enabled: false },
  }));
  const probot = new Probot({
    appId: 1,
    privateKey: options.privateKey,
    log,
    Octokit: chargingOctokit(Plain, github.url),
    baseUrl: github.url,
  });
  const unexpected: string[] = [];
  await probot.load((app) => {
    // Probot types onAny's argument as the bare event; what it passes is a Context.
    app.onAny(async (event) => {
      const context = event as unknown as Context;
      chargeDelivery(context, live);
      const index = Number(context.id.slice("baseline-".length));
      for (const [method, path, headers, body] of requests.get(index) ?? []) {
        try {
          await context.octokit.request(`${method} ${path}`, {
            headers,
            ...(body === undefined ? {} : { data: JSON.parse(body) as unknown }),
          });
        } catch (error) {
          // A 304 is an answer (Octokit throws on it); anything else is counted.
          if ((error as { status?: number }).status !== 304)
            unexpected.push(`${method} ${path}: ${(error as Error).message}`);
        }
      }
    });
  });
  const run = await drive({
    ...options,
    live,
    record: false,
    deliver: (index, delivery) => probot.receive({ id: `baseline-${index}`, ...delivery } as never),
    measure: options.heap
      ? async (events) => ({
          ...measureHeap(events, options.gc),
          memoryRecords: 0,
          openMemoryMb: 0,
          cacheEntries: 0,
          cacheMb: 0,
        })
      : undefined,
  });
  const stats = await github.stats();
  await github.close();
  return { ...run, github: stats, unexpected, errors };
}

function measureHeap(events: number, gc: (() => void) | undefined) {
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return {
    events,
    rssMb: usage.rss / 2 ** 20,
    heapUsedMb: usage.heapUsed / 2 ** 20,
    arrayBuffersMb: usage.arrayBuffers / 2 ** 20,
  };
}

type TalosRun = Awaited<ReturnType<typeof runTalos>>;
type BaselineRun = Awaited<ReturnType<typeof runBaseline>>;

export async function runEventsBench(options: EventsBenchOptions) {
  const events = options.events ?? EVENTS;
  const inFlight = options.inFlight ?? IN_FLIGHT;
  for (const [name, value] of [
    ["events", events],
    ["inFlight", inFlight],
  ] as const)
    if (!Number.isInteger(value) || value < 4)
      throw new Error(`events bench: ${name} must be a whole number of at least 4, not ${value}`);
  const { gc, how } = findGc();
  const { plan, last } = planEvents(events);
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  const scratch = mkdtempSync(join(tmpdir(), "talos-events-requests-"));
  try {
    const loaded = {
      plan,
      last,
      inFlight,
      // A quarter, a half and all: 5,000, 10,000 and 20,000 by default.
      checkpoints: [...new Set([Math.round(events / 4), Math.round(events / 2), events])],
      privateKey,
      gc,
      heap: true,
      recordFile: join(scratch, "loaded.jsonl"),
    };
    // The same measure with one delivery at a time, on the first deliveries: no queueing.
    const alone = Math.min(SEQUENTIAL, Math.round(events / 4));
    const sequential = {
      ...loaded,
      plan: plan.slice(0, alone),
      inFlight: 1,
      checkpoints: [alone],
      heap: false,
      recordFile: join(scratch, "sequential.jsonl"),
    };
    const talos = await runTalos(loaded);
    const baseline = await runBaseline(loaded);
    const talosAlone = await runTalos(sequential);
    const baselineAlone = await runBaseline(sequential);
    const result = summarizeRuns({
      events,
      inFlight,
      gc: how,
      plan,
      talos,
      baseline,
      sequential: { events: alone, talos: talosAlone, baseline: baselineAlone },
    });
    if (!options.json) printReport(result);
    return result;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function describeRun(run: TalosRun | BaselineRun, events: number) {
  return {
    overheadMs: summarize([...run.overheads]),
    cpuMsPerEvent: run.cpuMs / events,
    eventsPerSecond: (events / run.wallMs) * 1000,
    failures: run.failures,
    requests: run.github.requests,
    requestsPerEvent: run.github.requests / events,
    // What the baseline replays: every request but the /app ones, which each app makes itself.
    apiRequests: run.github.requests - run.github.app,
    statuses: run.github.byStatus,
    errorsLogged: run.errors.count,
    firstErrors: run.errors.first,
  };
}

function summarizeRuns(input: {
  events: number;
  inFlight: number;
  gc: string;
  plan: PlannedEvent[];
  talos: TalosRun;
  baseline: BaselineRun;
  sequential: { events: number; talos: TalosRun; baseline: BaselineRun };
}) {
  const { events, plan, talos, baseline, sequential } = input;
  const loaded = { talos: describeRun(talos, events), baseline: describeRun(baseline, events) };
  const alone = {
    events: sequential.events,
    talos: describeRun(sequential.talos, sequential.events),
    baseline: describeRun(sequential.baseline, sequential.events),
  };
  const byKind = KINDS.map((kind) => {
    const indexes = plan.flatMap((event, i) => (event.kind === kind ? [i] : []));
    const aloneIndexes = indexes.filter((i) => i < sequential.events);
    return {
      kind,
      events: indexes.length,
      talos: summarize(indexes.map((i) => talos.overheads[i]!)),
      baseline: summarize(indexes.map((i) => baseline.overheads[i]!)),
      talosAlone: summarize(aloneIndexes.map((i) => sequential.talos.overheads[i]!)),
      baselineAlone: summarize(aloneIndexes.map((i) => sequential.baseline.overheads[i]!)),
    };
  });
  const first = talos.checkpoints[0]!;
  const last = talos.checkpoints.at(-1)!;
  const heapGrowth = (last.heapUsedMb - first.heapUsedMb) / first.heapUsedMb;
  const p50 = loaded.talos.overheadMs.p50;
  return {
    suite: "events",
    events,
    inFlight: input.inFlight,
    github: "test/helpers/github-stand-in.ts, a real HTTP server, in a child process of its own",
    model: "scripted, instant (its time is subtracted)",
    gc: input.gc,
    mix: Object.fromEntries(byKind.map((k) => [k.kind, k.events])),
    loaded,
    ratio: {
      p50: p50 / loaded.baseline.overheadMs.p50,
      p99: loaded.talos.overheadMs.p99 / loaded.baseline.overheadMs.p99,
      cpu: loaded.talos.cpuMsPerEvent / loaded.baseline.cpuMsPerEvent,
    },
    sequential: {
      ...alone,
      ratio: {
        p50: alone.talos.overheadMs.p50 / alone.baseline.overheadMs.p50,
        p99: alone.talos.overheadMs.p99 / alone.baseline.overheadMs.p99,
      },
    },
    byKind,
    checkpoints: { talos: talos.checkpoints, baseline: baseline.checkpoints },
    heapGrowth,
    talos: {
      ackMs: talos.ackMs,
      jobs: talos.jobs,
      modelCalls: talos.modelCalls,
      unattributedModelMs: talos.unattributedModelMs,
      unchargedRequests: talos.unchargedRequests,
      journal: {
        fdatasyncs: talos.syncs.journalSyncs,
        perDelivery: talos.syncs.journalSyncs / events,
        bytesAppended: talos.syncs.journalBytes,
      },
      memoryFsyncs: talos.syncs.memorySyncs,
      budgetFsyncs: talos.syncs.budgetSyncs,
    },
    baseline: { unexpectedErrors: baseline.unexpected.length, first: baseline.unexpected[0] },
    targets: {
      overheadP50Ms: { target: TARGET_P50_MS, measured: p50, met: p50 <= TARGET_P50_MS },
      heapGrowth: {
        target: TARGET_HEAP_GROWTH,
        from: first.events,
        to: last.events,
        measured: heapGrowth,
        met: heapGrowth <= TARGET_HEAP_GROWTH,
      },
    },
  };
}

type EventsResult = ReturnType<typeof summarizeRuns>;

function printReport(r: EventsResult): void {
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  console.log(
    `events: ${r.events} mixed deliveries per app through probot.receive, ${r.inFlight} in flight`,
  );
  console.log(`GitHub: ${r.github}; model: ${r.model}`);
  console.log(
    "overhead: wall time from receive to job done, minus the time waiting on GitHub and the model\n",
  );
  const row = (app: string, load: string, s: ReturnType<typeof describeRun>) => ({
    app,
    "in flight": load,
    "overhead p50 ms": s.overheadMs.p50,
    "overhead p99 ms": s.overheadMs.p99,
    "CPU ms/event": s.cpuMsPerEvent,
    "events/s": s.eventsPerSecond,
    "requests/event": s.requestsPerEvent,
    failed: s.failures,
  });
  const alone = `1 (first ${r.sequential.events})`;
  printTable([
    row("Talos", String(r.inFlight), r.loaded.talos),
    row("Probot alone (naive baseline)", String(r.inFlight), r.loaded.baseline),
    row("Talos", alone, r.sequential.talos),
    row("Probot alone (naive baseline)", alone, r.sequential.baseline),
  ]);
  console.log(
    `\nTalos / Probot alone at ${r.inFlight} in flight: overhead p50 ${r.ratio.p50.toFixed(1)}×, p99 ${r.ratio.p99.toFixed(1)}×, CPU per event ${r.ratio.cpu.toFixed(1)}×`,
  );
  console.log(
    `one at a time: overhead p50 ${r.sequential.ratio.p50.toFixed(1)}×, p99 ${r.sequential.ratio.p99.toFixed(1)}×`,
  );
  console.log(
    "Probot alone: a plain app.onAny handler that sends, for each delivery, the requests Talos sent for it\n",
  );
  printTable(
    r.byKind.map((k) => ({
      delivery: k.kind,
      events: k.events,
      [`Talos p50 ms (${r.inFlight})`]: k.talos.p50,
      [`p99 ms (${r.inFlight})`]: k.talos.p99,
      [`Probot p50 ms (${r.inFlight})`]: k.baseline.p50,
      "Talos p50 ms (1)": k.talosAlone.p50,
      "Probot p50 ms (1)": k.baselineAlone.p50,
    })),
  );
  console.log("");
  printTable(
    r.checkpoints.talos.map((c, i) => ({
      "Talos after": c.events,
      "RSS MB": c.rssMb,
      "heap used MB": c.heapUsedMb,
      "array buffers MB": c.arrayBuffersMb,
      "memory records": c.memoryRecords,
      "open memory MB": c.openMemoryMb,
      "cache entries": c.cacheEntries,
      "Probot alone: heap used MB": r.checkpoints.baseline[i]?.heapUsedMb ?? "",
    })),
  );
  const j = r.talos.journal;
  console.log(
    `\nTalos acknowledges a journaled delivery (receive resolves) in p50 ${r.talos.ackMs.p50.toFixed(2)} ms, p99 ${r.talos.ackMs.p99.toFixed(2)} ms at ${r.inFlight} in flight`,
  );
  console.log(
    `journal: ${j.fdatasyncs} fdatasyncs (${j.perDelivery.toFixed(2)} per delivery), ${mb(j.bytesAppended)} appended; memory: ${r.talos.memoryFsyncs} fsyncs and fdatasyncs; token budgets: ${r.talos.budgetFsyncs} fsyncs`,
  );
  console.log(
    `jobs: ${JSON.stringify(r.talos.jobs)}; model calls: ${r.talos.modelCalls}; GitHub answers: ${JSON.stringify(r.loaded.talos.statuses)}`,
  );
  for (const [app, s] of [
    ["Talos", r.loaded.talos],
    ["Probot alone", r.loaded.baseline],
  ] as const) {
    if (s.errorsLogged > 0)
      console.log(`${app} logged ${s.errorsLogged} errors, first: ${s.firstErrors.join(" | ")}`);
  }
  if (r.talos.unchargedRequests > 0)
    console.log(
      `${r.talos.unchargedRequests} Talos requests charged to no delivery (counted as overhead)`,
    );
  if (r.baseline.unexpectedErrors > 0)
    console.log(
      `the baseline's replay failed ${r.baseline.unexpectedErrors} times, first: ${r.baseline.first}`,
    );
  console.log(
    `heap: after a forced gc (${r.gc}); Probot alone's heap holds the requests it replays\n`,
  );
  const t = r.targets;
  console.log(
    `target overhead p50 ≤ ${t.overheadP50Ms.target} ms at ${r.inFlight} in flight: ${t.overheadP50Ms.met ? "met" : "not met"} (${t.overheadP50Ms.measured.toFixed(2)} ms; one at a time ${r.sequential.talos.overheadMs.p50.toFixed(2)} ms)`,
  );
  console.log(
    `target heap growth ${t.heapGrowth.from}→${t.heapGrowth.to} ≤ ${t.heapGrowth.target * 100}%: ${t.heapGrowth.met ? "met" : "not met"} (${(t.heapGrowth.measured * 100).toFixed(1)}%)`,
  );
}

import { stat } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { systemClock } from "../clock.js";
import {
  ConfigError,
  getSecrets,
  isNotDirectory,
  loadEnvironment,
  parseEnv,
  REDELIVER_MAX_HOURS,
  type Env,
} from "../config.js";
import { createLogger } from "../create-logger.js";
import { MemoryLockedError } from "../memory/directory-lock.js";
import { MEMORY_KINDS, type MemoryKind } from "../memory/memory-store.js";
import { REDELIVER_MAX_PER_START } from "../github/redeliver-missed.js";
import { readVersion } from "../read-version.js";
import { backfill } from "./backfill.js";
import { chat } from "./chat.js";
import { retryJobs, showJobs } from "./jobs.js";
import {
  compactMemory,
  deleteMemory,
  importMemory,
  exportMemory,
  searchMemory,
  showMemoryStats,
  type MemoryCommandOptions,
} from "./memory.js";
import { redeliver } from "./redeliver.js";
import { replay } from "./replay.js";
import { UsageError } from "./usage-error.js";
import { errorLine } from "./error-line.js";

export interface CliIO {
  stdin: Readable;
  stdout: Writable;
  /** A terminal gets a progress bar instead of progress lines. */
  stderr: Writable & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Where a `.env` file is read from, as Probot does for `npm start` (default: the cwd). */
  cwd?: string;
  /** Aborted on Ctrl-C: a long subcommand (backfill) stops at the next safe point. */
  signal?: AbortSignal;
}

const SUBCOMMANDS = ["replay", "chat", "memory", "backfill", "jobs", "redeliver", "help"];
const MEMORY_SUBCOMMANDS = ["stats", "search", "export", "compact", "import", "delete"];

const USAGE = `Usage: talos <subcommand> [options]

Subcommands:
  replay <payload.json> [--event <name>] [--fixtures <dir>] [--json]
      Run the handlers on a saved webhook payload. Reads come from recorded data in
      <dir>/api (default fixtures/api), or answer 404; writes are printed, not sent.
  chat [--repo <owner/repo>]
      Talk to the assistant in the terminal, with the same agent and tools as on GitHub, bound
      to the repository (read with GITHUB_TOKEN when set). exit or Ctrl-D ends it.
  memory stats|search|export|compact|import|delete [--data-dir <dir>] [--repo <owner/repo>]
         [--installation <id>] [--json]
      Inspect the memory in <dir>/memory (default TALOS_DATA_DIR), or with DATABASE_URL in
      PostgreSQL, one namespace per installation and repository; all of them unless --repo or
      --installation picks some.
        stats                     records by kind, pending log entries, segments, size
        search <query> [--k 5] [--kind issue,pull_request,comment,answer,note]
                                  what the bot would recall; needs exactly one namespace and
                                  the embedder the memory was built with
        export                    every record as a JSON line (no vectors)
        compact                   replay the write-ahead log into the index files (on disk)
        import                    with DATABASE_URL: copy the memory on disk into PostgreSQL,
                                  embedded again by the configured embedder; run again to resume
        delete --yes              delete the memories --repo and --installation pick (one of
                                  them is required), as their repository's removal would
      On disk beside a running server, the server does them on its memory (import and the
      deletion of name-keyed memories from before the upgrade need it stopped).
  backfill <owner/repo> [--installation <id>] [--max <n>] [--since <time>] [--data-dir <dir>]
      Index the repository's existing issues and pull requests into its memory, newest first,
      up to --max (default TALOS_BACKFILL_MAX, which when 0 makes --max required); a second run
      resumes. With --since (an ISO 8601 date or time), catch its memory up instead with those
      updated since then, most recently updated first, as the server does after a long outage.
      With APP_ID and PRIVATE_KEY it authenticates as the app and finds the installation; with
      GITHUB_TOKEN (or nothing, for a public repository) --installation is required. On disk
      beside a running server, the server is asked to run it, and the command ends.
  jobs [--data-dir <dir>] [--json]
      The job journal by repository: jobs waiting or running, jobs parked after their last
      attempt (with the error), and deliveries refused lately (queue full, stopping). Safe
      while the server runs.
  jobs retry <delivery>... | --all [--data-dir <dir>] [--json]
      Parked jobs wait to run again, as if just accepted, once what parked them is fixed. With
      REDIS_URL an instance runs them within seconds. On disk, a running server is asked and
      runs them at once; with the server stopped, it runs them when it starts.
  redeliver [--hours <n>] [--max <n>] [--dry-run] [--data-dir <dir>] [--json]
      Ask GitHub to redeliver the app's webhook deliveries of the last --hours (default
      TALOS_REDELIVER_HOURS, or 24 when that is 0; at most 72) that failed and that the server's
      queue did not accept, oldest first, at most --max (default 500), as the server does at each
      start. --dry-run lists them without asking. Needs APP_ID and PRIVATE_KEY (or
      PRIVATE_KEY_PATH). Safe while the server runs.
  help
      Show this text.

Settings come from the environment, with a .env file in the current directory laid over it,
as for npm start.`;

/** `npx talos …`: returns the exit code (0 success, 2 bad input, 1 anything else). */
export async function runCli(argv: string[], cliIO: CliIO): Promise<number> {
  const [subcommand, ...rest] = argv;
  let io = cliIO;
  // `talos … | head -1`: the reader has what it wanted once it closes the pipe. Without a
  // listener, the stream's EPIPE 'error' is an uncaught exception with a stack.
  let brokenPipe = false;
  cliIO.stdout.on("error", (error) => {
    if (isBrokenPipe(error)) brokenPipe = true;
  });
  try {
    // Before `.env` is read: help is what a user whose setup is broken asks for first.
    const help = subcommand === "help" || subcommand === "--help" || subcommand === "-h";
    if (
      help ||
      (subcommand !== undefined && SUBCOMMANDS.includes(subcommand) && asksForHelp(rest))
    ) {
      cliIO.stdout.write(`${USAGE}\n`);
      return 0;
    }
    // The same environment `npm start` sees, so both find the same data directory and model.
    io = { ...cliIO, env: loadEnvironment(cliIO.cwd ?? process.cwd(), cliIO.env) };
    switch (subcommand) {
      case "replay":
        return await runReplay(rest, io);
      case "chat":
        return await runChat(rest, io);
      case "memory":
        return await runMemory(rest, io);
      case "backfill":
        return await runBackfill(rest, io);
      case "jobs":
        return await runJobs(rest, io);
      case "redeliver":
        return await runRedeliver(rest, io);
      case undefined:
        throw new UsageError("missing subcommand; run `talos help` for the list");
      default:
        throw new UsageError(`unknown subcommand "${subcommand}"; run \`talos help\` for the list`);
    }
  } catch (error) {
    // A write after the pipe closed fails with EPIPE, or with ERR_STREAM_DESTROYED once the
    // stream has been torn down by the first failure.
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (isBrokenPipe(error) || (brokenPipe && code === "ERR_STREAM_DESTROYED")) return 0;
    const known = subcommand !== undefined && SUBCOMMANDS.includes(subcommand);
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(errorLine(known ? subcommand : "", message, io.env));
    // A memory a running server holds is bad input: stop the server, or use another directory.
    return error instanceof UsageError ||
      error instanceof ConfigError ||
      error instanceof MemoryLockedError
      ? 2
      : 1;
  }
}

/** `--help` or `-h` among a subcommand's arguments (not after `--`, where it is a value). */
function asksForHelp(argv: string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) => arg === "--help" || arg === "-h");
}

function isBrokenPipe(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "EPIPE";
}

async function runReplay(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgsOrThrow({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      event: { type: "string" },
      fixtures: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0)
    throw new UsageError("replay takes one payload file: talos replay <payload.json>");
  // Without --fixtures, fixtures/ may be missing (every read answers 404); a named one must be.
  const fixtures = values.fixtures === undefined ? "directory" : await kindOf(values.fixtures);
  if (fixtures !== "directory") {
    throw new UsageError(
      `--fixtures: ${values.fixtures} ${fixtures === "missing" ? "does not exist" : "is not a directory"}`,
    );
  }
  const env = parseEnv(io.env);
  const log = await createCliLogger(env, io);
  const result = await replay({
    file,
    event: values.event,
    fixturesDir: `${values.fixtures ?? "fixtures"}/api`,
    version: await readVersion(),
    log,
  });
  if (values.json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  io.stdout.write(`Replayed ${result.event} from ${file} (delivery ${result.delivery}).\n`);
  result.writes.forEach((write, index) => {
    io.stdout.write(
      `\n${index + 1}. ${write.method} ${write.path}\n${JSON.stringify(write.body, null, 2)}\n`,
    );
  });
  io.stdout.write(`\n${result.writes.length} planned write(s); nothing was sent to GitHub.\n`);
  return 0;
}

async function runChat(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgsOrThrow({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { repo: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const env = parseEnv(io.env);
  const log = await createCliLogger(env, io);
  return chat({
    repo: values.repo,
    env,
    log,
    stdin: io.stdin,
    stdout: io.stdout,
    stderr: io.stderr,
  });
}

async function runMemory(argv: string[], io: CliIO): Promise<number> {
  const [action, ...args] = argv;
  if (action === undefined || !MEMORY_SUBCOMMANDS.includes(action)) {
    throw new UsageError(
      `${action === undefined ? "missing memory subcommand" : `unknown memory subcommand "${action}"`}; use ${MEMORY_SUBCOMMANDS.join(", ")}`,
    );
  }
  const search = action === "search";
  const destructive = action === "delete";
  const { values, positionals } = parseArgsOrThrow({
    args,
    allowPositionals: search,
    strict: true,
    options: {
      "data-dir": { type: "string" },
      repo: { type: "string" },
      installation: { type: "string" },
      json: { type: "boolean", default: false },
      ...(search ? { k: { type: "string", default: "5" }, kind: { type: "string" } } : {}),
      ...(destructive ? { yes: { type: "boolean", default: false } } : {}),
    },
  });
  const env = parseEnv(io.env);
  const options: MemoryCommandOptions = {
    dataDir: resolveDataDir(values["data-dir"], env),
    repo: values.repo,
    installation: values.installation,
    json: values.json,
    env,
    log: await createCliLogger(env, io),
    stdout: io.stdout,
  };
  switch (action) {
    case "stats":
      return showMemoryStats(options);
    case "export":
      return exportMemory(options);
    case "compact":
      return compactMemory(options);
    case "import":
      return importMemory(options);
    case "delete":
      return deleteMemory({ ...options, yes: values.yes === true });
  }
  const query = positionals.join(" ").trim();
  if (!query) throw new UsageError("search takes a query: talos memory search <query>");
  return searchMemory({
    ...options,
    query,
    k: parseCount("--k", String(values.k), 1),
    kinds: parseKinds(values.kind === undefined ? undefined : String(values.kind)),
  });
}

async function runBackfill(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgsOrThrow({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      installation: { type: "string" },
      max: { type: "string" },
      since: { type: "string" },
      "data-dir": { type: "string" },
    },
  });
  const [repo, ...extra] = positionals;
  if (!repo || extra.length > 0)
    throw new UsageError("backfill takes one repository: talos backfill <owner/repo>");
  const env = parseEnv(io.env);
  // A run that reads nothing would still mark the backfill done, so that none ran again.
  if (values.max === undefined && env.TALOS_BACKFILL_MAX === 0)
    throw new UsageError("backfills are off (TALOS_BACKFILL_MAX=0): give --max to run one");
  return backfill({
    repo,
    installation: values.installation,
    since: values.since === undefined ? undefined : parseSince(values.since, systemClock.now()),
    max: values.max === undefined ? env.TALOS_BACKFILL_MAX : parseCount("--max", values.max, 1),
    dataDir: resolveDataDir(values["data-dir"], env),
    env,
    clock: systemClock,
    log: await createCliLogger(env, io),
    stdout: io.stdout,
    stderr: io.stderr,
    signal: io.signal,
  });
}

async function runJobs(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgsOrThrow({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      "data-dir": { type: "string" },
      json: { type: "boolean", default: false },
      all: { type: "boolean", default: false },
    },
  });
  const [action, ...deliveries] = positionals;
  const retry = action === "retry";
  if (action !== undefined && !retry)
    throw new UsageError(`unexpected argument "${action}"; the one action is retry`);
  if (values.all && !retry) throw new UsageError("--all goes with retry: talos jobs retry --all");
  const env = parseEnv(io.env);
  const options = {
    dataDir: resolveDataDir(values["data-dir"], env),
    json: values.json,
    env,
    clock: systemClock,
    log: await createCliLogger(env, io),
    stdout: io.stdout,
  };
  return retry ? retryJobs({ ...options, deliveries, all: values.all }) : showJobs(options);
}

async function runRedeliver(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgsOrThrow({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      hours: { type: "string" },
      max: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      "data-dir": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const env = parseEnv(io.env);
  const hours =
    values.hours === undefined
      ? env.TALOS_REDELIVER_HOURS || 24
      : parseCount("--hours", values.hours, 1);
  if (hours > REDELIVER_MAX_HOURS)
    throw new UsageError(
      `--hours takes at most ${REDELIVER_MAX_HOURS} (GitHub keeps deliveries 3 days), not ${hours}`,
    );
  return redeliver({
    hours,
    max: values.max === undefined ? REDELIVER_MAX_PER_START : parseCount("--max", values.max, 1),
    dryRun: values["dry-run"],
    json: values.json,
    dataDir: resolveDataDir(values["data-dir"], env),
    env,
    clock: systemClock,
    log: await createCliLogger(env, io),
    stdout: io.stdout,
    stderr: io.stderr,
    signal: io.signal,
  });
}

/** Warnings and errors only, unless LOG_LEVEL asks for more; on stderr, away from the output. */
function createCliLogger(env: Env, io: CliIO) {
  return createLogger({
    // A blank LOG_LEVEL is unset, as in the schema.
    level: io.env.LOG_LEVEL?.trim() ? env.LOG_LEVEL : "warn",
    format: env.LOG_FORMAT ?? "pretty",
    secrets: getSecrets(env),
    destination: io.stderr,
  });
}

/**
 * --data-dir, else TALOS_DATA_DIR (which parseEnv checked). A missing one holds nothing yet (it
 * is created when written), but a file in its place is bad input.
 */
function resolveDataDir(option: string | undefined, env: Env): string {
  // `--data-dir="$DIR"` with DIR unset: not the current directory.
  if (option?.trim() === "") throw new UsageError("--data-dir: no directory given");
  if (option !== undefined && isNotDirectory(option))
    throw new UsageError(`--data-dir: ${option} is not a directory`);
  return option ?? env.TALOS_DATA_DIR;
}

/** `--since`: an ISO 8601 date or time, not in the future; as GitHub's `since` takes it. */
function parseSince(value: string, now: number): string {
  const at = /^\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:\d\d))?$/.test(value) ? Date.parse(value) : NaN;
  // Date.parse rolls an impossible day over (2021-02-29 is March 1st): the date must be a real one.
  const day = value.slice(0, 10);
  const midday = Date.parse(`${day}T12:00:00Z`);
  const real = !Number.isNaN(midday) && new Date(midday).toISOString().startsWith(day);
  if (Number.isNaN(at) || !real || at > now)
    throw new UsageError(
      `--since takes an ISO 8601 date or time not in the future (2026-11-01 or 2026-11-01T08:00:00Z), not "${value}"`,
    );
  return new Date(at).toISOString();
}

/** "file" for anything but a directory, including a path that goes through a file (ENOTDIR). */
async function kindOf(path: string): Promise<"directory" | "file" | "missing"> {
  try {
    return (await stat(path)).isDirectory() ? "directory" : "file";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "missing";
    if (code === "ENOTDIR") return "file";
    throw error;
  }
}

function parseCount(option: string, value: string, least: number): number {
  const count = Number(value);
  // Safe integers only: 400 digits are Infinity, which a request's JSON sends as null.
  if (!/^\d+$/.test(value) || count < least || !Number.isSafeInteger(count)) {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    throw new UsageError(`${option} takes a whole number of at least ${least}, not "${shown}"`);
  }
  return count;
}

function parseKinds(value: string | undefined): MemoryKind[] | undefined {
  if (value === undefined) return undefined;
  const kinds = value.split(",").map((kind) => kind.trim());
  for (const kind of kinds) {
    if (!(MEMORY_KINDS as readonly string[]).includes(kind))
      throw new UsageError(`--kind takes ${MEMORY_KINDS.join(", ")}, not "${kind}"`);
  }
  return kinds as MemoryKind[];
}

function parseArgsOrThrow<T extends ParseArgsConfig>(config: T) {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

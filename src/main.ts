import { createServer } from "node:net";
import { Probot, run, type ApplicationFunction } from "probot";
import { createLogger, createSecretScrubber } from "./create-logger.js";
import {
  checkServerEnv,
  ConfigError,
  disableLangChainTracing,
  getSecrets,
  loadEnvironment,
  parseEnv,
  type Env,
} from "./config.js";
import { createRedeliverySweeps } from "./github/create-redelivery-sweeps.js";
import { createHealthRoute } from "./http/create-health-route.js";
import { createWebhookBodyBudget } from "./http/create-webhook-body-budget.js";
import { limitSetupWebhookBodies, withWebhookBodyLimit } from "./http/limit-webhook-bodies.js";
import { createTalos } from "./index.js";
import { DataDirectoryInUseError, lockDataDirectory } from "./lock-data-directory.js";
import { startMetricsServer } from "./metrics/create-metrics-route.js";
import { readVersion } from "./read-version.js";

/** `npm start`: the Probot server, or Probot's setup page when the app has no credentials yet. */
disableLangChainTracing();
let environment: Record<string, string | undefined> | undefined;
let env: Env;
try {
  // An unreadable .env (a directory, no permission) is bad input too, as for the CLI.
  environment = loadEnvironment();
  env = parseEnv(environment);
  checkServerEnv(env);
} catch (error) {
  // A bad value is bad input: one line naming the variable, and exit code 2.
  if (!(error instanceof ConfigError)) throw error;
  printError(error.message);
  process.exit(2);
}
const log = await createLogger({
  level: env.LOG_LEVEL,
  format: env.LOG_FORMAT ?? (env.NODE_ENV === "production" ? "json" : "pretty"),
  secrets: getSecrets(env),
});
// Before anything reads the journal: a second server on the same data directory is bad input.
await lockDataDirectory(env.TALOS_DATA_DIR, log).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  log.fatal(`cannot start: ${message}`);
  printError(message);
  process.exit(error instanceof DataDirectoryInUseError ? 2 : 1);
});
const version = await readVersion();
const talos = await createTalos({ env, log, version }).catch((error: unknown) => {
  // A shared service that does not answer (REDIS_URL, DATABASE_URL): one line naming it.
  const message = error instanceof Error ? error.message : String(error);
  log.fatal(`cannot start: ${message}`);
  printError(message);
  process.exit(1);
});
// Build now, before the server listens, what would otherwise stall the first delivery that needs
// it: the Markdown workers, and with a model or an embedding endpoint the token counter.
talos.services.markdown.warm();
if (env.OPENAI_API_KEY) talos.services.tokenCounter.warm();
// The memories written most recently are opened in the background, within
// TALOS_MEMORY_MAX_OPEN_MB: the first command on a large repository need not wait seconds for it.
void talos.services.memory.warm().then(
  (opened) => {
    if (opened > 0) log.info({ opened }, "memories opened ahead of their first use");
  },
  (error: unknown) => log.warn({ err: error }, "memory warm-up stopped"),
);
// The Probot instance run() loads the app into, kept to authenticate as the app once the server
// listens. Setup mode (no credentials yet) never loads the app.
const loaded: Probot[] = [];
// Deliveries GitHub could not make while Talos was down are asked for again once the server
// listens (GitHub POSTs each redelivery to it), and those Talos refuses while it runs a while
// after; in the background, never failing the server. Stopped at shutdown: a redelivery to a
// closed listener would only fail (and be asked for again at the next start).
const redelivery = new AbortController();
const redeliveries = createRedeliverySweeps({
  // Started below only once run() has loaded the app.
  auth: () => loaded[0]!.auth(),
  queue: talos.services.queue,
  hours: env.TALOS_REDELIVER_HOURS,
  ledgerRetentionHours: env.TALOS_LEDGER_RETENTION_HOURS,
  clock: talos.services.clock,
  log: log.child({ name: "redeliver" }),
  signal: redelivery.signal,
  metrics: talos.metrics,
});
// Probot buffers webhook bodies whole, on its own route before any the app adds: both are limited.
// With REDIS_URL, deliveries that come while Redis is away are refused with 503. Bodies being
// received count against one budget, both routes and setup mode together.
const webhookLimits = {
  available: () => talos.services.queue.available(),
  budget: createWebhookBodyBudget(env.TALOS_WEBHOOK_INFLIGHT_MB * 1024 * 1024),
  refused: () => redeliveries.refused(),
};
// A port that cannot be listened on (taken, privileged) is bad input: one line naming its
// variable and exit code 2, before Probot would log the listen error with its stack.
const probotPort = env.PORT ?? 3000;
if (env.TALOS_METRICS_PORT !== undefined && env.TALOS_METRICS_PORT === probotPort) {
  failToListen("TALOS_METRICS_PORT", `${probotPort} is PORT too; use another port`);
}
// Where Probot listens: HOST, or localhost when it is unset or empty.
await checkPort("PORT", probotPort, environment.HOST || "localhost");
if (env.TALOS_METRICS_PORT !== undefined) {
  await checkPort("TALOS_METRICS_PORT", env.TALOS_METRICS_PORT, env.TALOS_METRICS_HOST);
}
const app: ApplicationFunction = (probot, options) => {
  // run() has just laid `.env` over process.env (Probot's applyEnv), where LangChain reads its
  // tracing switches on each call: forced off again, or a LANGSMITH_TRACING in .env would send
  // every prompt, issue text included, to LangSmith.
  disableLangChainTracing();
  loaded.push(probot);
  return talos.app(probot, options);
};
// Set before the server listens: /healthz reads it in setup mode too.
let stopping = false;
if (env.APP_ID === undefined) {
  limitSetupWebhookBodies(
    Probot,
    createHealthRoute({ version, stopping: () => stopping }),
    webhookLimits.budget,
  );
}
const server = await run(withWebhookBodyLimit(app, webhookLimits), {
  env: environment,
  log,
  Octokit: talos.Octokit,
}).catch((error: unknown) => failToStart("PORT", error));
const metricsServer =
  env.TALOS_METRICS_PORT === undefined
    ? undefined
    : await startMetricsServer({
        registry: talos.metrics.registry,
        port: env.TALOS_METRICS_PORT,
        host: env.TALOS_METRICS_HOST,
        log,
      }).catch((error: unknown) => failToStart("TALOS_METRICS_PORT", error));
if (loaded.length > 0) void redeliveries.start();

// Probot's own SIGINT handler exits as soon as the server stops; jobs and memory come first.
process.removeAllListeners("SIGINT");
// One shutdown, whatever signals come: a later one must neither start a second (two closes of the
// same jobs and memory) nor, with no listener left, end the process before memory is flushed.
// Ctrl-C on `npm start` sends SIGINT twice (the terminal's, and npm's forwarding of its own).
let closed: Promise<void> = Promise.resolve();
// How long connections a client keeps alive are served once Talos has closed.
const LINGER_MS = 2_000;
// How long closing may take past the jobs' grace before the process exits regardless.
const CLOSE_MS = 5_000;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return void log.info(`${signal}: already stopping`);
    stopping = true;
    log.info(`${signal}: stopping`);
    redelivery.abort();
    metricsServer?.close();
    // No new delivery is accepted (the listener closes, and the job runner refuses any that
    // still arrive); running jobs get TALOS_SHUTDOWN_GRACE_MS; the rest stay journaled.
    closed = talos.close();
    // A job still running after the grace keeps its memory store until its call to the
    // embedding model or GitHub ends (TALOS_LLM_TIMEOUT_MS and retries: minutes), and closing
    // memory waits for it: a supervisor's own deadline (compose's 30 s) would kill Talos in the
    // middle of the flush. Past the grace and CLOSE_MS it exits regardless, as a crash would: the
    // job stays journaled and resumes at the next start, and memory's log keeps every write.
    // Closed by then (the kept-alive connections' linger may outlast it), the exit is clean.
    let done = false;
    void closed.then(() => (done = true)).catch(() => undefined);
    setTimeout(() => {
      if (done) process.exit(0);
      log.warn(
        `${signal}: still closing ${CLOSE_MS} ms after the jobs' grace; exiting, and what is left resumes at the next start`,
      );
      process.exit(1);
    }, env.TALOS_SHUTDOWN_GRACE_MS + CLOSE_MS);
    void Promise.all([stopListening(), closed]).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "error while stopping");
        process.exit(1);
      },
    );
  });
}

/**
 * Closes the listener: it stops taking connections at once, but Node keeps serving a connection
 * that a client keeps alive (a prober every few seconds), and the close would wait for it for
 * ever. Once Talos itself has closed, with nothing left to journal or flush, the connections left
 * get LINGER_MS more; the exit then ends them.
 */
async function stopListening(): Promise<void> {
  // Handled at once: it may fail while Talos is still closing, and a rejection left unhandled
  // until then would end the process before memory is flushed.
  const stopped = server
    .stop()
    .catch((error: unknown) => log.warn({ err: error }, "closing the listener failed"));
  await closed;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([stopped, new Promise((resolve) => (timer = setTimeout(resolve, LINGER_MS)))]);
  clearTimeout(timer);
}

/**
 * Listens on the port for a moment, so that a taken or forbidden port, or a host that is not
 * this machine's, stops the start.
 */
async function checkPort(variable: string, port: number, host: string | undefined) {
  await new Promise<void>((resolve) => {
    const probe = createServer();
    probe.once("error", (error) => failToStart(variable, error));
    probe.listen({ port, host }, () => probe.close(() => resolve()));
  });
}

/**
 * A listen error (a port taken or forbidden, a host that is no address of this machine or no
 * name at all) is bad input, anything else not: one line either way.
 */
function failToStart(variable: string, error: unknown): never {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EADDRINUSE") failToListen(variable, "the port is in use");
  if (code === "EACCES") failToListen(variable, "not allowed to listen on the port");
  // The variable naming where the port listens. (A function's, not the module's: the start runs
  // above, before a module constant here would be set.)
  const host = { PORT: "HOST", TALOS_METRICS_PORT: "TALOS_METRICS_HOST" }[variable] ?? variable;
  if (code === "EADDRNOTAVAIL") failToListen(host, "the address is not one of this machine's");
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") failToListen(host, "the host name is unknown");
  const message = error instanceof Error ? error.message : String(error);
  printError(`cannot start: ${message.split("\n")[0]}`);
  process.exit(1);
}

function failToListen(variable: string, reason: string): never {
  printError(`${variable}: cannot listen: ${reason}`);
  process.exit(2);
}

/**
 * One line on stderr, where the log may not be yet: scrubbed as the log is. A service's error
 * can quote its URL, and a password too short to be scrubbed as a literal is still in it.
 */
function printError(message: string): void {
  // No environment: .env could not be read, and that error names only its path.
  const scrub = createSecretScrubber(getSecrets(environment ?? {}));
  process.stderr.write(`talos: ${scrub(message)}\n`);
}

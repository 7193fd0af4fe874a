import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { appPrivateKey, getSecrets, type Env } from "../config.js";
import { createSecretScrubber } from "../create-logger.js";
import { createServices } from "../create-services.js";
import {
  redeliverMissed,
  redeliveryWindowHours,
  type RedeliveryReport,
} from "../github/redeliver-missed.js";
import { createCliOctokit } from "./create-cli-octokit.js";
import { errorLine } from "./error-line.js";
import { openQueueToRead } from "./jobs.js";
import { quietBelowDebug } from "./quiet-below-debug.js";
import { UsageError } from "./usage-error.js";

export interface RedeliverCommandOptions {
  /** How far back to look, in hours (GitHub keeps deliveries 3 days). */
  hours: number;
  max: number;
  dryRun: boolean;
  json: boolean;
  dataDir: string;
  env: Env;
  clock: Clock;
  log: Logger;
  stdout: Writable;
  stderr: Writable;
  signal?: AbortSignal;
}

/**
 * `talos redeliver`: what the server does at each start (see redeliver-missed.ts), run by hand:
 * over another window, with the start's run switched off, or with --dry-run to see what was
 * missed without asking for it. Deliveries are the app's, listed with its JWT: it needs APP_ID
 * and the private key. Those the server's queue accepted are skipped; safe while it runs.
 */
export async function redeliver(options: RedeliverCommandOptions): Promise<number> {
  const { env } = options;
  // No further back than the ledger remembers, as at start: an older delivery the server
  // accepted would be asked for again and run twice.
  const hours = redeliveryWindowHours(options.hours, env.TALOS_LEDGER_RETENTION_HOURS);
  // As Probot finds it: PRIVATE_KEY, PRIVATE_KEY_PATH, or the one .pem file here.
  const privateKey = appPrivateKey(env);
  if (!env.APP_ID || !privateKey)
    throw new UsageError(
      "set APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH): webhook deliveries are the app's, and only the app can list them",
    );
  if (hours < options.hours)
    options.stderr.write(
      `talos redeliver: looking back ${hours} h, not ${options.hours}: the ledger forgets accepted deliveries after TALOS_LEDGER_RETENTION_HOURS; raise it to look further back\n`,
    );
  // The server's wiring (its GitHub client class: throttling, retries, metrics), its journal
  // kept in memory: this command runs no jobs. The server's own queue is only read.
  // It reads no memory: the database is not opened, so one that does not answer does not stop it.
  const services = await createServices({
    env: { ...env, TALOS_DATA_DIR: options.dataDir, DATABASE_URL: undefined },
    log: options.log,
    clock: options.clock,
    ephemeralJobs: true,
  });
  const queue = await openQueueToRead(options).catch(async (error: unknown) => {
    await services.close();
    throw error;
  });
  let report: RedeliveryReport;
  try {
    report = await redeliverMissed({
      app: createCliOctokit(services, { appId: env.APP_ID, privateKey }),
      since: new Date(options.clock.now() - hours * 3_600_000),
      known: (guid) => queue.has(guid),
      // Its warnings carry the error's stack, for a server's log; here the reason is one line
      // on stderr, and the warnings show with LOG_LEVEL=debug.
      log: quietBelowDebug(options.log),
      max: options.max,
      signal: options.signal,
      dryRun: options.dryRun,
    });
  } finally {
    await queue.close();
    await services.close();
  }
  // The error is GitHub's or a proxy's message, which may quote the credentials it refused (the
  // app's JWT): scrubbed as the stderr line is. It had reached stdout as it came.
  const scrub = createSecretScrubber(getSecrets(env));
  if (options.json)
    options.stdout.write(
      `${JSON.stringify(report.error === undefined ? report : { ...report, error: scrub(report.error) })}\n`,
    );
  else options.stdout.write(describe(report, hours, options));
  if (report.stopped === undefined || report.stopped === "aborted") return 0;
  options.stderr.write(
    errorLine("redeliver", `${report.stopped}: ${report.error ?? "unknown error"}`, env),
  );
  return 1;
}

function describe(
  report: RedeliveryReport,
  hours: number,
  options: RedeliverCommandOptions,
): string {
  const lines = report.chosen.map(
    (d) => `${d.firstAt}  ${d.event}${d.action ? `.${d.action}` : ""}  ${d.guid}`,
  );
  const { skipped } = report;
  const verb = options.dryRun ? "would ask for" : "asked for";
  const asked = options.dryRun ? report.chosen.length : report.redelivered;
  lines.push(
    `${report.deliveries} deliveries in the last ${hours} h; ${verb} ${asked}` +
      ` (already delivered ${skipped.delivered}, accepted by Talos ${skipped.accepted},` +
      ` failed for good before ${skipped.redeliveredBefore}, refused by GitHub ${skipped.refused},` +
      ` left for another run ${skipped.left})` +
      (report.listingCut ? `; only the newest ${report.seen} attempts read` : "") +
      (report.stopped ? `; stopped: ${report.stopped}` : ""),
  );
  return `${lines.join("\n")}\n`;
}

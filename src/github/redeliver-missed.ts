import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { JobQueue } from "../jobs/job-queue.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { describeError, isRateLimited, statusOf, type Octokit } from "./octokit.js";

/**
 * GitHub does not redeliver a failed webhook on its own: a delivery made while Talos was down (a
 * deploy, a crash) is lost unless someone asks for it again. GitHub keeps an app's deliveries
 * for 3 days and lets the app ask, with its JWT:
 * https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook
 * https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks
 */

/** The app's client (`probot.auth()` with no installation id: its JWT). */
export type AppClient = Pick<Octokit, "paginate" | "rest">;

/** How many redeliveries one start asks for; the rest wait for the next start. */
export const REDELIVER_MAX_PER_START = 500;

export interface RedeliverMissedOptions {
  app: AppClient;
  /** Attempts before this are not read: the listing is newest first, so it stops there. */
  since: Date;
  /** Whether Talos accepted the delivery with this id (`X-GitHub-Delivery`) already. */
  known: (guid: string) => boolean | Promise<boolean>;
  log: Logger;
  /** The most redeliveries asked for in this run, the oldest first. */
  max: number;
  /** Aborted when the server stops: a redelivery must not reach a closed listener. */
  signal?: AbortSignal;
  metrics?: Pick<Metrics, "webhookRedeliveries">;
  /** Reads and chooses, but asks for nothing (`talos redeliver --dry-run`). */
  dryRun?: boolean;
  /** The most attempts read, newest first (MAX_LISTED_ATTEMPTS by default). */
  maxListed?: number;
  /**
   * A delivery redelivered this many times already, each failing for now, is not asked for again
   * (it counts as `redeliveredBefore`). The sweeps while the server runs pass it: a redelivery
   * Talos refuses again (still loaded) would otherwise ask for itself at every sweep. The start's
   * run passes none, and asks again once a start.
   */
  maxRedeliveries?: number;
}

/**
 * The most attempts a run reads: 100 pages. A busy app's day holds far more (100,000 deliveries
 * were 1,000 requests and as many objects in RAM at every start), and a listing whose `Link`
 * led back to a page read would have been read for ever.
 */
export const MAX_LISTED_ATTEMPTS = 10_000;

export interface RedeliveryReport {
  /** Attempts read, back to `since`. */
  seen: number;
  /** The listing was cut at `maxListed` attempts: older deliveries were not looked at. */
  listingCut?: boolean;
  /** Deliveries (distinct guids) among them. */
  deliveries: number;
  /** Redeliveries asked for. */
  redelivered: number;
  /** The deliveries chosen, the oldest first: asked for, or with `dryRun` to be. */
  chosen: Array<{ guid: string; event: string; action?: string | null; firstAt: string }>;
  skipped: {
    /** One of its attempts succeeded (2xx). */
    delivered: number;
    /**
     * A redelivery of it was answered 4xx (a bad signature, a body too large): it would fail
     * every time, so it is not asked for at every start. One whose redelivery failed for the
     * time being (a 5xx: Talos was stopping or its queue full; no connection: down again) is
     * asked for again, once a start, or while it runs until it has been redelivered
     * `maxRedeliveries` times.
     */
    redeliveredBefore: number;
    /** Talos accepted it (the ledger), though GitHub saw the answer fail. */
    accepted: number;
    /** Missed, but not asked for in this run (past `max`, or the run stopped): the next run may. */
    left: number;
    /** GitHub refused to redeliver it (4xx). */
    refused: number;
  };
  /** Why the run stopped short, if it did. */
  stopped?: "listing failed" | "ledger failed" | "redelivery failed" | "aborted" | undefined;
  /** The error that stopped it, in one line. */
  error?: string | undefined;
}

interface Attempt {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  status_code: number;
  event: string;
  action?: string | null;
}

interface Missed {
  guid: string;
  /** The attempt to redeliver: its newest. */
  id: number;
  /** When it was first delivered, for the order of redeliveries. */
  firstAt: number;
  firstId: number;
  event: string;
  action: string | null | undefined;
}

/**
 * Asks GitHub to redeliver each delivery since `since` that none of its attempts delivered, whose
 * redeliveries (if any) did not fail for good, and that Talos did not accept, the oldest first
 * so that they arrive in the order they happened. Never throws: GitHub's errors are logged, and
 * the report says where the run stopped.
 */
export async function redeliverMissed(options: RedeliverMissedOptions): Promise<RedeliveryReport> {
  const { log, since } = options;
  const report: RedeliveryReport = {
    seen: 0,
    deliveries: 0,
    redelivered: 0,
    chosen: [],
    skipped: { delivered: 0, redeliveredBefore: 0, accepted: 0, left: 0, refused: 0 },
    stopped: undefined,
  };
  let attempts: Attempt[];
  let cut: boolean;
  const maxListed = options.maxListed ?? MAX_LISTED_ATTEMPTS;
  try {
    ({ attempts, cut } = await listAttemptsSince(options.app, since, maxListed));
  } catch (error) {
    log.warn(
      { err: error, status: statusOf(error) },
      "cannot list the app's webhook deliveries; none redelivered",
    );
    return { ...report, stopped: "listing failed", error: oneLine(error) };
  }
  report.seen = attempts.length;
  if (cut) {
    report.listingCut = true;
    log.warn(
      { read: attempts.length, since: since.toISOString() },
      "the app's webhook deliveries are too many to read back to the window's start: older ones are not checked",
    );
  }
  const byGuid = groupByGuid(attempts);
  report.deliveries = byGuid.size;
  const missed: Missed[] = [];
  for (const [guid, tries] of byGuid) {
    if (tries.some((t) => t.status_code >= 200 && t.status_code < 300)) {
      report.skipped.delivered++;
    } else if (
      tries.some((t) => t.redelivery && !failedForNow(t.status_code)) ||
      tries.filter((t) => t.redelivery).length >= (options.maxRedeliveries ?? Infinity)
    ) {
      report.skipped.redeliveredBefore++;
    } else {
      missed.push(describeMissed(guid, tries));
    }
  }
  missed.sort((a, b) => a.firstAt - b.firstAt || a.firstId - b.firstId);

  const wanted: Missed[] = [];
  for (const delivery of missed) {
    try {
      if (await options.known(delivery.guid)) {
        report.skipped.accepted++;
        continue;
      }
    } catch (error) {
      // The ledger cannot say (Redis away): deliveries Talos accepted would be asked for too, and
      // every redelivery refused while it is away.
      log.warn({ err: error }, "cannot read the delivery ledger; none redelivered");
      return { ...report, stopped: "ledger failed", error: oneLine(error) };
    }
    wanted.push(delivery);
  }

  const chosen = wanted.slice(0, Math.max(0, options.max));
  report.chosen = chosen.map(({ guid, event, action, firstAt }) => ({
    guid,
    event,
    action,
    firstAt: new Date(firstAt).toISOString(),
  }));
  report.skipped.left = wanted.length - chosen.length;
  if (report.skipped.left > 0)
    log.warn(
      { left: report.skipped.left, max: options.max },
      "more missed deliveries than one run asks for; the newest are left for the next start",
    );
  for (const [index, delivery] of (options.dryRun ? [] : chosen).entries()) {
    if (options.signal?.aborted) {
      report.stopped = "aborted";
      report.skipped.left += chosen.length - index;
      break;
    }
    const fields = { guid: delivery.guid, delivery: delivery.id, event: delivery.event };
    try {
      await options.app.rest.apps.redeliverWebhookDelivery({ delivery_id: delivery.id });
      report.redelivered++;
      log.debug({ ...fields, action: delivery.action }, "asked GitHub to redeliver");
    } catch (error) {
      const status = statusOf(error);
      // A 4xx is this delivery's (gone, too old): the others may still be asked for. Anything
      // else (5xx after the retries, no network, a rate limit the client did not wait out)
      // would fail them all; asking on into a rate limit may get the app banned for a while.
      if (status !== undefined && status >= 400 && status < 500 && !isRateLimited(error)) {
        report.skipped.refused++;
        log.warn({ ...fields, status, err: error }, "GitHub refused to redeliver a delivery");
        continue;
      }
      log.warn({ ...fields, status, err: error }, "cannot ask GitHub for redeliveries; stopping");
      report.stopped = "redelivery failed";
      report.error = oneLine(error);
      report.skipped.left += chosen.length - index;
      break;
    }
  }
  const counted = options.metrics?.webhookRedeliveries;
  if (report.redelivered > 0) counted?.inc({ outcome: "asked" }, report.redelivered);
  if (report.skipped.refused > 0) counted?.inc({ outcome: "refused" }, report.skipped.refused);
  if (report.skipped.left > 0) counted?.inc({ outcome: "left" }, report.skipped.left);
  log.info(
    {
      since: since.toISOString(),
      seen: report.seen,
      deliveries: report.deliveries,
      redelivered: report.redelivered,
      skipped: report.skipped,
      ...(report.stopped ? { stopped: report.stopped } : {}),
    },
    options.dryRun
      ? "found missed deliveries; none asked for (dry run)"
      : "asked GitHub to redeliver missed deliveries",
  );
  return report;
}

/**
 * Reads the listing, newest first, until an attempt older than `since`; `cut` when it stopped
 * first at `max` attempts read, or at the pages `max` attempts fill (two at least): the attempts it
 * skips count too, and so do pages with none (a listing of those whose `Link` went on had been
 * read for ever, at every start).
 */
async function listAttemptsSince(
  app: AppClient,
  since: Date,
  max: number,
): Promise<{ attempts: Attempt[]; cut: boolean }> {
  const attempts: Attempt[] = [];
  const oldest = since.getTime();
  const maxPages = Math.max(2, Math.ceil(max / PAGE_SIZE));
  let read = 0;
  let pagesRead = 0;
  const pages = app.paginate.iterator(app.rest.apps.listWebhookDeliveries, {
    per_page: PAGE_SIZE,
  });
  // The iterator follows the `Link` header's cursor; leaving the loop requests no further page.
  for await (const page of pages) {
    pagesRead++;
    for (const attempt of page.data) {
      if (read++ >= max) return { attempts, cut: true };
      // An attempt without a time cannot be placed in the window (nor in order): the listing
      // ends there, as it would at an old one.
      if (!(Date.parse(attempt.delivered_at) >= oldest)) return { attempts, cut: false };
      if (typeof attempt.guid !== "string" || !Number.isSafeInteger(attempt.id)) continue;
      attempts.push(attempt);
    }
    // Another page may follow: the iterator asks for it only when the loop goes on.
    if (pagesRead >= maxPages) return { attempts, cut: true };
  }
  return { attempts, cut: false };
}

const PAGE_SIZE = 100;

/** For the report: an error as `describeError` gives it, on one line. */
const oneLine = (error: unknown) => describeError(error).replace(/\s+/g, " ").slice(0, 300);

/** An attempt's status that another attempt may not get: a 5xx, or none (no connection). */
const failedForNow = (status: number) => !(status >= 100 && status < 500);

function groupByGuid(attempts: Attempt[]): Map<string, Attempt[]> {
  const byGuid = new Map<string, Attempt[]>();
  for (const attempt of attempts) {
    const tries = byGuid.get(attempt.guid);
    if (tries) tries.push(attempt);
    else byGuid.set(attempt.guid, [attempt]);
  }
  return byGuid;
}

function describeMissed(guid: string, tries: Attempt[]): Missed {
  // Attempts are listed newest first.
  const newest = tries[0]!;
  const first = tries.at(-1)!;
  return {
    guid,
    id: newest.id,
    firstAt: Date.parse(first.delivered_at),
    firstId: first.id,
    event: newest.event,
    action: newest.action,
  };
}

/**
 * How far back a redelivery run looks: TALOS_REDELIVER_HOURS (or `--hours`), but no further than
 * the ledger remembers finished deliveries (TALOS_LEDGER_RETENTION_HOURS). A delivery Talos
 * accepted and ran whose answer GitHub saw fail (a reset, a timeout) is skipped only while the
 * ledger knows it; older, it would be asked for again and run twice.
 */
export function redeliveryWindowHours(hours: number, ledgerRetentionHours: number): number {
  return Math.min(hours, ledgerRetentionHours);
}

export interface RedeliverMissedAtStartOptions {
  /** The app's client: `probot.auth()` with no installation id. */
  auth: () => Promise<AppClient>;
  /** Deliveries it accepted (waiting, running, parked or finished) are not asked for. */
  queue: Pick<JobQueue, "has">;
  /** `TALOS_REDELIVER_HOURS`: how far back to look; 0 switches the run off. */
  hours: number;
  /** `TALOS_LEDGER_RETENTION_HOURS`: the look-back is cut to it (redeliveryWindowHours). */
  ledgerRetentionHours: number;
  clock: Clock;
  log: Logger;
  max?: number;
  signal?: AbortSignal;
  metrics?: Pick<Metrics, "webhookRedeliveries">;
}

/**
 * The run at start, once the server listens (GitHub POSTs each redelivery to it). Undefined when
 * switched off. Never throws: a start does not fail for it.
 */
export async function redeliverMissedAtStart(
  options: RedeliverMissedAtStartOptions,
): Promise<RedeliveryReport | undefined> {
  const { log } = options;
  if (!(options.hours > 0)) {
    log.debug("missed deliveries are not asked for: TALOS_REDELIVER_HOURS is 0");
    return undefined;
  }
  const hours = redeliveryWindowHours(options.hours, options.ledgerRetentionHours);
  if (hours < options.hours)
    log.warn(
      { redeliverHours: options.hours, ledgerRetentionHours: options.ledgerRetentionHours },
      `missed deliveries are asked for ${hours} h back, not ${options.hours}: the ledger forgets accepted ones after TALOS_LEDGER_RETENTION_HOURS; raise it to look further back`,
    );
  return redeliverMissedAsApp(options, {
    since: new Date(options.clock.now() - hours * 3_600_000),
  });
}

/**
 * One run as the server makes it, at start or while it runs: as the app, taking the deliveries
 * the queue accepted as known. Undefined when the app cannot authenticate. Never throws.
 */
export async function redeliverMissedAsApp(
  options: Pick<
    RedeliverMissedAtStartOptions,
    "auth" | "queue" | "log" | "max" | "signal" | "metrics"
  >,
  run: Pick<RedeliverMissedOptions, "since" | "maxRedeliveries">,
): Promise<RedeliveryReport | undefined> {
  const { log } = options;
  let app: AppClient;
  try {
    app = await options.auth();
  } catch (error) {
    log.warn({ err: error }, "cannot authenticate as the app; no missed delivery redelivered");
    return undefined;
  }
  return redeliverMissed({
    app,
    ...run,
    known: (guid) => options.queue.has(guid),
    log,
    max: options.max ?? REDELIVER_MAX_PER_START,
    signal: options.signal,
    metrics: options.metrics,
  });
}

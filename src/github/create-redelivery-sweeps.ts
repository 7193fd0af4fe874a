import {
  redeliverMissedAsApp,
  redeliverMissedAtStart,
  redeliveryWindowHours,
  type RedeliverMissedAtStartOptions,
  type RedeliveryReport,
} from "./redeliver-missed.js";

/**
 * GitHub never redelivers on its own, and Talos answers some deliveries with a failure of its own
 * while it runs (503 when the webhook bodies being received fill TALOS_WEBHOOK_INFLIGHT_MB or the
 * queue's Redis is away, 500 when the journal refuses a job over TALOS_JOB_QUEUE_MAX): asked for
 * only at the next start, they were lost past GitHub's 3 days on a server that ran longer.
 */

/**
 * How long after a refusal its sweep starts: the 503's `retry-after`. GitHub has recorded the
 * failed attempt by then (it is listed once answered), and the load that refused it may be over.
 */
export const SWEEP_DELAY_MS = 60_000;

/**
 * How long after a refusal GitHub may take to list its attempt: a refusal made this close to a
 * sweep's start gets the next sweep too.
 */
export const LISTING_LAG_MS = 10_000;

/** The least time between the starts of two sweeps (the start's run included). */
export const SWEEP_INTERVAL_MS = 5 * 60_000;

/**
 * How far before the earliest refusal a sweep looks: GitHub dates an attempt when it began, and a
 * refused delivery may have been received (or its handler waited for) for minutes before its
 * answer; the clocks of GitHub and this host differ too.
 */
export const SWEEP_MARGIN_MS = 15 * 60_000;

/**
 * How many times one delivery is redelivered while the server runs: one refused again at each
 * (the server still loaded) is then left for the next start rather than asked for at every sweep.
 */
export const MAX_REDELIVERIES_WHILE_RUNNING = 3;

/**
 * Sweeps that stop short (GitHub's listing failed, the ledger could not be read, more missed than
 * one sweep asks for) are tried again, each after twice the wait of the one before; after this
 * many the refusals are left for the next start.
 */
export const MAX_FAILED_SWEEPS = 5;

export interface RedeliverySweepsOptions extends RedeliverMissedAtStartOptions {
  /** Aborted at shutdown: no sweep starts, and one under way asks for no more redeliveries. */
  signal: AbortSignal;
  delayMs?: number;
  intervalMs?: number;
}

export interface RedeliverySweeps {
  /** The start's run; sweeps after refusals follow it, never beside it. */
  start(): Promise<void>;
  /** Talos has just answered a webhook delivery with a failure of its own (a 5xx). */
  refused(): void;
  /** Resolves once no sweep runs or waits (for tests). */
  idle(): Promise<void>;
}

/**
 * The missed-delivery runs of a server: the start's, then one after Talos has refused deliveries,
 * `delayMs` after the first of them and at least `intervalMs` after the run before, looking back
 * to that first refusal (less SWEEP_MARGIN_MS) rather than the whole TALOS_REDELIVER_HOURS. The
 * refusals of a burst, or made while a sweep waits, share one sweep; those made while one runs
 * (its own redeliveries refused again included) get the next. Never throws.
 */
export function createRedeliverySweeps(options: RedeliverySweepsOptions): RedeliverySweeps {
  const { clock, log, signal } = options;
  const delayMs = options.delayMs ?? SWEEP_DELAY_MS;
  const intervalMs = options.intervalMs ?? SWEEP_INTERVAL_MS;
  const windowMs = redeliveryWindowHours(options.hours, options.ledgerRetentionHours) * 3_600_000;
  // Until the start's run has ended there is nothing to sweep beside it; with
  // TALOS_REDELIVER_HOURS=0, never.
  let armed = false;
  /** When the earliest refusal no sweep has covered yet was made. */
  let refusedAt: number | undefined;
  /** When the latest refusal was made. */
  let lastRefusedAt = -Infinity;
  let lastStartAt = -Infinity;
  let failed = 0;
  let sweeping: Promise<void> | undefined;

  const wake = () => {
    if (!armed || sweeping || refusedAt === undefined || signal.aborted) return;
    sweeping = sweepWhileRefused()
      .catch((error: unknown) => log.warn({ err: error }, "redelivery sweep failed"))
      .finally(() => (sweeping = undefined));
  };

  async function sweepWhileRefused(): Promise<void> {
    while (refusedAt !== undefined && !signal.aborted) {
      const backoff = intervalMs * 2 ** failed;
      const wait = Math.max(refusedAt + delayMs, lastStartAt + backoff) - clock.now();
      if (wait > 0) await clock.sleep(wait, signal);
      if (signal.aborted) return;
      const earliest = refusedAt;
      lastStartAt = clock.now();
      // GitHub lists an attempt some time after it was made, which `delayMs` waits out for the
      // first refusal only: one made just before the sweep may not be listed yet, so the next
      // sweep looks back to it again (the margin covers those before it). It had been taken as
      // covered, and left for the next start (found by a review).
      refusedAt = lastRefusedAt > lastStartAt - LISTING_LAG_MS ? lastRefusedAt : undefined;
      const since = new Date(Math.max(lastStartAt - windowMs, earliest - SWEEP_MARGIN_MS));
      log.info({ since: since.toISOString() }, "deliveries were refused; asking for missed ones");
      const report = await redeliverMissedAsApp(options, {
        since,
        maxRedeliveries: MAX_REDELIVERIES_WHILE_RUNNING,
      });
      if (signal.aborted || !stoppedShort(report)) {
        failed = 0;
        continue;
      }
      if (++failed >= MAX_FAILED_SWEEPS) {
        failed = 0;
        log.warn(
          { sweeps: MAX_FAILED_SWEEPS },
          "redelivery sweeps keep stopping short; the refused deliveries are left for the next start",
        );
        continue;
      }
      // Not covered: the next sweep looks back to it again.
      refusedAt = Math.min(refusedAt ?? earliest, earliest);
    }
  }

  return {
    async start() {
      lastStartAt = clock.now();
      await redeliverMissedAtStart(options).catch((error: unknown) =>
        log.warn({ err: error }, "redelivery of missed deliveries failed"),
      );
      armed = options.hours > 0;
      wake();
    },
    refused() {
      if (signal.aborted) return;
      lastRefusedAt = clock.now();
      refusedAt ??= lastRefusedAt;
      wake();
    },
    idle: async () => {
      while (sweeping) await sweeping;
    },
  };
}

/** A run that did not cover its window: the refused deliveries in it may not have been asked for. */
function stoppedShort(report: RedeliveryReport | undefined): boolean {
  return report === undefined || report.stopped !== undefined || report.skipped.left > 0;
}

import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { Clock } from "../clock.js";
import { readJsonFile } from "../read-json-file.js";
import { writeFileAtomically } from "../write-file-atomically.js";

/** What `alive.json` holds. */
const AliveMarkSchema = z.object({
  /** When this data directory's server was last known running. */
  aliveAt: z.string().datetime(),
  /** A catch-up not finished yet: memory may miss what GitHub changed since then. */
  catchUpFrom: z.string().datetime().optional(),
  /** The repositories (`installation/repository` ids) that catch-up has caught up already. */
  caughtUp: z.array(z.string().max(100)).max(1_000_000).optional(),
});
export type AliveMark = z.infer<typeof AliveMarkSchema>;

export interface OutageCatchUpOptions {
  /** `TALOS_DATA_DIR`. */
  directory: string;
  /** `TALOS_REDELIVER_HOURS`: how far back the start's redeliveries reach. */
  redeliverHours: number;
  /** Catches every remembered repository up; true once all are (BackfillRunner). */
  catchUp: (since: string, progress: CatchUpProgress) => Promise<boolean>;
  clock: Clock;
  log: Logger;
  /** How often the mark is written while the server runs. */
  everyMs?: number;
}

/** Which repositories a catch-up has caught up: a start after a stop goes on with the rest. */
export interface CatchUpProgress {
  /** Keys (`installation/repository` ids) caught up before. */
  done: ReadonlySet<string>;
  /** One more is. */
  finished(key: string): void;
}

export interface OutageCatchUp {
  /** Settles when the start's catch-up has ended (at once when none was needed). */
  readonly settled: Promise<void>;
  /** Stops the heartbeat and writes the mark a last time. */
  stop(): Promise<void>;
}

export const ALIVE_FILE = "alive.json";
export const ALIVE_EVERY_MS = 10 * 60_000;
/** GitHub's clock and ours may differ: a catch-up reads this much further back. */
const CLOCK_SKEW_MS = 10 * 60_000;

/**
 * Memory follows GitHub by webhooks, and a delivery missed while Talos was down is asked for
 * again at start (redeliver-missed.ts), but only as far back as `TALOS_REDELIVER_HOURS`
 * (GitHub keeps deliveries 3 days). Past that, what changed meanwhile would be missing from
 * memory for good. So the server writes when it was last running (`alive.json` in the data
 * directory, every `everyMs` and at shutdown), and a start that finds the last mark older than
 * the redeliveries reach catches every remembered repository up with what GitHub changed since
 * (catch-up-repository.ts), backfills the repositories it has no memory of, and deletes the
 * memory of those their installation no longer holds (BackfillRunner.catchUp). The mark keeps
 * `catchUpFrom` until every repository is caught up, and those caught up (`caughtUp`), so a
 * catch-up cut short by a stop or a failure goes on at the next start with the rest. A data
 * directory without the mark (a first start, or one from before it existed) needs none. Only
 * memory is caught up: a new issue of the outage is not triaged days later.
 */
export async function startOutageCatchUp(options: OutageCatchUpOptions): Promise<OutageCatchUp> {
  const { clock, log } = options;
  const file = join(options.directory, ALIVE_FILE);
  const previous = await readAliveMark(file).catch((error: unknown) => {
    // No catch-up then, rather than one from an unknown time: memory is as it was before marks.
    log.warn({ err: error, file }, "cannot read when Talos last ran; no catch-up of memory");
    return undefined;
  });
  const now = clock.now();
  // Down again past the redeliveries' reach while a catch-up was unfinished: what the repositories
  // caught up before missed since is to read too, so they all are caught up again.
  const downLong = previous !== undefined && !reachedByRedeliveries(previous, now, options);
  let from = previous?.catchUpFrom ?? (downLong ? sinceMark(previous!) : undefined);
  const caughtUp = new Set(from && !downLong ? (previous?.caughtUp ?? []) : []);
  // One write at a time, in order: the last one is what the file holds.
  let writing: Promise<void> = Promise.resolve();
  const write = () => {
    const mark: AliveMark = {
      aliveAt: new Date(clock.now()).toISOString(),
      ...(from ? { catchUpFrom: from, caughtUp: [...caughtUp] } : {}),
    };
    writing = writing
      .then(() => writeFileAtomically(file, `${JSON.stringify(mark)}\n`))
      .catch((error: unknown) => log.warn({ err: error, file }, "cannot write alive.json"));
    return writing;
  };
  // Before anything is caught up: a crash from now on finds the catch-up still to do.
  await write();
  const timer = setInterval(() => void write(), options.everyMs ?? ALIVE_EVERY_MS).unref();
  let settled = Promise.resolve();
  if (from) {
    const since = from;
    log.info(
      { lastRunning: previous?.aliveAt, since, caughtUpBefore: caughtUp.size },
      "Talos was down longer than redeliveries reach: catching memory up with GitHub",
    );
    const progress: CatchUpProgress = {
      done: new Set(caughtUp),
      finished: (key) => {
        caughtUp.add(key);
        void write();
      },
    };
    settled = options.catchUp(since, progress).then(
      async (done) => {
        if (!done)
          return log.warn({ since }, "memory catch-up unfinished; the next start resumes it");
        from = undefined;
        caughtUp.clear();
        await write();
        log.info({ since }, "memory caught up after an outage");
      },
      (error: unknown) => log.error({ err: error, since }, "memory catch-up failed"),
    );
  }
  return {
    settled,
    stop: async () => {
      clearInterval(timer);
      await write();
    },
  };
}

/** Whether the start's redeliveries reach back to when Talos was last running. */
function reachedByRedeliveries(
  mark: AliveMark,
  now: number,
  { redeliverHours }: Pick<OutageCatchUpOptions, "redeliverHours">,
): boolean {
  // Down since some time after `aliveAt`.
  return Date.parse(mark.aliveAt) - CLOCK_SKEW_MS >= now - redeliverHours * 3_600_000;
}

const sinceMark = (mark: AliveMark) =>
  new Date(Date.parse(mark.aliveAt) - CLOCK_SKEW_MS).toISOString();

export const readAliveMark = (file: string): Promise<AliveMark | undefined> =>
  readJsonFile(file, AliveMarkSchema);

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

/**
 * Where the mark of when Talos last ran is kept: `alive.json` in the data directory
 * (FileAliveMarks), or with DATABASE_URL one row every instance shares (PostgresAliveMarks), so
 * that an instance down while others ran catches nothing up, and after an outage of them all one
 * of them does.
 */
export interface AliveMarks {
  /**
   * This process is running at `now`: returns the catch-up it is to run (Talos was down longer
   * than `reachMs`, or one is unfinished), taken for this process; none when another running
   * instance has it.
   */
  start(now: number, reachMs: number): Promise<PendingCatchUp | undefined>;
  /**
   * Still running at `now` (and running a catch-up, or not): returns an unfinished catch-up its
   * holder gave up, taken over.
   */
  beat(now: number, running: boolean): Promise<PendingCatchUp | undefined>;
  /** One more repository (`installation/repository` ids) is caught up. */
  caughtUp(key: string, now: number): Promise<void>;
  /** The catch-up ended: finished, or not (left for a later start, or another instance). */
  end(now: number, finished: boolean): Promise<void>;
  /** The last mark, at shutdown; a catch-up still held is given up. */
  stop(now: number): Promise<void>;
}

export interface PendingCatchUp {
  /** Read what GitHub changed since then. */
  since: string;
  /** The repositories caught up already. */
  caughtUp: string[];
  /** When Talos was last known running, for the log. */
  lastRunning?: string | undefined;
}

export interface OutageCatchUpOptions {
  marks: AliveMarks;
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
export const CLOCK_SKEW_MS = 10 * 60_000;

/**
 * Memory follows GitHub by webhooks, and a delivery missed while Talos was down is asked for
 * again at start (redeliver-missed.ts), but only as far back as `TALOS_REDELIVER_HOURS`
 * (GitHub keeps deliveries 3 days). Past that, what changed meanwhile would be missing from
 * memory for good. So the server marks when it was last running (every `everyMs` and at
 * shutdown, see AliveMarks), and a start that finds the last mark older than the redeliveries
 * reach catches every remembered repository up with what GitHub changed since
 * (catch-up-repository.ts), backfills the repositories it has no memory of, and deletes the
 * memory of those their installation no longer holds (BackfillRunner.catchUp). The mark keeps
 * the catch-up until every repository is caught up, and those caught up, so a catch-up cut short
 * by a stop or a failure goes on later with the rest. No mark yet (a first start, or one from
 * before marks existed) needs none. Only memory is caught up: a new issue of the outage is not
 * triaged days later.
 */
export async function startOutageCatchUp(options: OutageCatchUpOptions): Promise<OutageCatchUp> {
  const { clock, log, marks } = options;
  const reachMs = options.redeliverHours * 3_600_000;
  let started = false;
  let stopped = false;
  let running: Promise<void> | undefined;
  const warn = (what: string) => (error: unknown) =>
    log.warn({ err: error }, `cannot ${what} the mark of when Talos last ran`);
  const run = (pending: PendingCatchUp): Promise<void> => {
    const { since } = pending;
    log.info(
      { lastRunning: pending.lastRunning, since, caughtUpBefore: pending.caughtUp.length },
      "Talos was down longer than redeliveries reach: catching memory up with GitHub",
    );
    const progress: CatchUpProgress = {
      done: new Set(pending.caughtUp),
      finished: (key) => void marks.caughtUp(key, clock.now()).catch(warn("record a catch-up")),
    };
    running = options
      .catchUp(since, progress)
      .then(
        async (finished) => {
          await marks.end(clock.now(), finished);
          if (finished) log.info({ since }, "memory caught up after an outage");
          else
            log.warn(
              { since },
              "memory catch-up unfinished; it goes on later (at the next start, or another instance's heartbeat)",
            );
        },
        async (error: unknown) => {
          log.error({ err: error, since }, "memory catch-up failed");
          await marks.end(clock.now(), false);
        },
      )
      .catch(warn("record the end of a catch-up"))
      .finally(() => (running = undefined));
    return running;
  };
  // Written before anything is caught up: a crash from now on finds the catch-up still to do.
  const begin = async () => {
    const pending = await marks.start(clock.now(), reachMs);
    started = true;
    return pending;
  };
  const pending = await begin().catch(warn("read or write"));
  const timer = setInterval(() => {
    // A start that could not read the mark (the database away) is tried again.
    void (started ? marks.beat(clock.now(), running !== undefined) : begin()).then(
      (taken) => (taken && !running && !stopped ? run(taken) : undefined),
      warn("write"),
    );
  }, options.everyMs ?? ALIVE_EVERY_MS).unref();
  return {
    settled: pending ? run(pending) : Promise.resolve(),
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await marks.stop(clock.now()).catch(warn("write"));
    },
  };
}

/**
 * What a start does after `previous` (undefined: no mark yet): the catch-up unfinished, or one
 * from before the last mark when that is older than the redeliveries reach; with the
 * repositories already caught up, unless Talos was down long again (what they missed since is
 * to read too).
 */
export function catchUpAfter(
  previous: AliveMark | undefined,
  now: number,
  reachMs: number,
): { since: string; caughtUp: string[] } | undefined {
  if (!previous) return undefined;
  // Down since some time after `aliveAt`.
  const downLong = Date.parse(previous.aliveAt) - CLOCK_SKEW_MS < now - reachMs;
  const since = previous.catchUpFrom ?? (downLong ? sinceMark(previous) : undefined);
  if (!since) return undefined;
  return { since, caughtUp: downLong ? [] : (previous.caughtUp ?? []) };
}

/** `alive.json` in the data directory: one server's mark. */
export class FileAliveMarks implements AliveMarks {
  readonly #file: string;
  readonly #log: Logger;
  #since: string | undefined;
  readonly #caughtUp = new Set<string>();
  /** One write at a time, in order: the last one is what the file holds. */
  #writing: Promise<void> = Promise.resolve();

  constructor(directory: string, log: Logger) {
    this.#file = join(directory, ALIVE_FILE);
    this.#log = log;
  }

  async start(now: number, reachMs: number): Promise<PendingCatchUp | undefined> {
    const previous = await readOwnAliveMark(this.#file, this.#log);
    const pending = catchUpAfter(previous, now, reachMs);
    this.#since = pending?.since;
    for (const key of pending?.caughtUp ?? []) this.#caughtUp.add(key);
    await this.#write(now);
    return pending && { ...pending, lastRunning: previous?.aliveAt };
  }

  /** One process has this directory: nobody else's catch-up to take over. */
  async beat(now: number): Promise<undefined> {
    await this.#write(now);
    return undefined;
  }

  caughtUp(key: string, now: number): Promise<void> {
    this.#caughtUp.add(key);
    return this.#write(now);
  }

  /** Unfinished, it stays in the file for the next start. */
  end(now: number, finished: boolean): Promise<void> {
    if (finished) {
      this.#since = undefined;
      this.#caughtUp.clear();
    }
    return this.#write(now);
  }

  stop(now: number): Promise<void> {
    return this.#write(now);
  }

  #write(now: number): Promise<void> {
    const mark: AliveMark = {
      aliveAt: new Date(now).toISOString(),
      ...(this.#since ? { catchUpFrom: this.#since, caughtUp: [...this.#caughtUp] } : {}),
    };
    this.#writing = this.#writing
      .then(() => writeFileAtomically(this.#file, `${JSON.stringify(mark)}\n`))
      .catch((error: unknown) =>
        this.#log.warn({ err: error, file: this.#file }, "cannot write alive.json"),
      );
    return this.#writing;
  }
}

const sinceMark = (mark: AliveMark) =>
  new Date(Date.parse(mark.aliveAt) - CLOCK_SKEW_MS).toISOString();

export const readAliveMark = (file: string): Promise<AliveMark | undefined> =>
  readJsonFile(file, AliveMarkSchema);

/**
 * This instance's `alive.json`, or undefined when it has none or it cannot be read (said in a
 * warning): no catch-up then, rather than one from an unknown time.
 */
export const readOwnAliveMark = (file: string, log: Logger): Promise<AliveMark | undefined> =>
  readAliveMark(file).catch((error: unknown) => {
    log.warn({ err: error, file }, "cannot read when Talos last ran; no catch-up of memory");
    return undefined;
  });

import {
  ALIVE_EVERY_MS,
  catchUpAfter,
  type AliveMark,
  type AliveMarks,
  type PendingCatchUp,
} from "../memory/outage-catch-up.js";
import type { Database, PooledClient } from "./database.js";

interface MarkRow {
  alive_at: Date;
  catch_up_from: Date | null;
  caught_up: string[];
  holder: string | null;
  held_at: Date | null;
}

/**
 * The mark of when Talos last ran, with DATABASE_URL: one row every instance shares. `alive_at`
 * is the latest of their heartbeats, so an instance down while others ran (and followed the
 * webhooks) catches nothing up. After an outage of them all, the first to start takes the
 * catch-up (`holder`, renewed by its heartbeat) and the others leave it to it; one that stops
 * gives it up, and one whose heartbeat stopped for `staleMs` (killed) loses it, to the next
 * instance whose heartbeat finds it. Every change reads and writes the row in one transaction,
 * the row locked.
 */
export class PostgresAliveMarks implements AliveMarks {
  readonly #database: Database;
  readonly #instance: string;
  readonly #staleMs: number;

  readonly #before: () => Promise<AliveMark | undefined>;

  constructor(
    database: Database,
    options: {
      instance: string;
      staleMs?: number;
      /** This instance's own mark from before the shared one (its `alive.json`), if any. */
      before?: () => Promise<AliveMark | undefined>;
    },
  ) {
    this.#database = database;
    this.#instance = options.instance;
    this.#before = options.before ?? (() => Promise.resolve(undefined));
    // Three heartbeats missed: not one late timer, nor a database restart between two.
    this.#staleMs = options.staleMs ?? 3 * ALIVE_EVERY_MS;
  }

  async start(now: number, reachMs: number): Promise<PendingCatchUp | undefined> {
    // Read first, outside the transaction: a file, which only matters if the row is missing.
    const before = await this.#before();
    return this.#change(async (client, row) => {
      if (!row) {
        // The first start since the shared mark exists: from this instance's own mark, as before
        // the upgrade (an outage that spans it is still caught up), or none, as with no alive.json.
        const pending = catchUpAfter(before, now, reachMs);
        const { rowCount } = await client.query(
          `INSERT INTO alive_mark (alive_at, catch_up_from, caught_up, holder, held_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
          pending
            ? [
                new Date(now),
                new Date(pending.since),
                pending.caughtUp,
                this.#instance,
                new Date(now),
              ]
            : [new Date(now), null, [], null, null],
        );
        // Another instance made the row meanwhile: its start decided.
        return pending && rowCount === 1 ? { ...pending, lastRunning: before?.aliveAt } : undefined;
      }
      const pending = catchUpAfter(
        {
          aliveAt: row.alive_at.toISOString(),
          ...(row.catch_up_from
            ? { catchUpFrom: row.catch_up_from.toISOString(), caughtUp: row.caught_up }
            : {}),
        },
        now,
        reachMs,
      );
      const taken = pending && !this.#heldByAnother(row, now) ? pending : undefined;
      await client.query(
        `UPDATE alive_mark SET alive_at = GREATEST(alive_at, $1)${
          taken ? ", catch_up_from = $2, caught_up = $3, holder = $4, held_at = $1" : ""
        }`,
        taken
          ? [new Date(now), new Date(taken.since), taken.caughtUp, this.#instance]
          : [new Date(now)],
      );
      return taken && { ...taken, lastRunning: row.alive_at.toISOString() };
    });
  }

  beat(now: number, running: boolean): Promise<PendingCatchUp | undefined> {
    return this.#change(async (client, row) => {
      if (!row) return undefined;
      // Held here but not running: its end could not be recorded (the database away).
      const orphaned =
        row.catch_up_from !== null &&
        (row.holder === this.#instance ? !running : !this.#heldByAnother(row, now));
      await client.query(
        `UPDATE alive_mark SET alive_at = GREATEST(alive_at, $1),
           held_at = CASE WHEN holder = $2 OR $3 THEN $1 ELSE held_at END,
           holder = CASE WHEN $3 THEN $2 ELSE holder END`,
        [new Date(now), this.#instance, orphaned],
      );
      return orphaned
        ? { since: row.catch_up_from!.toISOString(), caughtUp: row.caught_up }
        : undefined;
    });
  }

  async caughtUp(key: string, now: number): Promise<void> {
    await this.#query(
      `UPDATE alive_mark SET caught_up = array_append(caught_up, $1), held_at = $3
        WHERE holder = $2 AND NOT ($1 = ANY (caught_up))`,
      [key, this.#instance, new Date(now)],
    );
  }

  async end(now: number, finished: boolean): Promise<void> {
    // Unfinished, it is given up: the next heartbeat of any instance takes it again.
    await this.#query(
      `UPDATE alive_mark SET alive_at = GREATEST(alive_at, $1), holder = NULL, held_at = NULL
         ${finished ? ", catch_up_from = NULL, caught_up = '{}'" : ""}
        WHERE holder = $2`,
      [new Date(now), this.#instance],
    );
  }

  async stop(now: number): Promise<void> {
    await this.#query(
      `UPDATE alive_mark SET alive_at = GREATEST(alive_at, $1),
         held_at = CASE WHEN holder = $2 THEN NULL ELSE held_at END,
         holder = CASE WHEN holder = $2 THEN NULL ELSE holder END`,
      [new Date(now), this.#instance],
    );
  }

  /** Another instance holds the catch-up, and its heartbeat is recent. */
  #heldByAnother(row: MarkRow, now: number): boolean {
    return (
      row.holder !== null &&
      row.holder !== this.#instance &&
      row.held_at !== null &&
      row.held_at.getTime() > now - this.#staleMs
    );
  }

  /** The row, locked, and what `work` makes of it, in one transaction. */
  #change<T>(work: (client: PooledClient, row: MarkRow | undefined) => Promise<T>): Promise<T> {
    return this.#database.inScope({ installation: 0 }, async (client) => {
      const { rows } = await client.query<MarkRow>(
        "SELECT alive_at, catch_up_from, caught_up, holder, held_at FROM alive_mark FOR UPDATE",
      );
      return work(client, rows[0]);
    });
  }

  async #query(text: string, values: unknown[]): Promise<void> {
    await this.#database.inScope({ installation: 0 }, (client) => client.query(text, values));
  }
}

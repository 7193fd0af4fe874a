import { rename, unlink } from "node:fs/promises";
import type { Logger } from "pino";
import { FileSuspensionMarks, isMark, type SuspensionMarks } from "../memory/suspension-marks.js";
import type { Database } from "./database.js";

// Times are kept as epoch milliseconds, as JavaScript has them: timestamptz's text form and
// node-postgres's Date parsing do not take a year past 9999 (a clock gone wrong, but a time),
// and to_timestamp's float gave a time past 2255 back a millisecond early.

/**
 * The suspension marks with DATABASE_URL: one row per suspended installation, which every
 * instance reads and writes (a load balancer may send the suspension to one instance and the
 * unsuspension to another, whose own file knew nothing of it). Each change is one statement.
 */
export class PostgresSuspensionMarks implements SuspensionMarks {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  async record(installation: number, at: string): Promise<void> {
    if (!isMark(installation, at)) return;
    await this.#database.inScope({ installation }, (client) =>
      client.query(
        `INSERT INTO suspension_marks (installation_id, suspended_at_ms) VALUES ($1, $2)
         ON CONFLICT (installation_id) DO UPDATE
         SET suspended_at_ms = LEAST(suspension_marks.suspended_at_ms, EXCLUDED.suspended_at_ms)`,
        [installation, Date.parse(at)],
      ),
    );
  }

  async since(installation: number): Promise<string | undefined> {
    if (!Number.isSafeInteger(installation)) return undefined;
    const { rows } = await this.#database.inScope({ installation }, (client) =>
      client.query<{ ms: string }>(
        "SELECT suspended_at_ms AS ms FROM suspension_marks WHERE installation_id = $1",
        [installation],
      ),
    );
    return rows[0] && new Date(Number(rows[0].ms)).toISOString();
  }

  async all(): Promise<Map<number, string>> {
    const { rows } = await this.#database.inScope({ installation: 0 }, (client) =>
      client.query<{ installation_id: string; ms: string }>(
        "SELECT installation_id, suspended_at_ms AS ms FROM suspension_marks",
      ),
    );
    return new Map(
      rows.map((row) => [Number(row.installation_id), new Date(Number(row.ms)).toISOString()]),
    );
  }

  async clear(installation: number): Promise<void> {
    if (!Number.isSafeInteger(installation)) return;
    await this.#database.inScope({ installation }, (client) =>
      client.query("DELETE FROM suspension_marks WHERE installation_id = $1", [installation]),
    );
  }
}

/**
 * Moves the marks of `file` (`suspensions.json`, from before DATABASE_URL was set) into `shared`.
 * The file is renamed aside first (`.moving`) and removed once its marks are in: a file kept
 * after its marks were moved (one that could not be cleared) brought a mark back at every start,
 * after its catch-up had cleared it. A move a crash cut short is finished at the next start
 * (`record` keeps the earliest time: a mark moved twice is one). A file that cannot be read or
 * renamed is left, with a warning: the start goes on without its marks, as it would without
 * the file.
 */
export async function moveFileMarks(
  file: string,
  shared: SuspensionMarks,
  log: Logger,
): Promise<void> {
  const moving = `${file}.moving`;
  // A move cut short first: renaming the file over it would lose its marks.
  await moveFrom(moving, shared, log);
  try {
    await rename(file, moving);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      log.warn({ err: error, file }, "suspension marks not moved into the database");
    return;
  }
  await moveFrom(moving, shared, log);
}

async function moveFrom(path: string, shared: SuspensionMarks, log: Logger): Promise<void> {
  let marks: Map<number, string>;
  try {
    marks = await new FileSuspensionMarks(path, log).all();
  } catch (error) {
    log.warn({ err: error, file: path }, "suspension marks not moved into the database");
    return;
  }
  for (const [installation, at] of marks) await shared.record(installation, at);
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT")
      log.warn({ err: error, file: path }, "moved suspension marks not removed");
  });
}

import { isMark, type SuspensionMarks } from "../memory/suspension-marks.js";
import type { Database } from "./database.js";

// Times go in and out as epoch milliseconds: a year past 9999 (a clock gone wrong, but a time)
// is one PostgreSQL keeps and neither its text form nor node-postgres's Date parsing reads back.
const MS = "(extract(epoch FROM suspended_at) * 1000)::float8 AS ms";

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
        `INSERT INTO suspension_marks (installation_id, suspended_at)
         VALUES ($1, to_timestamp($2::float8 / 1000))
         ON CONFLICT (installation_id)
         DO UPDATE SET suspended_at = LEAST(suspension_marks.suspended_at, EXCLUDED.suspended_at)`,
        [installation, Date.parse(at)],
      ),
    );
  }

  async since(installation: number): Promise<string | undefined> {
    if (!Number.isSafeInteger(installation)) return undefined;
    const { rows } = await this.#database.inScope({ installation }, (client) =>
      client.query<{ ms: number }>(
        `SELECT ${MS} FROM suspension_marks WHERE installation_id = $1`,
        [installation],
      ),
    );
    return rows[0] && new Date(rows[0].ms).toISOString();
  }

  async all(): Promise<Map<number, string>> {
    const { rows } = await this.#database.inScope({ installation: 0 }, (client) =>
      client.query<{ installation_id: string; ms: number }>(
        `SELECT installation_id, ${MS} FROM suspension_marks`,
      ),
    );
    return new Map(
      rows.map((row) => [Number(row.installation_id), new Date(row.ms).toISOString()]),
    );
  }

  async clear(installation: number): Promise<void> {
    if (!Number.isSafeInteger(installation)) return;
    await this.#database.inScope({ installation }, (client) =>
      client.query("DELETE FROM suspension_marks WHERE installation_id = $1", [installation]),
    );
  }
}

import type { BudgetCounts, SharedBudgetCounts } from "../agent/token-budgets.js";
import type { Database } from "./database.js";

// The database's day, as budget days are counted: in UTC, whatever the session's time zone.
const DATABASE_DAY = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')::date";

/**
 * The daily token counts in PostgreSQL (with DATABASE_URL), shared by every instance and kept
 * with the rest of Talos's durable state. Each query runs in its installation's and repository's
 * scope, which row-level security enforces. `repository` is `<installation>/<repository>`, as the
 * budgets name it.
 */
export class PostgresBudgetCounts implements SharedBudgetCounts {
  readonly #database: Database;

  constructor(database: Database) {
    this.#database = database;
  }

  async spent(day: string, installation: string, repository: string): Promise<BudgetCounts> {
    const scope = scopeOf(installation, repository);
    const rows = await this.#database.inScope(scope, async (client) => {
      const result = await client.query<{ repository_id: string; tokens: string }>(
        "SELECT repository_id, tokens FROM budget_counts WHERE day = $1",
        [day],
      );
      return result.rows;
    });
    const tokensOf = (id: number) =>
      Number(rows.find((row) => Number(row.repository_id) === id)?.tokens ?? 0);
    return { installation: tokensOf(0), repository: tokensOf(scope.repository) };
  }

  async charge(day: string, installation: string, repository: string, tokens: number, id: string) {
    const scope = scopeOf(installation, repository);
    await this.#database.inScope(scope, async (client) => {
      // In the counts' transaction: the id is kept only with them, and a second time adds nothing.
      const fresh = await client.query(
        `INSERT INTO budget_charges (installation_id, repository_id, day, id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [scope.installation, scope.repository, day, id],
      );
      if (fresh.rowCount === 0) return;
      // The ids of earlier days are no longer needed: a charge is sent again on its own day only.
      // Nor are earlier days' counts: a budget is a day's (yesterday's is kept for a clock that
      // steps back across midnight). Earlier than the database's day too: a charge of an instance
      // whose clock is days ahead (a VM resumed with a wrong clock) had deleted today's counts and
      // ids, reopening the day's budget for every instance (found by a review).
      await client.query(
        `DELETE FROM budget_charges
          WHERE installation_id = $1 AND repository_id = $2 AND day < LEAST($3::date, ${DATABASE_DAY}) - 1`,
        [scope.installation, scope.repository, day],
      );
      await client.query(
        `DELETE FROM budget_counts
          WHERE installation_id = $1 AND repository_id IN (0, $2) AND day < LEAST($3::date, ${DATABASE_DAY}) - 1`,
        [scope.installation, scope.repository, day],
      );
      await client.query(
        `INSERT INTO budget_counts (installation_id, repository_id, day, tokens)
         VALUES ($1, 0, $3, $4), ($1, $2, $3, $4)
         ON CONFLICT (installation_id, repository_id, day)
         DO UPDATE SET tokens = budget_counts.tokens + EXCLUDED.tokens`,
        [scope.installation, scope.repository, day, Math.ceil(tokens)],
      );
    });
  }

  async takeNotice(day: string, key: string, claimant?: string): Promise<boolean> {
    // `key` is `<installation>/<repository>#<thread>`.
    const [repository = "", thread = ""] = key.split("#");
    const scope = scopeOf(repository.split("/")[0] ?? "", repository);
    return this.#database.inScope(scope, async (client) => {
      const values = [scope.installation, scope.repository, day, thread];
      const result = await client.query(
        `INSERT INTO budget_notices (installation_id, repository_id, day, thread, claimant)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
        [...values, claimant ?? null],
      );
      if (result.rowCount === 1) {
        // Earlier days' notices are no longer asked for: kept, one row per thread and day stayed
        // for ever (Redis lets them expire after two days). Not today's by the database's clock,
        // which a notice taken on a far day had deleted, and each thread got a second.
        await client.query(
          `DELETE FROM budget_notices
            WHERE installation_id = $1 AND repository_id = $2 AND day < LEAST($3::date, ${DATABASE_DAY}) - 1`,
          values.slice(0, 3),
        );
        return true;
      }
      if (claimant === undefined) return false;
      // Taken already: by this claimant, whose post failed (a retried job), it is still its own.
      const { rows } = await client.query<{ claimant: string | null }>(
        `SELECT claimant FROM budget_notices
          WHERE installation_id = $1 AND repository_id = $2 AND day = $3 AND thread = $4`,
        values,
      );
      return rows[0]?.claimant === claimant;
    });
  }
}

function scopeOf(installation: string, repository: string) {
  const scope = {
    installation: Number(installation),
    repository: Number(repository.split("/")[1]),
  };
  if (!Number.isSafeInteger(scope.installation) || !Number.isSafeInteger(scope.repository))
    throw new Error(`budget scope ${repository} is not <installation id>/<repository id>`);
  return scope;
}

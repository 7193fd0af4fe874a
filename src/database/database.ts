import pg from "pg";
import type { Logger } from "pino";

/** Which installation's (and repository's) rows a transaction may see: the database enforces it. */
export interface DatabaseScope {
  installation: number;
  repository?: number | undefined;
}

export interface DatabaseOptions {
  /** `DATABASE_URL`. */
  url: string;
  /** `TALOS_DATABASE_SCHEMA`: Talos's tables live in this schema. */
  schema: string;
  log: Logger;
}

/**
 * The role every query runs as: it owns nothing and cannot bypass row-level security, so that a
 * query that forgets its scope sees no row, whoever the connecting user is (even a superuser,
 * which would bypass the policies).
 */
export const APP_ROLE = "talos_app";

// Row-level security: a row is visible to a transaction only when its installation is the one
// the transaction set, and, for a repository's rows, its repository too (0 is the installation's
// own row). Unset (or reset to '' when an earlier transaction's local setting ended) is NULL,
// and NULL matches nothing.
const SCOPED = `installation_id = NULLIF(current_setting('talos.installation', true), '')::bigint
  AND (repository_id = 0 OR repository_id = NULLIF(current_setting('talos.repository', true), '')::bigint)`;

/** The schema's versions, in order; each runs once, in a transaction, under the advisory lock. */
function migrations(schema: string): string[] {
  const table = (name: string) => `"${schema}".${name}`;
  const protect = (name: string) => `
    ALTER TABLE ${table(name)} ENABLE ROW LEVEL SECURITY;
    ALTER TABLE ${table(name)} FORCE ROW LEVEL SECURITY;
    CREATE POLICY scoped ON ${table(name)} USING (${SCOPED}) WITH CHECK (${SCOPED});
    GRANT SELECT, INSERT, UPDATE, DELETE ON ${table(name)} TO ${APP_ROLE};`;
  return [
    // 1: the daily token budgets, per installation (repository 0) and per repository.
    `CREATE TABLE ${table("budget_counts")} (
       installation_id bigint NOT NULL,
       repository_id bigint NOT NULL,
       day date NOT NULL,
       tokens bigint NOT NULL,
       PRIMARY KEY (installation_id, repository_id, day));
     CREATE TABLE ${table("budget_notices")} (
       installation_id bigint NOT NULL,
       repository_id bigint NOT NULL,
       day date NOT NULL,
       thread text NOT NULL,
       PRIMARY KEY (installation_id, repository_id, day, thread));
     ${protect("budget_counts")}
     ${protect("budget_notices")}`,
  ];
}

/**
 * PostgreSQL (`DATABASE_URL`): a pool, the schema migrated at open under an advisory lock (so
 * that instances starting together migrate once), and transactions scoped to an installation
 * and repository by the database's row-level security.
 */
export class Database {
  readonly #pool: pg.Pool;
  readonly #options: DatabaseOptions;

  private constructor(options: DatabaseOptions) {
    this.#options = options;
    this.#pool = new pg.Pool({ connectionString: options.url, max: 10 });
    // An idle client's error (the server restarted) would otherwise end the process.
    this.#pool.on("error", (error) => options.log.warn({ err: error }, "PostgreSQL client error"));
  }

  static async open(options: DatabaseOptions): Promise<Database> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema))
      throw new Error(`TALOS_DATABASE_SCHEMA: ${options.schema} is not a plain lower-case name`);
    const database = new Database(options);
    try {
      await database.#migrate();
    } catch (error) {
      await database.close();
      throw new Error(`DATABASE_URL: cannot prepare the database (${(error as Error).message})`, {
        cause: error,
      });
    }
    return database;
  }

  /**
   * Runs `work` in a transaction as APP_ROLE, seeing only `scope`'s rows. Committed when it
   * resolves, rolled back when it throws.
   */
  async inScope<T>(scope: DatabaseScope, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const { installation, repository } = scope;
    if (
      !Number.isSafeInteger(installation) ||
      !(repository === undefined || Number.isSafeInteger(repository))
    )
      throw new Error(`database scope ${installation}/${repository} is not a pair of ids`);
    const client = await this.#pool.connect();
    try {
      // One round trip: the ids are integers (checked above), so they go in the text as such.
      await client.query(
        `BEGIN; SET LOCAL ROLE ${APP_ROLE}; SET LOCAL search_path TO "${this.#options.schema}";
         SELECT set_config('talos.installation', '${installation}', true),
                set_config('talos.repository', '${repository ?? ""}', true)`,
      );
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #migrate(): Promise<void> {
    const { schema, log } = this.#options;
    const client = await this.#pool.connect();
    try {
      // One instance migrates; the others wait here, then find nothing left to do.
      await client.query("SELECT pg_advisory_lock(hashtext($1))", [`talos-migrations:${schema}`]);
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
        // A role is the cluster's, not the schema's: another schema's migration may be making it.
        await client.query(`DO $$ BEGIN
            CREATE ROLE ${APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
          EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
          END $$`);
        // The connecting user may become the app's role (a superuser may anyway).
        await client.query(`GRANT ${APP_ROLE} TO CURRENT_USER`).catch(() => undefined);
        await client.query(`GRANT USAGE ON SCHEMA "${schema}" TO ${APP_ROLE}`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS "${schema}".migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
        );
        const { rows } = await client.query<{ version: number }>(
          `SELECT coalesce(max(version), 0) AS version FROM "${schema}".migrations`,
        );
        const applied = rows[0]?.version ?? 0;
        const steps = migrations(schema);
        for (let version = applied + 1; version <= steps.length; version++) {
          await client.query("BEGIN");
          try {
            await client.query(steps[version - 1]!);
            await client.query(`INSERT INTO "${schema}".migrations (version) VALUES ($1)`, [
              version,
            ]);
            await client.query("COMMIT");
          } catch (error) {
            await client.query("ROLLBACK");
            throw error;
          }
          log.info({ schema, version }, "database migrated");
        }
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext($1))", [
          `talos-migrations:${schema}`,
        ]);
      }
    } finally {
      client.release();
    }
  }
}

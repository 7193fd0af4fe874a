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
  /** How long a query may go unanswered before it fails and its connection is closed. */
  queryTimeoutMs?: number | undefined;
  /** How long making a connection, or waiting for a free one in the pool, may take. */
  connectTimeoutMs?: number | undefined;
  /**
   * The same bound for each statement of a migration, the wait for another instance's migration
   * (the advisory lock) and other DDL (`asOwner`): these may wait or work for minutes.
   */
  migrationTimeoutMs?: number | undefined;
}

/**
 * A query with no answer in time (the server unreachable, as in a partition, or a NAT or load
 * balancer that forgot the connection; or overloaded): its connection was closed. Like any
 * PostgreSQL outage, the job that ran it fails and is tried again.
 */
export class DatabaseTimeoutError extends Error {
  override name = "DatabaseTimeoutError";
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

/**
 * A query's bound: the app's statements take milliseconds, a memory's page of records or a
 * search at most seconds, and a lock they wait for is held by transactions bounded the same way.
 */
const QUERY_TIMEOUT_MS = 30_000;
/** How much longer than the client the server lets an app statement run (see inScope). */
const STATEMENT_MARGIN_MS = 1_000;
/** A connection is made in milliseconds; the pool's ten are rarely all busy for long. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Migrations and index builds grow with the tables; another instance may be running them. */
const MIGRATION_TIMEOUT_MS = 15 * 60_000;
/** pg's error for a query whose `query_timeout` passed (lib/client.js). */
const PG_QUERY_TIMEOUT = "Query read timeout";

/**
 * The listening connection is checked this often: a connection whose packets are silently dropped
 * (a NAT or load balancer forgot it, a partition) raises no error, and its notifications just
 * stop, for good. TCP keepalive notices too, but only after minutes of the kernel's probes.
 */
const LISTEN_CHECK_MS = 2_000;
/** How long connecting, LISTEN or a check may take before the connection counts as lost. */
const LISTEN_TIMEOUT_MS = 2_000;
/**
 * Idle time before the kernel's keepalive probes begin, on every connection: one gone silent
 * while it waits (for a lock, for notifications) fails once the probes go unanswered.
 */
const KEEPALIVE_MS = 10_000;

/**
 * A PostgreSQL regular expression for one character that may be a CJK letter (a superset of
 * `isCjkLetter`'s, by blocks; a test checks every code point): the text of a record whose words
 * `spaceCjkPairs` changes has one.
 */
export const CJK_CHARACTER =
  "[\\u1100-\\u11ff\\u3005-\\u9fff\\ua960-\\ua97f\\uac00-\\ud7ff\\uf900-\\ufaff\\uff66-\\uffdc" +
  "\\U00016fe0-\\U00016fff\\U0001aff0-\\U0001b16f\\U0001d360-\\U0001d37f\\U00020000-\\U0003ffff]";

/** The schema's versions, in order; each runs once, in a transaction, under the advisory lock. */
export function migrations(schema: string): string[] {
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
    // 2: memory. A repository's row is its memory's (model, name, backfill progress); its
    // records follow it, and a deletion of the row takes them. `seq` orders every write of a
    // repository's records (a removal leaves its row, emptied, for the instances catching up).
    `CREATE SEQUENCE ${table("memory_seq")};
     GRANT USAGE ON SEQUENCE ${table("memory_seq")} TO ${APP_ROLE};
     CREATE TABLE ${table("memory_namespaces")} (
       installation_id bigint NOT NULL,
       repository_id bigint NOT NULL,
       gone boolean NOT NULL DEFAULT false,
       PRIMARY KEY (installation_id, repository_id));
     CREATE TABLE ${table("memory_repositories")} (
       installation_id bigint NOT NULL,
       repository_id bigint NOT NULL,
       generation bigint NOT NULL,
       name text NOT NULL,
       model text NOT NULL,
       dimension int NOT NULL,
       backfill jsonb,
       PRIMARY KEY (installation_id, repository_id));
     CREATE TABLE ${table("memory_records")} (
       installation_id bigint NOT NULL,
       repository_id bigint NOT NULL,
       id text NOT NULL,
       seq bigint NOT NULL,
       removed boolean NOT NULL DEFAULT false,
       kind text,
       text text,
       hash text,
       number int,
       author text,
       url text,
       created_at timestamptz,
       state text,
       metadata jsonb,
       dimension int,
       embedding bytea,
       fingerprints text[] NOT NULL DEFAULT '{}',
       words tsvector,
       PRIMARY KEY (installation_id, repository_id, id),
       FOREIGN KEY (installation_id, repository_id)
         REFERENCES ${table("memory_repositories")} ON DELETE CASCADE);
     CREATE INDEX memory_records_seq ON ${table("memory_records")} (installation_id, repository_id, seq);
     CREATE INDEX memory_records_words ON ${table("memory_records")} USING gin (words);
     CREATE INDEX memory_records_fingerprints ON ${table("memory_records")} USING gin (fingerprints);
     ${protect("memory_repositories")}
     ${protect("memory_records")}
     ${protect("memory_namespaces")}
     -- Which namespaces exist (ids only, nothing of their memory) is readable across scopes:
     -- the backfills resume from it at start, and an installation's deletion finds its own.
     CREATE POLICY listed ON ${table("memory_namespaces")} FOR SELECT USING (true);`,
    // 3: which instance runs a repository's backfill, until when (renewed page by page).
    `ALTER TABLE ${table("memory_repositories")}
       ADD COLUMN backfill_holder text, ADD COLUMN backfill_until timestamptz;`,
    // 4: who took a thread's over-budget notice (the command's comment): its retry may post it.
    `ALTER TABLE ${table("budget_notices")} ADD COLUMN claimant text;`,
    // 5: a thread's records by number (a deleted, transferred or forgotten issue), under the
    // repository's write lock: without it, a scan of the repository's rows (97 ms at 100,000).
    `CREATE INDEX memory_records_number ON ${table("memory_records")}
       (installation_id, repository_id, number);`,
    // 6: when any instance last ran, and the catch-up after an outage of them all: which
    // instance runs it (renewed by its heartbeat), and the repositories it caught up. One row;
    // nothing of an installation's in it.
    `CREATE TABLE ${table("alive_mark")} (
       id boolean PRIMARY KEY DEFAULT true CHECK (id),
       alive_at timestamptz NOT NULL,
       catch_up_from timestamptz,
       caught_up text[] NOT NULL DEFAULT '{}',
       holder text,
       held_at timestamptz);
     GRANT SELECT, INSERT, UPDATE ON ${table("alive_mark")} TO ${APP_ROLE};`,
    // 7: the keyword words of CJK text are its pairs of characters (spaceCjkPairs), where
    // PostgreSQL took a whole sentence as one word. The rows whose text may have CJK letters
    // lose their words, and the first open of their memory with pgvector computes them again,
    // as for rows written without it (#vectorize). The table's owner runs this, and FORCE ROW
    // LEVEL SECURITY would show it no row: lifted in this transaction only.
    `ALTER TABLE ${table("memory_records")} NO FORCE ROW LEVEL SECURITY;
     UPDATE ${table("memory_records")} SET words = NULL
      WHERE words IS NOT NULL AND text ~ E'${CJK_CHARACTER.replaceAll("\\", "\\\\")}';
     ALTER TABLE ${table("memory_records")} FORCE ROW LEVEL SECURITY;`,
    // 8: the ids of the day's budget charges: a charge sent again, after its answer was lost,
    // is counted once.
    `CREATE TABLE ${table("budget_charges")} (
       installation_id bigint NOT NULL,
       repository_id bigint NOT NULL,
       day date NOT NULL,
       id text NOT NULL,
       PRIMARY KEY (installation_id, repository_id, day, id));
     ${protect("budget_charges")}`,
    // 9: when each suspended installation was suspended (PostgresSuspensionMarks), in epoch
    // milliseconds: written in its installation's scope; read across them (a start's catch-up
    // looks at every one).
    `CREATE TABLE ${table("suspension_marks")} (
       installation_id bigint PRIMARY KEY,
       suspended_at_ms bigint NOT NULL);
     ALTER TABLE ${table("suspension_marks")} ENABLE ROW LEVEL SECURITY;
     ALTER TABLE ${table("suspension_marks")} FORCE ROW LEVEL SECURITY;
     CREATE POLICY scoped ON ${table("suspension_marks")}
       USING (installation_id = NULLIF(current_setting('talos.installation', true), '')::bigint)
       WITH CHECK (installation_id = NULLIF(current_setting('talos.installation', true), '')::bigint);
     CREATE POLICY listed ON ${table("suspension_marks")} FOR SELECT USING (true);
     GRANT SELECT, INSERT, UPDATE, DELETE ON ${table("suspension_marks")} TO ${APP_ROLE};`,
  ];
}

/** What every statement needs of a connection: pg's clients and PGlite's both have it. */
export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/** A pooled connection as `Database` lends it: each of its queries bounded (see `#lend`). */
export interface PooledClient extends SqlClient {
  query<R = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/**
 * What the memory needs of a database: scoped transactions, the pgvector extension if it is
 * there, and notifications. `Database` is PostgreSQL's; the tests give PGlite's the same shape.
 */
export interface MemoryDatabase {
  /** The pgvector extension is installed: similarity search runs in SQL. */
  readonly vector: boolean;
  inScope<T>(scope: DatabaseScope, work: (client: SqlClient) => Promise<T>): Promise<T>;
  /**
   * Calls `onMessage` with each notification on `channel`, and `onGap` whenever some may have
   * been missed (the connection dropped); `listening()` says whether they arrive now.
   */
  listen(
    channel: string,
    handlers: { onMessage: (payload: string) => void; onGap: () => void },
  ): Promise<{ listening: () => boolean; close: () => Promise<void> }>;
  /** Runs DDL as the schema's owner (an index for a new embedding dimension). */
  asOwner(sql: string): Promise<void>;
}

/**
 * PostgreSQL (`DATABASE_URL`): a pool, the schema migrated at open under an advisory lock (so
 * that instances starting together migrate once), and transactions scoped to an installation
 * and repository by the database's row-level security.
 */
export class Database implements MemoryDatabase {
  readonly #pool: pg.Pool;
  readonly #options: DatabaseOptions;
  /** The pool's connections whose socket has not closed yet (see `close`). */
  readonly #connections = new Set<pg.Client>();
  readonly #queryTimeoutMs: number;
  readonly #migrationTimeoutMs: number;
  #vector = false;

  private constructor(options: DatabaseOptions) {
    this.#options = options;
    this.#queryTimeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
    this.#migrationTimeoutMs = options.migrationTimeoutMs ?? MIGRATION_TIMEOUT_MS;
    // Without bounds, a connection gone silent (a partition, a NAT or load balancer that forgot
    // it) hangs its query, the job running it, and `close`, for ever: nothing answers, nothing
    // fails. https://node-postgres.com/apis/pool#new-pool
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_MS,
    });
    // An idle client's error (the server restarted) would otherwise end the process.
    this.#pool.on("error", (error) => options.log.warn({ err: error }, "PostgreSQL client error"));
    // A pool's clients are `pg.Client`s (its type hides `end`, which `release` stands for).
    this.#pool.on("connect", (client) => this.#connections.add(client as unknown as pg.Client));
    // Emitted once a connection the pool let go of has ended.
    this.#pool.on("remove", (client) => this.#connections.delete(client as unknown as pg.Client));
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

  get vector(): boolean {
    return this.#vector;
  }

  /**
   * Runs `work` in a transaction as APP_ROLE, seeing only `scope`'s rows. Committed when it
   * resolves, rolled back when it throws.
   */
  async inScope<T>(scope: DatabaseScope, work: (client: PooledClient) => Promise<T>): Promise<T> {
    const { installation, repository } = scope;
    if (
      !Number.isSafeInteger(installation) ||
      !(repository === undefined || Number.isSafeInteger(repository))
    )
      throw new Error(`database scope ${installation}/${repository} is not a pair of ids`);
    return this.#lend(this.#queryTimeoutMs, async (client) => {
      try {
        // One round trip: the ids are integers (checked above), so they go in the text as such.
        // The server stops a statement too, a second after the client gave up on it: a query
        // whose connection the client closed ran on (a scan, its locks held) until it ended.
        await client.query(
          `BEGIN; SET LOCAL ROLE ${APP_ROLE}; SET LOCAL search_path TO "${this.#options.schema}", public;
           SET LOCAL statement_timeout = ${Math.ceil(this.#queryTimeoutMs + STATEMENT_MARGIN_MS)};
           SELECT set_config('talos.installation', '${installation}', true),
                  set_config('talos.repository', '${repository ?? ""}', true)`,
        );
        const result = await work(client);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      }
    });
  }

  async asOwner(sql: string): Promise<void> {
    // DDL (an index over every record) may take minutes.
    await this.#lend(this.#migrationTimeoutMs, async (client) => {
      try {
        await client.query(`SET search_path TO "${this.#options.schema}", public`);
        await client.query(sql);
      } finally {
        await client.query("RESET search_path").catch(() => undefined);
      }
    });
  }

  /**
   * Lends a pooled connection to `work`, each query failing after `timeoutMs` without an answer.
   * pg's `query_timeout` fails the query but leaves it outstanding, and the connection's next
   * queries would queue behind it, each waiting its own bound: once one timed out, the others
   * fail at once, and the connection is closed, never returned to the pool.
   */
  async #lend<T>(timeoutMs: number, work: (client: PooledClient) => Promise<T>): Promise<T> {
    const pooled = await this.#pool.connect();
    let lost: Error | undefined;
    // A connection that drops while lent (the server restarted) emits an error, which would end
    // the process without a listener; its query fails with it too.
    const onError = (error: Error) => void (lost ??= error);
    pooled.on("error", onError);
    const client: PooledClient = {
      query: async <R>(text: string, values?: unknown[]) => {
        if (lost) throw lost;
        try {
          const config = { text, values, query_timeout: timeoutMs };
          return await pooled.query<R & pg.QueryResultRow>(config);
        } catch (error) {
          if ((error as Error).message !== PG_QUERY_TIMEOUT) throw error;
          lost ??= new DatabaseTimeoutError(
            `no answer from PostgreSQL within ${timeoutMs / 1000} s; its connection is closed`,
            { cause: error },
          );
          throw lost;
        }
      },
    };
    try {
      return await work(client);
    } finally {
      pooled.removeListener("error", onError);
      // With an error, the pool ends the connection rather than keeping it; pg ends one with a
      // query outstanding by destroying its socket, done here as well: a goodbye would wait for
      // the lost answer.
      pooled.release(lost);
      if (lost) (pooled as unknown as pg.Client).connection.stream.destroy();
    }
  }

  async listen(
    channel: string,
    handlers: { onMessage: (payload: string) => void; onGap: () => void },
  ): Promise<{ listening: () => boolean; close: () => Promise<void> }> {
    const { log } = this.#options;
    let client: pg.Client | undefined;
    /** A connection being made, not listening yet: `close` hangs it up too. */
    let connecting: pg.Client | undefined;
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    let checkTimer: NodeJS.Timeout | undefined;
    // Tries again every second until a connection listens (or `close`).
    const reconnect = () => {
      if (closed) return;
      timer = setTimeout(
        () =>
          void connect().catch((error: unknown) => {
            if (closed) return;
            log.warn({ err: error }, "PostgreSQL notifications: reconnecting failed");
            reconnect();
          }),
        1000,
      );
    };
    const connect = async (): Promise<void> => {
      const next = new pg.Client({
        connectionString: this.#options.url,
        keepAlive: true,
        keepAliveInitialDelayMillis: KEEPALIVE_MS,
        // A silent connection would otherwise hang a reconnection, or a check, for ever.
        connectionTimeoutMillis: LISTEN_TIMEOUT_MS,
        query_timeout: LISTEN_TIMEOUT_MS,
      });
      next.on("notification", (message) => handlers.onMessage(message.payload ?? ""));
      const lost = (error?: Error) => {
        if (client !== next) return;
        client = undefined;
        clearTimeout(checkTimer);
        void hangUp(next);
        if (closed) return;
        log.warn({ err: error }, "PostgreSQL notifications lost; reconnecting");
        handlers.onGap();
        reconnect();
      };
      next.on("error", lost);
      next.on("end", () => lost());
      connecting = next;
      try {
        await next.connect();
        await next.query(`LISTEN "${channel}"`);
      } catch (error) {
        await hangUp(next);
        throw error;
      } finally {
        connecting = undefined;
      }
      if (closed) return void (await hangUp(next));
      client = next;
      // What was written while no one listened is caught up with.
      handlers.onGap();
      // An unanswered check counts as a loss: notifications may have been missed since.
      const check = () => {
        if (client !== next) return;
        checkTimer = setTimeout(
          () => void next.query("SELECT 1").then(check, (error: Error) => lost(error)),
          LISTEN_CHECK_MS,
        );
      };
      check();
    };
    await connect();
    return {
      listening: () => client !== undefined,
      close: async () => {
        closed = true;
        clearTimeout(timer);
        clearTimeout(checkTimer);
        const open = [client, connecting].filter((c) => c !== undefined);
        client = undefined;
        await Promise.all(open.map(hangUp));
      },
    };
  }

  async close(): Promise<void> {
    await this.#pool.end();
    // The pool ends its idle connections with a goodbye, and their sockets stay open until the
    // server answers it: one gone silent never does, and they would keep the process alive.
    await Promise.all([...this.#connections].map(hangUp));
  }

  async #migrate(): Promise<void> {
    const { schema, log } = this.#options;
    await this.#lend(this.#migrationTimeoutMs, async (client) => {
      // One instance migrates; the others wait here, then find nothing left to do.
      await client.query("SELECT pg_advisory_lock(hashtext($1))", [`talos-migrations:${schema}`]);
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
        // A role is the cluster's, not the schema's: another schema's migration may be making it.
        // Made only where missing: CREATE ROLE checks the privilege before the name, and a user
        // without CREATEROLE, given the role by an administrator, would fail every start.
        await client.query(`DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
              CREATE ROLE ${APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
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
        this.#vector = await setUpVector(client, schema, log);
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext($1))", [
          `talos-migrations:${schema}`,
        ]);
      }
    });
  }
}

/**
 * Closes a connection without waiting for the server: pg's `end()` says goodbye, then waits for
 * the server to close its side, which a server gone silent (a partition, a NAT or load balancer
 * that forgot the connection) never does, for ever, with the socket keeping the process alive.
 * Resolves once the socket is closed.
 */
async function hangUp(client: pg.Client): Promise<void> {
  const ended = client.end().catch(() => undefined);
  client.connection.stream.destroy();
  await ended;
}

/**
 * pgvector, where the server has it: the extension (if the connecting user may create it) and
 * the column it searches. Without it, memory searches run in each instance's RAM.
 */
export async function setUpVector(
  client: SqlClient,
  schema: string,
  log: Logger,
): Promise<boolean> {
  const { rows } = await client.query(
    "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'",
  );
  if (rows.length === 0) return false;
  try {
    await client.query("CREATE EXTENSION IF NOT EXISTS vector");
    const { rows: installed } = await client.query<{ extversion: string }>(
      "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
    );
    const [major = 0, minor = 0] = (installed[0]?.extversion ?? "0").split(".").map(Number);
    // 0.8 scans an HNSW index on past rows the filters (another repository's) leave out.
    if (major === 0 && minor < 8) {
      log.warn(
        { version: installed[0]?.extversion },
        "pgvector is older than 0.8; memory searches run in RAM",
      );
      return false;
    }
    // Looked up first: ALTER TABLE takes the table's exclusive lock even when the column is
    // there, so each start waited for every memory transaction under way, and every memory
    // query of every instance queued behind it meanwhile.
    const { rows: column } = await client.query(
      `SELECT 1 FROM pg_attribute WHERE attrelid = '"${schema}".memory_records'::regclass
          AND attname = 'embedding_vector' AND NOT attisdropped`,
    );
    if (column.length === 0)
      await client.query(
        `ALTER TABLE "${schema}".memory_records ADD COLUMN IF NOT EXISTS embedding_vector vector`,
      );
    return true;
  } catch (error) {
    log.warn({ err: error }, "pgvector is available but could not be set up; searching in RAM");
    return false;
  }
}

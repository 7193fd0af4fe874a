import { pino } from "pino";
import {
  APP_ROLE,
  migrations,
  setUpVector,
  type DatabaseScope,
  type MemoryDatabase,
  type SqlClient,
} from "../../src/database/database.js";

/**
 * PGlite (PostgreSQL 17 in WebAssembly) with its bundled pgvector 0.8, migrated as Talos
 * migrates PostgreSQL, in the shape the memory needs: the pgvector path runs its real SQL here,
 * row-level security included, since the machine's PostgreSQL has no pgvector. One per test
 * file: making one takes seconds.
 */
/** What these tests use of PGlite. Its own declarations need the DOM's and Emscripten's types. */
interface PGlite extends SqlClient {
  exec(sql: string): Promise<unknown>;
  transaction<T>(work: (tx: PGlite) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// Imported by a name the compiler does not follow, for the reason above.
const PGLITE = "@electric-sql/pglite";

export async function openPgliteDatabase(schema = "talos"): Promise<{
  database: MemoryDatabase;
  /** As the owner, outside any scope. */
  owner: PGlite;
  close: () => Promise<void>;
}> {
  const { PGlite } = (await import(PGLITE)) as {
    PGlite: { create(options: object): Promise<PGlite> };
  };
  const { vector } = (await import(`${PGLITE}/vector`)) as { vector: object };
  const db = await PGlite.create({ extensions: { vector } });
  await db.exec(`CREATE SCHEMA "${schema}";
    CREATE ROLE ${APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
    GRANT USAGE ON SCHEMA "${schema}" TO ${APP_ROLE};`);
  for (const step of migrations(schema)) await db.exec(step);
  const vectorReady = await setUpVector(db, schema, pino({ level: "silent" }));
  if (!vectorReady) throw new Error("PGlite's pgvector did not set up");
  const database: MemoryDatabase = {
    vector: true,
    inScope: <T>(scope: DatabaseScope, work: (client: SqlClient) => Promise<T>) =>
      db.transaction(async (tx) => {
        await tx.exec(`SET LOCAL ROLE ${APP_ROLE}; SET LOCAL search_path TO "${schema}", public;
          SELECT set_config('talos.installation', '${scope.installation}', true),
                 set_config('talos.repository', '${scope.repository ?? ""}', true)`);
        return work(tx);
      }),
    asOwner: async (sql) => {
      await db.exec(`SET search_path TO "${schema}", public; ${sql}; RESET search_path`);
    },
    listen: () => {
      throw new Error("the pgvector path needs no notifications");
    },
  };
  return { database, owner: db, close: () => db.close() };
}

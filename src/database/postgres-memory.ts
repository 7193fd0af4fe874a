import type { Logger } from "pino";
import type { Metrics } from "../metrics/create-metrics.js";
import type { BackfillState } from "../memory/backfill-repository.js";
import { describeEmbedder, type Embedder } from "../memory/embedder.js";
import { spaceCjkPairs } from "../memory/english-words.js";
import {
  DEFAULT_FUSION,
  dot,
  keptHits,
  orderHits,
  searchHybrid,
  unitVector,
  type HybridHit,
} from "../memory/hybrid-search.js";
import {
  NAME,
  type MemoryNamespace,
  type RepositoryRef,
  type StoredNamespace,
} from "../memory/memory-registry.js";
import type { MemoryService, RepoMemory } from "../memory/memory-service.js";
import {
  checkRepository,
  isOlderVersion,
  MemoryDeletedError,
  validateEmbedding,
  validateMemory,
  storableText,
  type MemoryInput,
  type MemoryPage,
  type MemoryRecord,
  type MemoryStats,
  type MemoryStore,
  type SearchHit,
  type SearchOptions,
} from "../memory/memory-store.js";
import { fingerprintText, MAX_SHARED } from "../memory/near-duplicate.js";
import type { ScanHelper } from "../memory/scan-helper.js";
import { hashText } from "../memory/segment-words.js";
import { MemoryMismatchError, RESCORE_FACTOR } from "../memory/vectra-memory-store.js";
import { CJK_CHARACTER, type MemoryDatabase, type SqlClient } from "./database.js";
import { MEMORY_CHANNEL, SyncedIndexes, toFloat32 } from "./synced-indexes.js";

export interface PostgresMemoryOptions {
  database: MemoryDatabase;
  /** `TALOS_DATABASE_SCHEMA`, for messages. */
  schema: string;
  embedder: Embedder;
  log: Logger;
  metrics: Metrics;
  /** The RAM the in-memory search indexes may take (TALOS_MEMORY_MAX_OPEN_MB), without pgvector. */
  maxOpenBytes: number;
  scanHelper?: ScanHelper | undefined;
}

/** The query's rarest words the SQL keyword ranking weighs (an issue's text has hundreds). */
const RARE_TERMS = 24;
/**
 * The query's words whose rarity is counted, its first ones (the title's first): each count is
 * an index scan, and a 20,000-character query holds over a thousand distinct words.
 */
const QUERY_TERMS = 128;
/**
 * A word's count stops here: counting one that most records hold visits each of them. Those
 * past it weigh as a word held by this many; the rarest words are the ones picked anyway.
 */
const DF_CAP = 2_000;
/** How often a write retries when another instance changed a record it meant to keep. */
const MAX_WRITE_TRIES = 3;
/**
 * A forgotten thread's tombstone: a removed row of this id (a prefix no memory id has), which
 * each write looks up by primary key, and which goes with the rest of its repository's memory.
 */
const FORGOTTEN_PREFIX = "forgotten-thread:";
const forgottenId = (number: number) => `${FORGOTTEN_PREFIX}${number}`;
/**
 * The keyword ranking's text of `text` (SQL): the title weighs more, as in the local BM25.
 * `text` is the record's text with its CJK runs spaced into pairs (`keywordsOf`), or the text.
 */
function wordsOf(text: string): string {
  return `setweight(to_tsvector('english', split_part(${text}, E'\\n', 1)), 'A')
    || to_tsvector('english', ${text})`;
}
/** Records given their pgvector column (and keyword text) per transaction, on first open. */
const VECTORIZE_BATCH = 500;
/** Records a page of `listPage`: as many as a local store's segment holds. */
const PAGE_RECORDS = 1_000;

interface RecordRow {
  id: string;
  kind: string;
  text: string;
  number: number | null;
  author: string | null;
  url: string | null;
  created_at: string | Date;
  state: string | null;
  metadata: MemoryRecord["metadata"] | null;
  embedding: Uint8Array;
}

const RECORD_COLUMNS =
  "id, kind, text, number, author, url, created_at, state, metadata, embedding";

/**
 * Memory in PostgreSQL (DATABASE_URL), shared by every instance: records, their embeddings,
 * notes and backfill progress, in tables whose rows row-level security keeps to their
 * installation and repository. Every write is one transaction, durable on commit. Searches run
 * in SQL with pgvector (HNSW), or else on each instance's in-RAM index of the repositories in
 * use, which NOTIFY and a sequence number keep in step (see synced-indexes.ts).
 */
export class PostgresMemory implements MemoryService {
  readonly #options: PostgresMemoryOptions;
  readonly #indexes: SyncedIndexes | undefined;
  readonly #dimensions = new Set<number>();
  /** Memories whose records all have their pgvector column, as far as this process knows. */
  readonly #vectorized = new Set<string>();
  #warming: Promise<number> | undefined;
  #closing = false;

  private constructor(options: PostgresMemoryOptions, indexes: SyncedIndexes | undefined) {
    this.#options = options;
    this.#indexes = indexes;
  }

  static async open(options: PostgresMemoryOptions): Promise<PostgresMemory> {
    const indexes = options.database.vector
      ? undefined
      : await SyncedIndexes.open({
          database: options.database,
          dimension: options.embedder.dimension,
          maxBytes: options.maxOpenBytes,
          log: options.log,
          scanHelper: options.scanHelper,
        });
    return new PostgresMemory(options, indexes);
  }

  get embedder(): Embedder {
    return this.#options.embedder;
  }

  /** Searches run in SQL (pgvector), or in this instance's RAM. */
  get searchesInSql(): boolean {
    return this.#indexes === undefined;
  }

  /** The database's migrations ran when it opened. */
  async migrate(): Promise<void> {}

  /** No store to rank here: its search index is loaded as for any other use. */
  async look<T>(ref: RepositoryRef, use: (memory: MemoryStore) => Promise<T>): Promise<T> {
    return use(await this.open(ref));
  }

  async open(ref: RepositoryRef): Promise<RepoMemory> {
    checkRef(ref);
    const { embedder } = this.#options;
    if (this.#options.database.vector) await this.#vectorIndex(embedder.dimension);
    const generation = await this.#options.database
      .inScope(ref, async (client) => {
        await refuseGone(client, ref);
        const found = await client.query<{
          generation: string;
          name: string;
          model: string;
          dimension: number;
        }>(
          `SELECT generation, name, model, dimension FROM memory_repositories
          WHERE installation_id = $1 AND repository_id = $2`,
          [ref.installation, ref.repository],
        );
        const row = found.rows[0];
        if (!row) {
          const made = await client.query<{ generation: string }>(
            `INSERT INTO memory_repositories
             (installation_id, repository_id, generation, name, model, dimension)
           VALUES ($1, $2, nextval('memory_seq'), $3, $4, $5)
           ON CONFLICT DO NOTHING RETURNING generation`,
            [ref.installation, ref.repository, ref.name, embedder.model, embedder.dimension],
          );
          await client.query(
            `INSERT INTO memory_namespaces (installation_id, repository_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING`,
            [ref.installation, ref.repository],
          );
          // Another instance made it first: that one is the memory.
          if (!made.rows[0]) throw new RetryOpen();
          return Number(made.rows[0].generation);
        }
        if (row.model !== embedder.model || row.dimension !== embedder.dimension)
          throw new MemoryMismatchError(
            `the memory of ${ref.name} in PostgreSQL was embedded with ${describeEmbedder(row)}, but the configured embedder is ${describeEmbedder(embedder)}; their vectors cannot be compared. Configure ${row.model} again, or delete the memory's row of ${this.#options.schema}.memory_repositories (its records go with it) and run a backfill to rebuild it.`,
          );
        if (row.name !== ref.name)
          await client.query(
            "UPDATE memory_repositories SET name = $3 WHERE installation_id = $1 AND repository_id = $2",
            [ref.installation, ref.repository, ref.name],
          );
        return Number(row.generation);
      })
      .catch((error: unknown) => {
        if (error instanceof RetryOpen) return undefined;
        throw error;
      });
    if (generation === undefined) return this.open(ref);
    if (this.#options.database.vector) await this.#vectorize(ref);
    return new PostgresRepositoryMemory(this.#options, this.#indexes, ref, generation);
  }

  /**
   * Records written without pgvector (before it was installed, or by an instance without it)
   * have no `embedding_vector` nor `words`, which the SQL search ranks by: the first open of
   * their memory (in this process) fills them in.
   */
  async #vectorize(namespace: MemoryNamespace): Promise<void> {
    const key = keyOf(namespace);
    if (this.#vectorized.has(key)) return;
    for (;;) {
      const done = await this.#options.database.inScope(namespace, async (client) => {
        // The text only where it may have CJK letters: the others' keyword text is the text.
        const { rows } = await client.query<{
          id: string;
          embedding: Uint8Array;
          text: string | null;
        }>(
          `SELECT id, embedding, CASE WHEN text ~ $3 THEN text END AS text FROM memory_records
            WHERE installation_id = $1 AND repository_id = $2 AND NOT removed
              AND (embedding_vector IS NULL OR words IS NULL) LIMIT ${VECTORIZE_BATCH} FOR UPDATE`,
          [namespace.installation, namespace.repository, CJK_CHARACTER],
        );
        if (rows.length > 0)
          await client.query(
            `UPDATE memory_records r SET embedding_vector = x.v::vector,
                    words = ${wordsOf("coalesce(x.kw, r.text)")}
               FROM jsonb_to_recordset($3::jsonb) AS x(id text, v text, kw text)
              WHERE r.installation_id = $1 AND r.repository_id = $2 AND r.id = x.id`,
            [
              namespace.installation,
              namespace.repository,
              JSON.stringify(
                rows.map((row) => ({
                  id: row.id,
                  v: vectorLiteral(toFloat32(row.embedding)),
                  kw: row.text === null ? null : keywordsOf(row.text),
                })),
              ),
            ],
          );
        return rows.length < VECTORIZE_BATCH;
      });
      if (done) break;
    }
    this.#vectorized.add(key);
  }

  async rename(ref: RepositoryRef): Promise<boolean> {
    checkRef(ref);
    return this.#options.database.inScope(ref, async (client) => {
      const { rows } = await client.query(
        `UPDATE memory_repositories SET name = $3
          WHERE installation_id = $1 AND repository_id = $2 RETURNING 1`,
        [ref.installation, ref.repository, ref.name],
      );
      return rows.length > 0;
    });
  }

  async delete(namespace: MemoryNamespace & { name?: string | undefined }): Promise<boolean> {
    const ns = { installation: namespace.installation, repository: namespace.repository };
    checkIds(ns);
    const removed = await this.#options.database.inScope(ns, async (client) => {
      // Refused from now on, until `readmit`: a job journaled before must not bring it back.
      // Marked first, as opens lock (see refuseGone): an open under way, which share-locks this
      // row, ends before the memory's row is deleted, so the row it made goes too.
      await client.query(
        `INSERT INTO memory_namespaces (installation_id, repository_id, gone) VALUES ($1, $2, true)
         ON CONFLICT (installation_id, repository_id) DO UPDATE SET gone = true`,
        [ns.installation, ns.repository],
      );
      const { rows } = await client.query(
        `DELETE FROM memory_repositories WHERE installation_id = $1 AND repository_id = $2
         RETURNING 1`,
        [ns.installation, ns.repository],
      );
      await notify(client, ns);
      return rows.length > 0;
    });
    this.#indexes?.drop(ns);
    if (removed) this.#options.log.info({ memory: keyOf(ns) }, "memory deleted");
    return removed;
  }

  async deleteInstallation(installation: number): Promise<boolean> {
    if (!Number.isSafeInteger(installation) || installation <= 0)
      throw new Error(`not an installation id: ${installation}`);
    // Marked first: no repository of it opens from here on, on any instance.
    const repositories = await this.#options.database.inScope({ installation }, async (client) => {
      await client.query(
        `INSERT INTO memory_namespaces (installation_id, repository_id, gone) VALUES ($1, 0, true)
         ON CONFLICT (installation_id, repository_id) DO UPDATE SET gone = true`,
        [installation],
      );
      const { rows } = await client.query<{ repository_id: string }>(
        "SELECT repository_id FROM memory_namespaces WHERE installation_id = $1 AND repository_id <> 0",
        [installation],
      );
      return rows.map((row) => Number(row.repository_id));
    });
    let removed = false;
    for (const repository of repositories)
      if (await this.delete({ installation, repository })) removed = true;
    if (removed) this.#options.log.info({ installation }, "installation's memories deleted");
    return removed;
  }

  /** Whether opens are refused: the repository's or its installation's row is marked gone. */
  async isRefused(namespace: MemoryNamespace): Promise<boolean> {
    const ns = { installation: namespace.installation, repository: namespace.repository };
    checkIds(ns);
    return this.#options.database.inScope(ns, async (client) => {
      const { rows } = await client.query(
        `SELECT 1 FROM memory_namespaces
          WHERE installation_id = $1 AND repository_id IN (0, $2) AND gone`,
        [ns.installation, ns.repository],
      );
      return rows.length > 0;
    });
  }

  async readmit(namespace: MemoryNamespace): Promise<void> {
    const ns = { installation: namespace.installation, repository: namespace.repository };
    checkIds(ns);
    await this.#options.database.inScope(ns, (client) =>
      client.query(
        "DELETE FROM memory_namespaces WHERE installation_id = $1 AND repository_id = $2 AND gone",
        [ns.installation, ns.repository],
      ),
    );
  }

  async list(): Promise<StoredNamespace[]> {
    const found: StoredNamespace[] = [];
    for (const namespace of await this.#namespaces()) {
      const name = await this.#options.database.inScope(namespace, async (client) => {
        const { rows } = await client.query<{ name: string }>(
          "SELECT name FROM memory_repositories WHERE installation_id = $1 AND repository_id = $2",
          [namespace.installation, namespace.repository],
        );
        return rows[0]?.name;
      });
      if (name !== undefined) found.push({ ...namespace, name });
    }
    return found;
  }

  has(namespace: MemoryNamespace): Promise<boolean> {
    return this.#options.database.inScope(namespace, async (client) => {
      const { rows } = await client.query(
        `SELECT 1 FROM memory_namespaces
          WHERE installation_id = $1 AND repository_id = $2 AND NOT gone
            AND EXISTS (SELECT 1 FROM memory_repositories
                         WHERE installation_id = $1 AND repository_id = $2)`,
        [namespace.installation, namespace.repository],
      );
      return rows.length > 0;
    });
  }

  /** The memories not deleted: which exist is readable in any scope, each one's name in its own. */
  #namespaces(): Promise<MemoryNamespace[]> {
    return this.#options.database.inScope({ installation: 0 }, async (client) => {
      const { rows } = await client.query<{ installation_id: string; repository_id: string }>(
        `SELECT installation_id, repository_id FROM memory_namespaces
          WHERE NOT gone AND repository_id <> 0 ORDER BY installation_id, repository_id`,
      );
      return rows.map((row) => ({
        installation: Number(row.installation_id),
        repository: Number(row.repository_id),
      }));
    });
  }

  async listLegacy(): Promise<[]> {
    return [];
  }

  readBackfillState(namespace: MemoryNamespace): Promise<BackfillState | undefined> {
    return readBackfill(this.#options.database, namespace);
  }

  async claimBackfill(
    namespace: MemoryNamespace,
    holder: string,
    leaseMs: number,
  ): Promise<boolean> {
    checkIds(namespace);
    return this.#options.database.inScope(namespace, async (client) => {
      const { rows } = await client.query(
        `UPDATE memory_repositories
            SET backfill_holder = CASE WHEN $4 > 0 THEN $3 END,
                backfill_until = CASE WHEN $4 > 0 THEN now() + $4 * interval '1 millisecond' END
          WHERE installation_id = $1 AND repository_id = $2
            AND (backfill_holder IS NULL OR backfill_holder = $3 OR backfill_until < now())
          RETURNING 1`,
        [namespace.installation, namespace.repository, holder, leaseMs],
      );
      return rows.length > 0;
    });
  }

  /** The model and dimension a memory was embedded with, if it exists. */
  async readIdentity(
    namespace: MemoryNamespace,
  ): Promise<Pick<Embedder, "model" | "dimension"> | undefined> {
    checkIds(namespace);
    return this.#options.database.inScope(namespace, async (client) => {
      const { rows } = await client.query<{ model: string; dimension: number }>(
        `SELECT model, dimension FROM memory_repositories
          WHERE installation_id = $1 AND repository_id = $2`,
        [namespace.installation, namespace.repository],
      );
      return rows[0];
    });
  }

  locationOf(namespace: MemoryNamespace): string {
    return `PostgreSQL schema ${this.#options.schema}, memory ${keyOf(namespace)}`;
  }

  openStores(): { stores: number; bytes: number; inUse: number } {
    return this.#indexes?.stats() ?? { stores: 0, bytes: 0, inUse: 0 };
  }

  /**
   * Without pgvector, loads the in-RAM indexes of the memories written most recently, while
   * they fit in the RAM cap (judged before each by its records' int8 vectors): reading 100,000
   * records and building their keyword index takes seconds, which the first search on each of
   * them would otherwise wait. With pgvector, searches run in the database: nothing to load.
   * Stops early on `closeAll`. Resolves with how many it loaded.
   */
  warm(): Promise<number> {
    const indexes = this.#indexes;
    if (!indexes) return Promise.resolve(0);
    this.#warming ??= (async () => {
      const { embedder } = this.#options;
      const dated = [];
      for (const namespace of await this.#namespaces()) {
        if (this.#closing) break;
        const found = await this.#options.database.inScope(namespace, (client) =>
          readExtent(client, namespace),
        );
        // Another model's memory fails its first use, with the reason: not loaded here.
        if (found && found.model === embedder.model && found.dimension === embedder.dimension)
          dated.push({ namespace, ...found });
      }
      let loaded = 0;
      for (const { namespace, records } of dated.sort((a, b) => b.seq - a.seq)) {
        if (this.#closing || records === 0 || !indexes.fits(records)) break;
        try {
          await indexes.get(namespace);
          loaded++;
        } catch (error) {
          this.#options.log.warn(
            { err: error, memory: keyOf(namespace) },
            "memory not opened ahead of its first use",
          );
        }
      }
      return loaded;
    })();
    return this.#warming;
  }

  async closeAll(): Promise<void> {
    this.#closing = true;
    // A warm-up loads one index at a time; it stops after the one it is loading.
    await this.#warming?.catch(() => undefined);
    await this.#indexes?.close();
  }

  /**
   * The HNSW index of one embedding dimension (a partial index over the rows of that
   * dimension), made by the schema's owner when a memory of that dimension first opens.
   */
  async #vectorIndex(dimension: number): Promise<void> {
    if (this.#dimensions.has(dimension)) return;
    checkDimension(dimension);
    // Looked up first: CREATE INDEX takes a lock that waits for the writes under way and holds
    // back new ones, on every instance, even when the index is there (each process's first open).
    const made = await this.#options.database.inScope({ installation: 0 }, async (client) => {
      const { rows } = await client.query(
        `SELECT 1 WHERE to_regclass('memory_records_hnsw_${dimension}') IS NOT NULL`,
      );
      return rows.length > 0;
    });
    if (made) return void this.#dimensions.add(dimension);
    try {
      await this.#options.database.asOwner(
        `CREATE INDEX IF NOT EXISTS memory_records_hnsw_${dimension} ON memory_records
           USING hnsw ((embedding_vector::halfvec(${dimension})) halfvec_cosine_ops)
           WHERE dimension = ${dimension}`,
      );
    } catch (error) {
      // Another instance made it at the same moment: it is there.
      if ((error as { code?: string }).code !== "23505") throw error;
    }
    this.#dimensions.add(dimension);
  }
}

/** A memory another instance made between this one's look and its insert: open it again. */
class RetryOpen extends Error {}

/** One repository's memory in PostgreSQL: a handle, valid while its memory's generation lives. */
class PostgresRepositoryMemory implements RepoMemory {
  readonly namespace: MemoryNamespace;
  readonly name: string;
  readonly #options: PostgresMemoryOptions;
  readonly #indexes: SyncedIndexes | undefined;
  readonly #generation: number;

  constructor(
    options: PostgresMemoryOptions,
    indexes: SyncedIndexes | undefined,
    ref: RepositoryRef,
    generation: number,
  ) {
    this.#options = options;
    this.#indexes = indexes;
    this.namespace = { installation: ref.installation, repository: ref.repository };
    this.name = ref.name;
    this.#generation = generation;
  }

  get relatedScore(): number {
    return this.#options.embedder.relatedScore;
  }

  async add(input: MemoryInput): Promise<MemoryRecord> {
    const [record] = await this.addMany([input]);
    return record!;
  }

  async addMany(inputs: MemoryInput[]): Promise<MemoryRecord[]> {
    const started = performance.now();
    const records = inputs.map((input) => validateMemory(checkRepository(input, this.name)));
    if (records.length === 0) return [];
    // The last of a source given twice wins, as it would one after the other (unless older).
    const newest = new Map<string, MemoryRecord>();
    for (const record of records) {
      const kept = newest.get(record.id);
      if (!kept || !isOlderVersion(record, kept)) newest.set(record.id, record);
    }
    const latest = [...newest.values()];
    for (let tries = 1; ; tries++) {
      // Embedded outside the transaction (the model is slow), and only texts that changed.
      const kept = await this.#hashes(latest.map((r) => r.id));
      const hashes = latest.map((r) => hashText(r.text));
      const stale = latest.filter((r, i) => kept.get(r.id) !== hashes[i]);
      const { embedder } = this.#options;
      const vectors = await embedder.embed(stale.map((r) => r.text));
      // pgvector refuses a value that is not finite; without it, the in-RAM index cannot load one.
      const fresh = new Map(
        stale.map((r, i) => [
          r.id,
          unitVector(validateEmbedding(r.id, vectors[i], embedder.dimension)),
        ]),
      );
      const written = await this.#write(async (client, vectorColumn) => {
        // Another instance may have changed a record this meant to keep the vector of.
        const reused = latest.filter((r) => !fresh.has(r.id)).map((r) => r.id);
        if (
          reused.length > 0 &&
          !sameHashes(await hashesIn(client, this.namespace, reused), kept, reused)
        )
          return false;
        const { rows } = await client.query(this.#upsertSql(vectorColumn), [
          this.namespace.installation,
          this.namespace.repository,
          this.#options.embedder.dimension,
          JSON.stringify(
            latest.map((r, i) =>
              toRow(r, hashes[i]!, fresh.get(r.id), this.#options.database.vector),
            ),
          ),
        ]);
        // Nothing written (every record refused, of a forgotten thread, say): nothing to
        // announce, and no sequence number was taken for `notify` to name.
        if (rows.length > 0) await notify(client, this.namespace, { written: true });
        return true;
      });
      if (written) break;
      if (tries >= MAX_WRITE_TRIES)
        throw new Error(`memory of ${this.name}: records kept changing under this write`);
    }
    await this.#indexes?.written(this.namespace);
    const seconds = (performance.now() - started) / 1000;
    for (let i = 0; i < records.length; i++)
      this.#options.metrics.memoryAddDuration.observe(seconds / records.length);
    return records;
  }

  async remove(id: string): Promise<boolean> {
    return (await this.#removeWhere("id = $3", [id])) > 0;
  }

  /**
   * The thread's records removed and its tombstone left in one transaction, under the
   * repository's lock that every write takes: no write of the thread comes between them.
   */
  forgetThread(number: number): Promise<number> {
    return this.#removeWhere("kind <> 'note' AND number = $3", [number], (client) =>
      client.query(
        `INSERT INTO memory_records (installation_id, repository_id, id, seq, removed, number)
         VALUES ($1, $2, $3, nextval('memory_seq'), true, $4) ON CONFLICT DO NOTHING`,
        [this.namespace.installation, this.namespace.repository, forgottenId(number), number],
      ),
    );
  }

  async forgottenThreads(): Promise<number[]> {
    return this.#options.database.inScope(this.namespace, async (client) => {
      const { rows } = await client.query<{ number: number }>(
        `SELECT number FROM memory_records
          WHERE installation_id = $1 AND repository_id = $2 AND id LIKE $3 AND removed
          ORDER BY number`,
        [this.namespace.installation, this.namespace.repository, `${FORGOTTEN_PREFIX}%`],
      );
      return rows.map((row) => row.number);
    });
  }

  async get(id: string): Promise<MemoryRecord | undefined> {
    const [row] = await this.#rows(`id = $3`, [id]);
    return row && toRecord(row, this.name);
  }

  async list(): Promise<MemoryRecord[]> {
    return (await this.#rows("true", [])).map((row) => toRecord(row, this.name));
  }

  /** Pages in the order of ids, the cursor the last id of a page. */
  async listPage(cursor?: string): Promise<MemoryPage> {
    const rows =
      cursor === undefined
        ? await this.#rows("true", [], PAGE_RECORDS + 1)
        : await this.#rows("id > $3", [cursor], PAGE_RECORDS + 1);
    const records = rows.slice(0, PAGE_RECORDS).map((row) => toRecord(row, this.name));
    return { records, ...(rows.length > PAGE_RECORDS ? { next: records.at(-1)!.id } : {}) };
  }

  /**
   * Near-exact duplicates first, then the vector and keyword rankings fused, as the local store
   * ranks (hybrid-search.ts); the hits' cosines are exact, from their float32 vectors.
   */
  async search(text: string, options: SearchOptions): Promise<SearchHit[]> {
    // The query goes into SQL as text, which cannot hold U+0000 (stored texts have none either).
    const query = storableText(text);
    const [vector] = await this.#options.embedder.embed([query]);
    const unit = unitVector(vector!);
    const k = Math.max(options.k, DEFAULT_FUSION.pool);
    // Rows the search read already (the in-RAM path's rescored head): not read twice.
    const rows = new Map<string, RecordRow>();
    const ranked = this.#indexes
      ? await this.#searchInRam(query, unit, options, k, rows)
      : await this.#searchInSql(query, unit, options, k);
    // As the local store does, the rows of a batch at a time (each row holds its exact vector).
    return keptHits(
      ranked,
      query,
      options,
      async (hits) => {
        const missing = hits.map((hit) => hit.id).filter((id) => !rows.has(id));
        if (missing.length > 0)
          for (const row of await this.#rows("id = ANY($3)", [missing])) rows.set(row.id, row);
        const scores = new Map<string, number>();
        for (const hit of hits) {
          const row = rows.get(hit.id);
          if (row) scores.set(hit.id, dot(unit, toFloat32(row.embedding)));
        }
        return scores;
      },
      async (id) => {
        const row = rows.get(id);
        return row && toRecord(row, this.name);
      },
    );
  }

  async stats(): Promise<MemoryStats> {
    const rows = await this.#options.database.inScope(this.namespace, async (client) => {
      const result = await client.query<{ kind: string; n: string; bytes: string }>(
        `SELECT kind, count(*) AS n,
                coalesce(sum(octet_length(text) + octet_length(embedding)), 0) AS bytes
           FROM memory_records
          WHERE installation_id = $1 AND repository_id = $2 AND NOT removed GROUP BY kind`,
        [this.namespace.installation, this.namespace.repository],
      );
      return result.rows;
    });
    const byKind = Object.fromEntries(rows.map((row) => [row.kind, Number(row.n)]));
    return {
      records: rows.reduce((sum, row) => sum + Number(row.n), 0),
      byKind,
      pending: 0,
      segments: 0,
      bytesOnDisk: rows.reduce((sum, row) => sum + Number(row.bytes), 0),
      bytesInRam: this.#indexes?.bytesOf(this.namespace) ?? 0,
      model: this.#options.embedder.model,
      dimension: this.#options.embedder.dimension,
    };
  }

  /** Every write is durable once its transaction commits. */
  async flush(): Promise<void> {}

  async warm(): Promise<void> {
    await this.#indexes?.get(this.namespace);
  }

  readBackfillState(): Promise<BackfillState | undefined> {
    return readBackfill(this.#options.database, this.namespace);
  }

  async saveBackfillState(state: BackfillState): Promise<void> {
    await this.#write(async (client) => {
      await client.query(
        "UPDATE memory_repositories SET backfill = $3 WHERE installation_id = $1 AND repository_id = $2",
        // An error's message, or an item's reason, may quote text PostgreSQL's JSON refuses.
        [
          this.namespace.installation,
          this.namespace.repository,
          JSON.stringify(state, (_key, value: unknown) =>
            typeof value === "string" ? storableText(value) : value,
          ),
        ],
      );
    });
  }

  /**
   * A write in a transaction holding this memory's row: writes of one memory take turns, so
   * their sequence numbers are in commit order, and one after the memory's deletion fails, or
   * after its installation's began (an interrupted one leaves the installation marked gone, its
   * memories not yet deleted). `work` learns whether the records have the pgvector column: an
   * instance without pgvector, beside one with it, must not leave a vector its write made stale.
   */
  #write<T>(work: (client: SqlClient, vectorColumn: boolean) => Promise<T>): Promise<T> {
    const vectorColumn = this.#options.database.vector
      ? "true"
      : `EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'memory_records'::regclass
                   AND attname = 'embedding_vector' AND NOT attisdropped)`;
    return this.#options.database.inScope(this.namespace, async (client) => {
      const { rows } = await client.query<{
        generation: string;
        gone: boolean;
        vector_column: boolean;
      }>(
        `SELECT generation,
                EXISTS (SELECT 1 FROM memory_namespaces n
                         WHERE n.installation_id = $1 AND n.repository_id IN (0, $2) AND n.gone) AS gone,
                ${vectorColumn} AS vector_column
           FROM memory_repositories
          WHERE installation_id = $1 AND repository_id = $2 FOR UPDATE`,
        [this.namespace.installation, this.namespace.repository],
      );
      const row = rows[0];
      if (!row || row.gone || Number(row.generation) !== this.#generation)
        throw new MemoryDeletedError(`the memory of ${this.name} was deleted`);
      return work(client, row.vector_column);
    });
  }

  /**
   * Marks the records `where` selects removed in one statement, their text, vectors and words
   * cleared: a tombstone with a new sequence number, by which other instances' indexes learn
   * of it. Resolves with how many there were.
   */
  async #removeWhere(
    where: string,
    values: unknown[],
    first?: (client: SqlClient) => Promise<unknown>,
  ): Promise<number> {
    const removed = await this.#write(async (client, vectorColumn) => {
      await first?.(client);
      const { rows } = await client.query(
        `UPDATE memory_records SET removed = true, seq = nextval('memory_seq'), text = NULL,
                hash = NULL, embedding = NULL, fingerprints = '{}', words = NULL
                ${vectorColumn ? ", embedding_vector = NULL" : ""}
          WHERE installation_id = $1 AND repository_id = $2 AND NOT removed AND ${where}
          RETURNING 1`,
        [this.namespace.installation, this.namespace.repository, ...values],
      );
      if (rows.length > 0) await notify(client, this.namespace, { written: true });
      return rows.length;
    });
    await this.#indexes?.written(this.namespace);
    return removed;
  }

  async #hashes(ids: string[]): Promise<Map<string, string>> {
    return this.#options.database.inScope(this.namespace, (client) =>
      hashesIn(client, this.namespace, ids),
    );
  }

  #rows(where: string, values: unknown[], limit?: number): Promise<RecordRow[]> {
    return this.#options.database.inScope(this.namespace, async (client) => {
      const { rows } = await client.query<RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM memory_records
          WHERE installation_id = $1 AND repository_id = $2 AND NOT removed AND ${where}
          ORDER BY id${limit === undefined ? "" : ` LIMIT ${Math.trunc(limit)}`}`,
        [this.namespace.installation, this.namespace.repository, ...values],
      );
      return rows;
    });
  }

  /**
   * One statement for the batch: rows come as JSON, vectors as base64 float32 bytes. Without
   * pgvector, a record's pgvector column (if another instance has it) is cleared, and its
   * keyword text left out: the next first open with pgvector fills both (`#vectorize`).
   */
  #upsertSql(vectorColumn: boolean): string {
    const vector = this.#options.database.vector;
    return `INSERT INTO memory_records (installation_id, repository_id, id, seq, removed, kind,
              text, hash, number, author, url, created_at, state, metadata, dimension,
              embedding, fingerprints, words${vector ? ", embedding_vector" : ""})
            SELECT $1, $2, x.id, nextval('memory_seq'), false, x.kind, x.text, x.hash, x.number,
                   x.author, x.url, x.created_at, x.state, x.metadata, $3,
                   decode(x.e, 'base64'), x.fp, ${vector ? wordsOf("coalesce(x.kw, x.text)") : "NULL"}
                   ${vector ? ", x.v::vector" : ""}
              FROM jsonb_to_recordset($4::jsonb) AS x(id text, kind text, text text, hash text,
                   number int, author text, url text, created_at timestamptz, state text,
                   metadata jsonb, e text, v text, fp text[], kw text)
             -- Nothing of a forgotten thread but a note (see forgetThread, isOfForgottenThread).
             WHERE x.kind = 'note' OR x.number IS NULL OR NOT EXISTS (
               SELECT 1 FROM memory_records f
                WHERE f.installation_id = $1 AND f.repository_id = $2
                  AND f.id = '${FORGOTTEN_PREFIX}' || x.number)
            ON CONFLICT (installation_id, repository_id, id) DO UPDATE SET
              seq = EXCLUDED.seq, removed = false, kind = EXCLUDED.kind, text = EXCLUDED.text,
              hash = EXCLUDED.hash, number = EXCLUDED.number, author = EXCLUDED.author,
              url = EXCLUDED.url, created_at = EXCLUDED.created_at, state = EXCLUDED.state,
              metadata = EXCLUDED.metadata, dimension = EXCLUDED.dimension,
              embedding = coalesce(EXCLUDED.embedding, memory_records.embedding),
              fingerprints = EXCLUDED.fingerprints, words = EXCLUDED.words
              ${vector ? ", embedding_vector = coalesce(EXCLUDED.embedding_vector, memory_records.embedding_vector)" : vectorColumn ? ", embedding_vector = NULL" : ""}
            -- An older version of its source leaves the newer one (see isOlderVersion); the
            -- versions are ISO 8601 in one form (validateMemory), which byte order sorts.
            WHERE memory_records.removed OR NOT coalesce(
              (EXCLUDED.metadata->>'updatedAt') COLLATE "C"
                < (memory_records.metadata->>'updatedAt') COLLATE "C", false)
            RETURNING 1`;
  }

  async #searchInRam(
    query: string,
    unit: Float32Array,
    options: SearchOptions,
    k: number,
    read: Map<string, RecordRow>,
  ): Promise<HybridHit[]> {
    const index = await this.#indexes!.get(this.namespace);
    const accept = index.accepter(options);
    const approximate = index.matrix.candidates(unit, k, accept);
    // The head of the int8 ranking, rescored exactly: the order the fusion reads matters most there.
    const rescored = RESCORE_FACTOR * options.k;
    const headRows = await this.#rows("id = ANY($3)", [
      approximate.slice(0, rescored).map((c) => c.id),
    ]);
    for (const row of headRows) read.set(row.id, row);
    const head = headRows
      .map((row) => ({ id: row.id, score: dot(unit, toFloat32(row.embedding)) }))
      .sort((a, b) => b.score - a.score);
    const semantic = [...head, ...approximate.slice(rescored)];
    return searchHybrid(index, query, semantic, {
      k,
      accept,
      self: options.excludeIds,
      scoreOf: (id) => index.approximateScore(id, unit),
      limit: Number.POSITIVE_INFINITY,
    });
  }

  /** The three rankings in SQL, in one transaction: HNSW, text search and shared fingerprints. */
  async #searchInSql(
    query: string,
    unit: Float32Array,
    options: SearchOptions,
    k: number,
  ): Promise<HybridHit[]> {
    const dimension = this.#options.embedder.dimension;
    checkDimension(dimension);
    const literal = vectorLiteral(unit);
    const filters = (r: string) => `${r}.installation_id = $1 AND ${r}.repository_id = $2
      AND NOT ${r}.removed AND ($3::text[] IS NULL OR ${r}.kind = ANY($3))
      AND ($4::text IS NULL OR ${r}.state = $4) AND ($5::timestamptz IS NULL OR ${r}.created_at >= $5)
      AND NOT (${r}.id = ANY($6::text[]))`;
    const values = [
      this.namespace.installation,
      this.namespace.repository,
      options.kinds ? [...options.kinds] : null,
      options.state ?? null,
      options.since ?? null,
      [...(options.excludeIds ?? [])],
    ];
    const cosine = `1 - (r.embedding_vector <=> $7::vector)`;
    return this.#options.database.inScope(this.namespace, async (client) => {
      // Filtered HNSW scans go on past the first candidates until enough rows pass the filters.
      await client.query("SET LOCAL hnsw.iterative_scan = relaxed_order");
      const semantic = await client.query<{ id: string; score: number }>(
        `SELECT r.id, (${cosine})::float8 AS score FROM memory_records r
          WHERE ${filters("r")} AND r.dimension = ${dimension}
          ORDER BY r.embedding_vector::halfvec(${dimension}) <=> $7::halfvec(${dimension})
          LIMIT ${k}`,
        [...values, literal],
      );
      // BM25's weighting, in SQL: each of the query's words weighs by its rarity in this memory
      // (its idf), times ts_rank's count of it in the record (title first). ts_rank alone over
      // every word weighed "error" as much as a crate's name: recall@3 26% against BM25F's 37%
      // on the similar-sql bench. The rarest words only (RARE_TERMS): common ones add little.
      // The search's cost is bounded: QUERY_TERMS counts, each of at most DF_CAP rows.
      const keyword = await client.query<{ id: string; score: number }>(
        `WITH terms AS (SELECT to_tsquery('simple', quote_literal(w.lexeme)) AS tq
                          FROM unnest(to_tsvector('english', $8)) w
                         ORDER BY w.positions[1], w.lexeme LIMIT ${QUERY_TERMS}),
              counted AS (SELECT t.tq, (SELECT count(*) FROM (SELECT 1 FROM memory_records m
                                         WHERE m.installation_id = $1 AND m.repository_id = $2
                                           AND NOT m.removed AND m.words @@ t.tq LIMIT ${DF_CAP}) s
                                       )::float8 AS df
                            FROM terms t),
              total AS (SELECT count(*)::float8 AS n FROM memory_records
                         WHERE installation_id = $1 AND repository_id = $2 AND NOT removed),
              picked AS (SELECT c.tq, ln(1 + (total.n - c.df + 0.5) / (c.df + 0.5)) AS idf
                           FROM counted c, total WHERE c.df > 0 ORDER BY c.df LIMIT ${RARE_TERMS}),
              q AS (SELECT coalesce((SELECT string_agg(tq::text, ' | ') FROM picked), '')::tsquery AS q)
         SELECT r.id, (${cosine})::float8 AS score FROM memory_records r, q
          WHERE ${filters("r")} AND r.words @@ q.q
          ORDER BY (SELECT sum(p.idf * ts_rank(r.words, p.tq)) FROM picked p) DESC, r.id
          LIMIT ${k}`,
        [...values, literal, spaceCjkPairs(query.slice(0, 20_000))],
      );
      // A fingerprint held by more than MAX_SHARED records is common, not a sign of a duplicate;
      // the query's own records (the issue itself, remembered) are not counted among them.
      // One more than that is read of each, as the in-RAM index looks no further: reading every
      // holder of a common one (a compiler's "aborting due to previous error", in thousands of
      // a repository's issues) cost each search that quoted it a read of each of those rows.
      const shared = await client.query<{ id: string; shared: number; score: number }>(
        `WITH q AS (SELECT DISTINCT unnest($8::text[]) AS f),
              holders AS (SELECT h.id, q.f FROM q CROSS JOIN LATERAL (
                            SELECT h.id FROM memory_records h
                             WHERE h.installation_id = $1 AND h.repository_id = $2 AND NOT h.removed
                               AND NOT (h.id = ANY($6::text[]))
                               AND h.fingerprints @> ARRAY[q.f] LIMIT ${MAX_SHARED + 1}) h),
              rare AS (SELECT f FROM holders GROUP BY f HAVING count(*) <= ${MAX_SHARED}),
              matched AS (SELECT id, count(*)::int AS shared FROM holders
                           WHERE f IN (SELECT f FROM rare) GROUP BY id)
         SELECT r.id, m.shared, (${cosine})::float8 AS score
           FROM matched m JOIN memory_records r ON r.id = m.id
          WHERE ${filters("r")} ORDER BY m.shared DESC, r.id`,
        [...values, literal, fingerprintText(query)],
      );
      const scores = new Map(
        [...keyword.rows, ...shared.rows].map((row) => [row.id, Number(row.score)]),
      );
      return orderHits(
        {
          semantic: semantic.rows.map((row) => ({ id: row.id, score: Number(row.score) })),
          keyword: keyword.rows.map((row) => row.id),
          shared: new Map(shared.rows.map((row) => [row.id, row.shared])),
        },
        { k, scoreOf: (id) => scores.get(id) ?? 0, limit: Number.POSITIVE_INFINITY },
      );
    });
  }
}

async function hashesIn(
  client: SqlClient,
  namespace: MemoryNamespace,
  ids: string[],
): Promise<Map<string, string>> {
  const { rows } = await client.query<{ id: string; hash: string }>(
    `SELECT id, hash FROM memory_records
      WHERE installation_id = $1 AND repository_id = $2 AND id = ANY($3) AND NOT removed`,
    [namespace.installation, namespace.repository, ids],
  );
  return new Map(rows.map((row) => [row.id, row.hash]));
}

function sameHashes(now: Map<string, string>, before: Map<string, string>, ids: string[]) {
  return ids.every((id) => now.get(id) !== undefined && now.get(id) === before.get(id));
}

/** Announces a write (delivered on commit) to the instances that keep this memory's index. */
async function notify(
  client: SqlClient,
  namespace: MemoryNamespace,
  { written = false } = {},
): Promise<void> {
  // `s`, the write's last sequence number (this transaction's), lets an instance whose index
  // already holds it (the writer's own, which read it before the write resolved) skip a read.
  await client.query(
    `SELECT pg_notify($1, json_build_object('i', $2::bigint, 'r', $3::bigint,
              's', ${written ? "currval('memory_seq')" : "NULL"})::text)`,
    [MEMORY_CHANNEL, namespace.installation, namespace.repository],
  );
}

/**
 * Refuses a memory deleted for ever, or of a deleted installation. The installation's row and
 * the repository's are share-locked until the open commits (made first where missing, so that
 * there is a row to lock): a deletion, which marks those rows first, waits for the opens under
 * way, so that the memories they make are among those it then deletes; an open that comes after
 * it waits, then finds the mark. Without the repository's, an open that looked before a deletion
 * of its repository committed made the memory's row again after it, refused to every write but
 * never deleted, and, once the repository was added back, a memory that no `memory_namespaces`
 * row named, which the installation's deletion left behind. Both lock these rows before the
 * memory's row (a rename), in that order: no deadlock.
 */
async function refuseGone(client: SqlClient, ref: RepositoryRef): Promise<void> {
  await client.query(
    `INSERT INTO memory_namespaces (installation_id, repository_id) VALUES ($1, 0), ($1, $2)
     ON CONFLICT DO NOTHING`,
    [ref.installation, ref.repository],
  );
  const { rows } = await client.query<{ gone: boolean }>(
    `SELECT gone FROM memory_namespaces WHERE installation_id = $1 AND repository_id IN (0, $2)
      ORDER BY repository_id FOR SHARE`,
    [ref.installation, ref.repository],
  );
  if (rows.some((row) => row.gone))
    throw new MemoryDeletedError(`the memory of ${ref.name} was deleted`);
}

function readBackfill(
  database: MemoryDatabase,
  namespace: MemoryNamespace,
): Promise<BackfillState | undefined> {
  checkIds(namespace);
  return database.inScope(namespace, async (client) => {
    const { rows } = await client.query<{ backfill: BackfillState | null }>(
      "SELECT backfill FROM memory_repositories WHERE installation_id = $1 AND repository_id = $2",
      [namespace.installation, namespace.repository],
    );
    return rows[0]?.backfill ?? undefined;
  });
}

function toRow(
  record: MemoryRecord,
  hash: string,
  unit: Float32Array | undefined,
  /** Only the SQL search (pgvector's) reads the keyword text. */
  keywords: boolean,
) {
  return {
    id: record.id,
    kind: record.kind,
    text: record.text,
    hash,
    number: record.number ?? null,
    author: record.author ?? null,
    url: record.url ?? null,
    created_at: record.createdAt,
    state: record.state ?? null,
    metadata: record.metadata ?? null,
    e: unit ? Buffer.from(unit.buffer, unit.byteOffset, unit.byteLength).toString("base64") : null,
    v: unit ? vectorLiteral(unit) : null,
    fp: fingerprintText(record.text),
    kw: keywords ? keywordsOf(record.text) : null,
  };
}

/** The keyword text of a record's text, where it is not the text (CJK runs spaced into pairs). */
function keywordsOf(text: string): string | null {
  const spaced = spaceCjkPairs(text);
  return spaced === text ? null : spaced;
}

function toRecord(row: RecordRow, repo: string): MemoryRecord {
  const record: MemoryRecord = {
    id: row.id,
    kind: row.kind as MemoryRecord["kind"],
    text: row.text,
    repo,
    createdAt: new Date(row.created_at).toISOString(),
  };
  if (row.number !== null) record.number = row.number;
  if (row.author !== null) record.author = row.author;
  if (row.url !== null) record.url = row.url;
  if (row.state !== null) record.state = row.state;
  if (row.metadata !== null) record.metadata = row.metadata;
  return record;
}

/** pgvector's text form of a vector. */
function vectorLiteral(vector: Float32Array): string {
  return `[${Array.from(vector).join(",")}]`;
}

function checkIds(namespace: MemoryNamespace): void {
  const { installation, repository } = namespace;
  if (
    !Number.isSafeInteger(installation) ||
    installation <= 0 ||
    !Number.isSafeInteger(repository) ||
    repository <= 0
  )
    throw new Error(`not a memory namespace: ${installation}/${repository}`);
}

function checkRef(ref: RepositoryRef): void {
  checkIds(ref);
  if (!NAME.test(ref.name)) throw new Error(`not a repository name: ${JSON.stringify(ref.name)}`);
}

/** The dimension goes into SQL text (a type's modifier cannot be a parameter). */
function checkDimension(dimension: number): void {
  if (!Number.isInteger(dimension) || dimension <= 0 || dimension > 4000)
    throw new Error(`an embedding dimension of ${dimension} cannot be indexed by pgvector`);
}

/** A memory's model, its last write's sequence number and its records, for a warm-up. */
async function readExtent(
  client: SqlClient,
  { installation, repository }: MemoryNamespace,
): Promise<{ model: string; dimension: number; seq: number; records: number } | undefined> {
  const { rows } = await client.query<{
    model: string;
    dimension: number;
    seq: string | null;
    records: string;
  }>(
    `SELECT r.model, r.dimension,
            (SELECT max(seq) FROM memory_records m
              WHERE m.installation_id = $1 AND m.repository_id = $2) AS seq,
            (SELECT count(*) FROM memory_records m
              WHERE m.installation_id = $1 AND m.repository_id = $2 AND NOT m.removed) AS records
       FROM memory_repositories r WHERE r.installation_id = $1 AND r.repository_id = $2`,
    [installation, repository],
  );
  const row = rows[0];
  return row && { ...row, seq: Number(row.seq ?? 0), records: Number(row.records) };
}

function keyOf({ installation, repository }: MemoryNamespace): string {
  return `${installation}/${repository}`;
}

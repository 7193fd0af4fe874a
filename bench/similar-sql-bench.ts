// Similar-issue retrieval of the PostgreSQL + pgvector memory (its SQL search: HNSW, text search
// and fingerprints) against the local store, on the real duplicates of ../shared/data/duplicates
// (see its README), read at run time. PGlite stands in for PostgreSQL: the machine's has no pgvector.
import { existsSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { PostgresMemory } from "../src/database/postgres-memory.js";
import type { MemoryDatabase, SqlClient } from "../src/database/database.js";
import { Bm25Index } from "../src/memory/bm25-index.js";
import {
  DEFAULT_FUSION,
  dot,
  orderHits,
  unitVector,
  type Rankings,
} from "../src/memory/hybrid-search.js";
import { createLocalEmbedder } from "../src/memory/local-embedder.js";
import { issueMemoryId, issueMemoryText } from "../src/memory/memory-inputs.js";
import type { MemoryInput, MemoryStore, SearchOptions } from "../src/memory/memory-store.js";
import { NearDuplicateIndex } from "../src/memory/near-duplicate.js";
import { QuantizedMatrix } from "../src/memory/quantized-matrix.js";
import { RESCORE_FACTOR } from "../src/memory/vectra-memory-store.js";
import { createMetrics } from "../src/metrics/create-metrics.js";
import { openPgliteDatabase } from "../test/helpers/pglite-database.js";
import { makeDataDir } from "../test/helpers/test-app.js";
import { openTestStore } from "../test/helpers/test-memory.js";
import { readJsonLines, type Recall } from "./similar-bench.js";
import { printTable, summarize } from "./stats.js";

const DATA = fileURLToPath(new URL("../../shared/data/duplicates/", import.meta.url));
const REPO = "rust-lang/rust";
const REF = { installation: 1, repository: 1, name: REPO };
const K = 10;
// The split the `similar` suite reports as its headline (dev is for tuning).
const SPLIT = "test";
// PGlite runs PostgreSQL on one WebAssembly thread, and the SQL path's cost grows with the
// memory: an insert took about 57 ms per issue, and a search about 1 s at 8,000 issues (the text
// search ranks every issue sharing a word with the query). The first 150 duplicates (8,274
// issues) took 11 minutes here; the whole split (15,796 issues) would take about half an hour.
// So by default, the first 150 in time order; `all` asks every one.
const DEFAULT_QUERIES: number | undefined = 150;
// Records per addMany while catching up between two queries (the first catch-up is thousands).
const ADD_BATCH = 500;

interface Issue {
  number: number;
  title: string;
  body: string | null;
  state?: string;
  created_at: string;
}

interface Pair {
  duplicate: number;
  original: number;
  split: string;
}

/** A duplicate of the split, asked when it was filed: its original is the target. */
interface Query {
  issue: Issue;
  created: number;
  original: string;
}

/** A ranking's top k ids for each query, in query order. */
type Ranked = string[][];

export interface SimilarSqlBenchOptions {
  json: boolean;
  /** The first n duplicates of the split in time order (a quick run). */
  limit?: number;
  /** Every duplicate of the split, whatever the default subset. */
  all?: boolean;
  /** Where the data set is; `../shared/data/duplicates` next to the repository by default. */
  directory?: string;
}

export type SimilarSqlBenchResult =
  | { skipped: string }
  | {
      data: string;
      split: string;
      /** Duplicates asked, of those in the split. */
      queries: number;
      queriesInSplit: number;
      /** Why only some of the split's duplicates were asked, when they were not all. */
      subset: string | null;
      /** Issues loaded: every issue filed before the last duplicate asked. */
      issues: number;
      /** Issues (loaded or asked) whose text held U+0000, taken out for both stores. */
      nulRemoved: number;
      k: number;
      seconds: { total: number; loadLocal: number; loadSql: number };
      queryMs: { local: QueryTimes; sql: QueryTimes };
      /** PGlite's time per statement of the memory: its insert (the load), each ranking's. */
      sqlStatements: StatementTimes;
      recall: { local: Recall; sql: Recall };
      /** SQL recall@3 ÷ local recall@3. */
      sqlOverLocalAt3: number | null;
      rankings: Breakdown | { unavailable: string };
    };

type QueryTimes = ReturnType<typeof summarize>;
type StatementTimes = Record<string, { count: number; totalMs: number; meanMs: number }>;

interface Breakdown {
  /** Each ranking's own top 10, and the SQL fusion with one of its three rankings swapped. */
  recall: Record<string, Recall>;
  /** Queries with a near-exact match (shared fingerprints), and how often the first was the original. */
  nearDuplicate: Record<"local" | "sql", { queries: number; firstIsOriginal: number }>;
  /** Queries whose fusion, redone here from the captured rankings, gave the store's own top 10. */
  reproduced: { local: number; sql: number };
}

export async function runSimilarSqlBench(
  options: SimilarSqlBenchOptions,
): Promise<SimilarSqlBenchResult> {
  const directory = options.directory ?? DATA;
  const say = (line: string) => {
    if (!options.json) console.log(line);
  };
  if (!existsSync(`${directory}/issues.jsonl`) || !existsSync(`${directory}/pairs.jsonl`)) {
    const skipped = `no duplicate-issue data at ${directory} (issues.jsonl, pairs.jsonl): the SQL path's similar-issue recall is not measured`;
    say(`similar-sql: skipped — ${skipped}`);
    return { skipped };
  }
  const started = performance.now();
  const { issues, queries, queriesInSplit, subset } = chooseQueries(directory, options);
  say(
    `similar-sql: ${queries.length} of the ${queriesInSplit} duplicates of the ${SPLIT} split, against the ${issues.length} issues filed before the last of them${subset ? ` (${subset})` : ""}`,
  );
  const run = await walk(issues, queries, say);
  const recall = { local: recallOf(run.local, queries), sql: recallOf(run.sql, queries) };
  const result = {
    data: directory,
    split: SPLIT,
    queries: queries.length,
    queriesInSplit,
    subset,
    issues: issues.length,
    nulRemoved: [...issues, ...queries.map((q) => q.issue)].filter(hasNul).length,
    k: K,
    seconds: {
      total: (performance.now() - started) / 1000,
      loadLocal: run.loadMs.local / 1000,
      loadSql: run.loadMs.sql / 1000,
    },
    queryMs: { local: summarize(run.queryMs.local), sql: summarize(run.queryMs.sql) },
    sqlStatements: run.sqlStatements ?? {},
    recall,
    sqlOverLocalAt3: recall.local.at3 > 0 ? recall.sql.at3 / recall.local.at3 : null,
    rankings: breakdownOf(run, queries),
  };
  if (!options.json) printReport(result);
  return result;
}

/**
 * The split's duplicates in the order they were filed (the first `limit`), and the issues filed
 * before the last of them, oldest first: what the walk loads.
 */
function chooseQueries(directory: string, options: SimilarSqlBenchOptions) {
  const created = (issue: Issue) => Date.parse(issue.created_at);
  const issues = readJsonLines<Issue>(`${directory}/issues.jsonl`).sort(
    (a, b) => created(a) - created(b) || a.number - b.number,
  );
  const originals = new Map<number, number>();
  for (const pair of readJsonLines<Pair>(`${directory}/pairs.jsonl`))
    if (pair.split === SPLIT) originals.set(pair.duplicate, pair.original);
  const all: Query[] = issues.flatMap((issue) => {
    const original = originals.get(issue.number);
    return original === undefined
      ? []
      : [{ issue, created: created(issue), original: issueMemoryId(original, false) }];
  });
  if (all.length < originals.size)
    throw new Error(`similar-sql: some duplicates of the ${SPLIT} split are not in issues.jsonl`);
  const limit = options.limit ?? (options.all ? undefined : DEFAULT_QUERIES);
  const queries = limit === undefined ? all : all.slice(0, limit);
  const subset =
    queries.length === all.length
      ? null
      : options.limit !== undefined
        ? `the first ${queries.length} by filing time, as asked`
        : `the first ${queries.length} by filing time by default, to keep the run short; --all asks every one`;
  const last = queries.at(-1)?.created ?? -Infinity;
  return {
    issues: issues.filter((issue) => created(issue) < last),
    queries,
    queriesInSplit: all.length,
    subset,
  };
}

/**
 * What is stored of an issue and searched with, without U+0000: PostgreSQL's text cannot hold
 * it, and the SQL path's whole batch fails on one (the local store keeps it). Two issues of the
 * set have one; they go into both stores without it, so that both hold the same texts.
 */
function textOf(issue: Issue): string {
  return issueMemoryText(issue).replaceAll("\u0000", "");
}

function hasNul(issue: Issue): boolean {
  return issueMemoryText(issue).includes("\u0000");
}

function toInput(issue: Issue): MemoryInput {
  return {
    id: issueMemoryId(issue.number, false),
    kind: "issue",
    text: textOf(issue),
    repo: REPO,
    number: issue.number,
    createdAt: issue.created_at,
    state: issue.state,
  };
}

/** As find-similar-issues.ts asks, but ranking only: no threshold, so recall counts the order. */
function searchOptionsOf(issue: Issue): SearchOptions {
  return {
    k: K,
    kinds: ["issue", "pull_request"],
    excludeIds: [issueMemoryId(issue.number, false), issueMemoryId(issue.number, true)],
  };
}

interface Run {
  local: Ranked;
  sql: Ranked;
  loadMs: { local: number; sql: number };
  queryMs: { local: number[]; sql: number[] };
  /** The SQL statements' times, by statement (loads and searches). */
  sqlStatements?: StatementTimes;
  /** The rankings behind each search: the SQL path's as its queries returned them. */
  captured: { local: Rankings[]; sql: Array<Rankings | string> };
}

/**
 * Issues go into both stores in the order they were filed; each duplicate is asked of both just
 * before it goes in, once every issue filed strictly before it is in. So both see, at each
 * query, exactly the memory the bot had when the duplicate was filed, with no date filter.
 */
async function walk(issues: Issue[], queries: Query[], say: (line: string) => void) {
  const pglite = await openPgliteDatabase();
  const capture = capturingDatabase(pglite.database);
  const sqlMemory = await PostgresMemory.open({
    database: capture.database,
    schema: "talos",
    embedder: createLocalEmbedder(),
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    maxOpenBytes: 256 * 2 ** 20,
  });
  if (!sqlMemory.searchesInSql)
    throw new Error("similar-sql: PGlite's memory does not search in SQL");
  const directory = makeDataDir();
  const local = await openTestStore(directory, { repo: REPO, batchSize: 100 });
  const mirror = new LocalRankings();
  const run: Run = {
    local: [],
    sql: [],
    loadMs: { local: 0, sql: 0 },
    queryMs: { local: [], sql: [] },
    captured: { local: [], sql: [] },
  };
  try {
    const sql = await sqlMemory.open(REF);
    const stores = { local, sql };
    // Built now, so that the first query does not pay for it: adds keep it current.
    run.loadMs.local += await timed(() => local.warm());
    let added = 0;
    const addUpTo = async (created: number) => {
      while (added < issues.length && Date.parse(issues[added]!.created_at) < created) {
        const batch: MemoryInput[] = [];
        while (
          batch.length < ADD_BATCH &&
          added < issues.length &&
          Date.parse(issues[added]!.created_at) < created
        )
          batch.push(toInput(issues[added++]!));
        for (const name of ["local", "sql"] as const)
          run.loadMs[name] += await timed(() => stores[name].addMany(batch));
        await mirror.add(batch);
      }
    };
    let reported = performance.now();
    for (const [i, query] of queries.entries()) {
      await addUpTo(query.created);
      await ask(stores, query, run, capture);
      run.captured.local.push(await mirror.rankings(textOf(query.issue)));
      if (performance.now() - reported > 30_000) {
        reported = performance.now();
        say(`  ${i + 1} of ${queries.length} duplicates asked, ${added} issues in memory`);
      }
    }
    run.sqlStatements = capture.times();
    return run;
  } finally {
    await local.close();
    rmSync(directory, { recursive: true, force: true });
    await sqlMemory.closeAll();
    await pglite.close();
  }
}

async function ask(
  stores: { local: MemoryStore; sql: MemoryStore },
  query: Query,
  run: Run,
  capture: ReturnType<typeof capturingDatabase>,
): Promise<void> {
  const text = textOf(query.issue);
  const options = searchOptionsOf(query.issue);
  for (const name of ["local", "sql"] as const) {
    capture.start();
    const started = performance.now();
    const hits = await stores[name].search(text, options);
    run.queryMs[name].push(performance.now() - started);
    run[name].push(hits.map((hit) => hit.record.id));
    if (name === "sql") run.captured.sql.push(rankingsOf(capture.take()));
  }
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

type Statement = "HNSW" | "ts_rank" | "fingerprints" | "insert" | "other";

/** Which of the memory's statements `sql` is: told apart by what it ranks by or writes. */
function statementOf(sql: string): Statement {
  if (/INSERT INTO memory_records/.test(sql)) return "insert";
  // The text search also orders a CTE before its cosine column: recognised first.
  if (/ts_rank/.test(sql)) return "ts_rank";
  if (/ORDER BY[\s\S]*<=>/.test(sql)) return "HNSW";
  if (/fingerprints\s*@>/.test(sql)) return "fingerprints";
  return "other";
}

/**
 * The database, with each scoped statement timed and, during a search, its rows kept: the SQL
 * search's three rankings exactly as its statements computed them, without copying them here.
 */
function capturingDatabase(inner: MemoryDatabase) {
  let seen: Array<{ statement: Statement; rows: unknown[] }> | undefined;
  const times = new Map<Statement, { count: number; ms: number }>();
  const database: MemoryDatabase = {
    vector: inner.vector,
    listen: (channel, handlers) => inner.listen(channel, handlers),
    asOwner: (sql) => inner.asOwner(sql),
    inScope: (scope, work) =>
      inner.inScope(scope, (client) => {
        const watched: SqlClient = {
          async query<R>(text: string, values?: unknown[]) {
            const started = performance.now();
            const result = await client.query<R>(text, values);
            const statement = statementOf(text);
            const time = times.get(statement) ?? { count: 0, ms: 0 };
            times.set(statement, {
              count: time.count + 1,
              ms: time.ms + performance.now() - started,
            });
            seen?.push({ statement, rows: result.rows });
            return result;
          },
        };
        return work(watched);
      }),
  };
  return {
    database,
    start: () => {
      seen = [];
    },
    take: () => {
      const taken = seen ?? [];
      seen = undefined;
      return taken;
    },
    /** Per statement: how many ran, their total and mean milliseconds. */
    times: () =>
      Object.fromEntries(
        [...times].map(([statement, t]) => [
          statement,
          { count: t.count, totalMs: t.ms, meanMs: t.ms / t.count },
        ]),
      ),
  };
}

/**
 * The SQL search's rankings from its statements' rows; a string saying what was not found when
 * postgres-memory.ts no longer ranks as this expects.
 */
function rankingsOf(
  statements: Array<{ statement: Statement; rows: unknown[] }>,
): Rankings | string {
  const find = (statement: Statement) => statements.find((s) => s.statement === statement)?.rows;
  const semantic = find("HNSW") as Array<{ id: string; score: number }> | undefined;
  const keyword = find("ts_rank") as Array<{ id: string }> | undefined;
  const shared = find("fingerprints") as Array<{ id: string; shared: number }> | undefined;
  if (!semantic || !keyword || !shared)
    return `the SQL search ran no ${[!semantic && "HNSW (ORDER BY … <=>)", !keyword && "ts_rank", !shared && "fingerprints @>"].filter(Boolean).join(", ")} statement`;
  return {
    semantic: semantic.map((row) => ({ id: row.id, score: Number(row.score) })),
    keyword: keyword.map((row) => row.id),
    shared: new Map(shared.map((row) => [row.id, Number(row.shared)])),
  };
}

/**
 * The local store's three rankings, kept beside it as it computes them (the int8 scan with its
 * head rescored, BM25F, fingerprints): the store does not expose its own.
 */
class LocalRankings {
  readonly #embedder = createLocalEmbedder();
  readonly #matrix = new QuantizedMatrix(this.#embedder.dimension);
  readonly #vectors: Float32Array[] = [];
  readonly #keywords = new Bm25Index();
  readonly #duplicates = new NearDuplicateIndex();

  async add(inputs: MemoryInput[]): Promise<void> {
    const vectors = await this.#embedder.embed(inputs.map((input) => input.text));
    inputs.forEach((input, i) => {
      const slot = this.#vectors.length;
      this.#vectors.push(unitVector(vectors[i]!));
      this.#matrix.set(slot, input.id, this.#vectors[slot]!);
      this.#keywords.set(slot, input.id, input.text);
      this.#duplicates.set(input.id, input.text);
    });
  }

  /** Only issues filed before the query are in: every one is a candidate. */
  async rankings(query: string): Promise<Rankings> {
    const [vector] = await this.#embedder.embed([query]);
    const unit = unitVector(vector!);
    const accept = () => true;
    const approximate = this.#matrix.candidates(unit, DEFAULT_FUSION.pool, accept);
    const rescored = RESCORE_FACTOR * K;
    const head = approximate
      .slice(0, rescored)
      .map((c) => ({ id: c.id, score: dot(unit, this.#vectors[c.slot]!) }))
      .sort((a, b) => b.score - a.score);
    return {
      semantic: [...head, ...approximate.slice(rescored)],
      keyword: this.#keywords.search(query, DEFAULT_FUSION.pool, accept).map((hit) => hit.id),
      shared: this.#duplicates.match(query, accept),
    };
  }
}

function recallOf(ranked: Ranked, queries: Query[]): Recall {
  const at = (cutoff: number) =>
    queries.filter((q, i) => ranked[i]!.slice(0, cutoff).includes(q.original)).length /
    Math.max(1, queries.length);
  return { at1: at(1), at3: at(3), at10: at(10) };
}

/**
 * Each of the SQL path's rankings alone beside the local store's, and the SQL fusion with one
 * ranking swapped for the local one: which swap closes the gap shows which ranking makes it.
 */
function breakdownOf(run: Run, queries: Query[]): Breakdown | { unavailable: string } {
  const missing = run.captured.sql.find((r): r is string => typeof r === "string");
  if (missing !== undefined) return { unavailable: missing };
  const sql = run.captured.sql as Rankings[];
  const local = run.captured.local;
  const fuse = (rankings: Rankings) =>
    orderHits(rankings, { k: K, scoreOf: () => 0 }).map((hit) => hit.id);
  const top = (ids: readonly string[]) => ids.slice(0, K);
  const rows: Record<string, Ranked> = {
    "local: vector (int8, head rescored)": local.map((r) => top(r.semantic.map((h) => h.id))),
    "local: BM25F": local.map((r) => top(r.keyword)),
    "SQL: vector (HNSW, halfvec)": sql.map((r) => top(r.semantic.map((h) => h.id))),
    "SQL: text search (idf × ts_rank)": sql.map((r) => top(r.keyword)),
    "SQL, keywords by BM25F": sql.map((r, i) => fuse({ ...r, keyword: local[i]!.keyword })),
    "SQL, vectors by the int8 scan": sql.map((r, i) =>
      fuse({ ...r, semantic: local[i]!.semantic }),
    ),
    "SQL, near-dups by the local index": sql.map((r, i) =>
      fuse({ ...r, shared: local[i]!.shared }),
    ),
  };
  const nearDuplicate = (all: Rankings[]) => {
    const firsts = all.map((r, i) => ({ first: [...r.shared.keys()][0], query: queries[i]! }));
    const found = firsts.filter((f) => f.first !== undefined);
    return {
      queries: found.length,
      firstIsOriginal: found.filter((f) => f.first === f.query.original).length,
    };
  };
  const same = (mine: Ranked, theirs: Ranked) =>
    mine.filter((ids, i) => ids.join() === theirs[i]!.join()).length;
  return {
    recall: Object.fromEntries(
      Object.entries(rows).map(([name, ranked]) => [name, recallOf(ranked, queries)]),
    ),
    nearDuplicate: { local: nearDuplicate(local), sql: nearDuplicate(sql) },
    reproduced: { local: same(local.map(fuse), run.local), sql: same(sql.map(fuse), run.sql) },
  };
}

function printReport(result: Exclude<SimilarSqlBenchResult, { skipped: string }>): void {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const row = (name: string, r: Recall, extra: Record<string, string> = {}) => ({
    search: name,
    "recall@1": pct(r.at1),
    "recall@3": pct(r.at3),
    "recall@10": pct(r.at10),
    ...extra,
  });
  const ms = (t: QueryTimes) => `${t.mean.toFixed(1)} (p50 ${t.p50.toFixed(1)})`;
  const s = result.seconds;
  console.log(
    `\n${result.split} split: ${result.queries} duplicates, each asked of both stores just before it was added (top ${result.k}, no threshold)`,
  );
  printTable([
    row("local store (vectra: int8 + BM25F + fingerprints)", result.recall.local, {
      "load s": s.loadLocal.toFixed(1),
      "ms per query": ms(result.queryMs.local),
    }),
    row("PostgreSQL + pgvector (HNSW + idf × ts_rank + fingerprints)", result.recall.sql, {
      "load s": s.loadSql.toFixed(1),
      "ms per query": ms(result.queryMs.sql),
    }),
  ]);
  const statements = Object.entries(result.sqlStatements)
    .filter(([statement]) => statement !== "other")
    .map(([statement, t]) => `${statement} ${t.meanMs.toFixed(1)} ms × ${t.count}`);
  console.log(`PGlite, mean per statement: ${statements.join("; ")}`);
  const ratio = result.sqlOverLocalAt3;
  console.log(
    `\nSQL recall@3 ÷ local recall@3: ${ratio === null ? "n/a (local found none)" : ratio.toFixed(3)}`,
  );
  const b = result.rankings;
  if ("unavailable" in b) {
    console.log(`\nthe SQL path's own rankings: not measured (${b.unavailable})`);
  } else {
    console.log("\neach ranking alone (its top 10), and the SQL fusion with one ranking swapped:");
    printTable(Object.entries(b.recall).map(([name, r]) => row(name, r)));
    for (const side of ["local", "sql"] as const) {
      const n = b.nearDuplicate[side];
      console.log(
        `${side === "sql" ? "SQL" : "local"} near-exact match ranked first for ${n.queries} duplicates; it was the original for ${n.firstIsOriginal}`,
      );
    }
    console.log(
      `the fusion redone from these rankings gave the store's own top 10 for ${b.reproduced.local} (local) and ${b.reproduced.sql} (SQL) of ${result.queries}`,
    );
  }
  if (result.nulRemoved > 0)
    console.log(
      `\n${result.nulRemoved} issue texts held U+0000, which PostgreSQL text cannot (the SQL path's addMany fails on one): removed for both stores`,
    );
  console.log(
    `\n${result.issues} issues loaded; ${s.total.toFixed(0)} s in all (PGlite: PostgreSQL 17 in WebAssembly, pgvector 0.8)${result.subset ? `; subset: ${result.subset}` : ""}`,
  );
}

import { cpus, loadavg } from "node:os";
import { pino } from "pino";
import { Database, type MemoryDatabase } from "../src/database/database.js";
import { PostgresMemory } from "../src/database/postgres-memory.js";
import { createLocalEmbedder } from "../src/memory/local-embedder.js";
import type { RepoMemory } from "../src/memory/memory-service.js";
import { createMetrics } from "../src/metrics/create-metrics.js";
import {
  dropSchema,
  freshSchema,
  postgresAnswers,
  TEST_DATABASE_URL,
} from "../test/helpers/shared-services.js";
import { issueMemory } from "../test/helpers/test-memory.js";
import { generateIssueText } from "./generate-issue-text.js";
import { printTable, summarize } from "./stats.js";

// The scale-out issue's bound: "A memory written through one instance is found through another
// within 1 s", with memory in PostgreSQL without pgvector, where each instance searches its own
// in-RAM index, kept current by LISTEN/NOTIFY and a catch-up on the write's sequence number.
export interface MemorySyncBenchOptions {
  json: boolean;
  /** Writes through A, each timed until B finds it: 200 by default. */
  writes?: number;
  /** Records in the memory before the timed writes: 1,000 by default. */
  records?: number;
  /** B's searches timed in each mode: 500 by default. */
  searches?: number;
}

const BOUND_MS = 1_000;
/** A write B has not found by then counts as missed; the run goes on with the next one. */
const GIVE_UP_MS = 10_000;
const ROUNDS = 5;
const REF = { installation: 1, repository: 10, name: "acme/widgets" };

interface MemorySyncResult {
  writes: number;
  recordsBefore: number;
  recordsAtEnd: number;
  cores: number;
  loadAtStart: number;
  propagation: {
    found: number;
    missed: number;
    meanMs: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    /** Writes B found with its first search after A's add resolved. */
    foundByFirstSearch: number;
    meanSearchesUntilFound: number;
  };
  search: {
    searches: number;
    /** B kept current by notifications: a search reads PostgreSQL only for its hits' rows. */
    notifiedUs: number;
    /** No notifications: every search first reads what is new in PostgreSQL. */
    catchUpEverySearchUs: number;
    ratio: number;
  };
  targets: { propagation: { targetMs: number; measuredMaxMs: number; met: boolean } };
}

type Skipped = { skipped: string };

export async function runMemorySyncBench({
  json,
  writes = 200,
  records = 1_000,
  searches = 500,
}: MemorySyncBenchOptions): Promise<MemorySyncResult | Skipped> {
  if (!(await postgresAnswers())) {
    const skipped = {
      skipped: `PostgreSQL does not answer at ${TEST_DATABASE_URL}: start it (or set TALOS_TEST_DATABASE_URL) to run the memory-sync bench`,
    };
    if (!json) console.log(skipped.skipped);
    return skipped;
  }
  const loadAtStart = loadavg()[0]!;
  const schema = freshSchema("talos_bench");
  const log = pino({ level: "silent" });
  const databases: Database[] = [];
  const memories: PostgresMemory[] = [];
  const open = async (database: MemoryDatabase) => {
    const memory = await PostgresMemory.open({
      database,
      schema,
      embedder: createLocalEmbedder(),
      log,
      metrics: createMetrics(),
      maxOpenBytes: 256 * 2 ** 20,
    });
    memories.push(memory);
    if (memory.searchesInSql) throw new Error("memory-sync: the memory searches in SQL, not RAM");
    return memory.open(REF);
  };
  try {
    // Two instances: a pool each, as two processes would have.
    for (let i = 0; i < 2; i++)
      databases.push(await Database.open({ url: TEST_DATABASE_URL, schema, log }));
    const [poolA, poolB] = databases as [Database, Database];
    const a = await open(withoutVector(poolA, { notified: true }));
    const b = await open(withoutVector(poolB, { notified: true }));
    // B again, on B's pool, as it runs when notifications do not arrive.
    const bUnnotified = await open(withoutVector(poolB, { notified: false }));

    for (let from = 1; from <= records; from += 100)
      await a.addMany(
        Array.from({ length: Math.min(100, records - from + 1) }, (_, i) =>
          issueMemory(from + i, issueText(from + i)),
        ),
      );
    // B's index is loaded and current before the first timed write.
    await b.search(issueText(1), { k: 1 });
    await bUnnotified.search(issueText(1), { k: 1 });

    const propagation = await timePropagation(a, b, records, writes);
    const search = await timeSearches(b, bUnnotified, records, searches);
    const recordsAtEnd = (await a.stats()).records;
    const result: MemorySyncResult = {
      writes,
      recordsBefore: records,
      recordsAtEnd,
      cores: cpus().length,
      loadAtStart,
      propagation,
      search,
      targets: {
        propagation: {
          targetMs: BOUND_MS,
          measuredMaxMs: propagation.maxMs,
          met: propagation.missed === 0 && propagation.maxMs <= BOUND_MS,
        },
      },
    };
    if (!json) printReport(result);
    return result;
  } finally {
    for (const memory of memories) await memory.closeAll();
    for (const database of databases) await database.close();
    await dropSchema(schema);
  }
}

/**
 * The memory's view of `database` with pgvector hidden, so that searches run in RAM even on a
 * server that has it; with `notified: false`, as if the listening connection were down, which
 * makes every search read PostgreSQL first (the way to stay current without notifications).
 */
function withoutVector(database: Database, { notified }: { notified: boolean }): MemoryDatabase {
  return {
    vector: false,
    inScope: (scope, work) => database.inScope(scope, work),
    asOwner: (sql) => database.asOwner(sql),
    listen: notified
      ? (channel, handlers) => database.listen(channel, handlers)
      : async () => ({ listening: () => false, close: async () => {} }),
  };
}

/** An issue's text with a word no other issue has, so that a search for it ranks it first. */
function issueText(number: number): string {
  const { title, body } = generateIssueText(number);
  return `${title} (build ${probeWord(number)})\n\n${body}`;
}

/** A made-up word per number, of letters only, so the embedder and the keyword index keep it whole. */
function probeWord(number: number): string {
  let word = "";
  for (let n = number; n > 0; n = Math.floor(n / 26)) word += String.fromCharCode(97 + (n % 26));
  return `zq${word}x`;
}

async function timePropagation(
  a: RepoMemory,
  b: RepoMemory,
  records: number,
  writes: number,
): Promise<MemorySyncResult["propagation"]> {
  const latencies: number[] = [];
  let missed = 0;
  let foundByFirstSearch = 0;
  let searchesUntilFound = 0;
  for (let i = 1; i <= writes; i++) {
    const number = records + i;
    const text = issueText(number);
    await a.add(issueMemory(number, text));
    const started = performance.now();
    for (let tries = 1; ; tries++) {
      const [hit] = await b.search(text, { k: 1 });
      const elapsed = performance.now() - started;
      if (hit?.record.id === `issue-${number}`) {
        latencies.push(elapsed);
        searchesUntilFound += tries;
        if (tries === 1) foundByFirstSearch++;
        break;
      }
      if (elapsed > GIVE_UP_MS) {
        missed++;
        break;
      }
      // Lets the notification's socket be read between two searches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  const { mean, p50, p99 } = summarize(latencies);
  return {
    found: latencies.length,
    missed,
    meanMs: mean,
    p50Ms: p50,
    p99Ms: p99,
    maxMs: Math.max(0, ...latencies),
    foundByFirstSearch,
    meanSearchesUntilFound: searchesUntilFound / Math.max(1, latencies.length),
  };
}

/**
 * B's search with no writes going on, kept current by notifications and by reading PostgreSQL
 * before every search: the same queries, in alternating rounds so that load drifts alike on both.
 */
async function timeSearches(
  notified: RepoMemory,
  catchUp: RepoMemory,
  records: number,
  searches: number,
): Promise<MemorySyncResult["search"]> {
  const queries = Array.from({ length: searches }, (_, i) => {
    const { title } = generateIssueText(1 + ((i * 7919) % records));
    return title;
  });
  const run = async (memory: RepoMemory, part: string[]) => {
    const started = performance.now();
    for (const query of part) await memory.search(query, { k: 5 });
    return performance.now() - started;
  };
  // Warm-up: the JIT, and the pool's connections.
  for (const memory of [notified, catchUp]) await run(memory, queries.slice(0, 20));
  const ms = { notified: 0, catchUp: 0 };
  const size = Math.ceil(searches / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    const part = queries.slice(round * size, (round + 1) * size);
    const order =
      round % 2 === 0 ? (["notified", "catchUp"] as const) : (["catchUp", "notified"] as const);
    for (const mode of order) ms[mode] += await run(mode === "notified" ? notified : catchUp, part);
  }
  const notifiedUs = (ms.notified * 1000) / searches;
  const catchUpEverySearchUs = (ms.catchUp * 1000) / searches;
  return {
    searches,
    notifiedUs,
    catchUpEverySearchUs,
    ratio: catchUpEverySearchUs / notifiedUs,
  };
}

function printReport(r: MemorySyncResult) {
  console.log(
    `memory-sync: memory in PostgreSQL without pgvector (in-RAM indexes kept by LISTEN/NOTIFY and a sequence catch-up), 2 instances in one process with a pool each; ${r.writes} writes timed, ${r.recordsBefore} records before, ${r.recordsAtEnd} at the end; ${r.cores} cores, load ${r.loadAtStart.toFixed(2)} at start`,
  );
  const p = r.propagation;
  console.log(
    "\nwrite through A (clock starts when add resolves) until a search through B finds it",
  );
  printTable([
    {
      writes: r.writes,
      found: p.found,
      missed: p.missed,
      "p50 ms": p.p50Ms.toFixed(2),
      "p99 ms": p.p99Ms.toFixed(2),
      "max ms": p.maxMs.toFixed(2),
      "found by 1st search": p.foundByFirstSearch,
      "searches until found, mean": p.meanSearchesUntilFound.toFixed(2),
    },
  ]);
  console.log(`\nB's search (k=5), no writes meanwhile, ${r.search.searches} searches per mode`);
  printTable([
    { "kept current by": "notification", "µs per search": r.search.notifiedUs.toFixed(0) },
    {
      "kept current by": "catch-up on every search",
      "µs per search": r.search.catchUpEverySearchUs.toFixed(0),
    },
  ]);
  console.log(`catch-up on every search ÷ notified: ${r.search.ratio.toFixed(2)}×`);
  const { propagation } = r.targets;
  console.log(
    `\ntarget found through another instance within ${propagation.targetMs} ms: ${propagation.met ? "met" : "not met"} (max ${propagation.measuredMaxMs.toFixed(2)} ms${p.missed > 0 ? `, ${p.missed} not found within ${GIVE_UP_MS} ms` : ""})`,
  );
}

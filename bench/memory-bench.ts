import { execFileSync, spawn } from "node:child_process";
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalFileStorage, LocalIndex } from "../src/memory/vectra-files.js";
import { dot } from "../src/memory/hybrid-search.js";
import type { MemoryInput } from "../src/memory/memory-store.js";
import { QuantizedMatrix } from "../src/memory/quantized-matrix.js";
import { RESCORE_FACTOR, type VectraMemoryStore } from "../src/memory/vectra-memory-store.js";
import { createMetrics, type Metrics } from "../src/metrics/create-metrics.js";
import type { ChildTask } from "./memory-child.js";
import {
  BATCH_SIZE,
  createBenchEmbedder,
  DIMENSION,
  FLUSH_MS,
  longQuery,
  memoryInput,
  openBenchStore,
  randomUnitVector,
  range,
  SEGMENT_SIZE,
  shortQuery,
  timedWithoutEmbedding,
  type BenchEmbedder,
  type ServerThreads,
  startServerThreads,
  stopServerThreads,
} from "./memory-data.js";
import { runSimilarBench, type SimilarBenchResult } from "./similar-bench.js";
import { printTable, summarize } from "./stats.js";

const CHILD = fileURLToPath(new URL("./memory-child.ts", import.meta.url));

const DEFAULT_SIZES = [1_000, 10_000, 100_000, 250_000];
const STORE_WINDOW = 2_000;
const PREFILL_CHUNK = 1_000;
// Adds in flight at once, as parallel webhooks make them: the log's group commit shares one
// write and one fsync among those waiting.
const CONCURRENCIES = [1, 16, 64] as const;
const CONCURRENT_ADDS = 1_000;
// Each naive add at 10,000 records serializes ~330 MB of JSON (~3.5 s here), so ten adds per way
// is what a five-minute run allows; the cost per add moves by 0.1% over a window this short.
const NAIVE_WINDOW = 10;
// Around 17,000 records the JSON of all of them exceeds V8's maximum string length (2^29 - 24
// characters) and the naive save throws (see DEPENDENCIES.md, vectra).
const NAIVE_MAX_RECORDS = 15_000;
const SEARCHES = 30;
const SEARCH_WARM_UP = 5;
const SELF_SEARCHES = 10;
// A cold open's first search loads the keyword index; the rest are timed for p50 and p99.
const COLD_SEARCHES = 31;
// Issue 12's installation: 40 repositories of 20,000 records under a 512 MB cap of open stores.
const REPOSITORIES = { count: 40, records: 20_000, passes: 2, maxOpenMb: 512 };
// What the process takes beyond the open memories' cap, whatever their number: the benchmark's
// own process before any open (Node, tsx and the modules: ~200 MB), and the garbage of a store
// being opened while another is closed, until the collector returns it (~120 MB).
const RSS_OVERHEAD_MB = 320;
const RECALL_QUERIES = 30;
const TARGETS = {
  speedup: 100,
  flatRatio: 1.5,
  searchMs: 150,
  concurrentAddUs: 100,
  coldOpenMs: 1_000,
  rssPer100kMb: 200,
  searchAt250kMs: 60,
  recallAt5: 0.99,
};

/** Times `adds` one at a time; the window total includes what `settle` waits for after them. */
async function timeWindow(adds: Array<() => Promise<unknown>>, settle: () => Promise<unknown>) {
  const samples: number[] = [];
  const start = performance.now();
  for (const add of adds) {
    const begin = performance.now();
    await add();
    samples.push(performance.now() - begin);
  }
  await settle();
  const totalMs = performance.now() - start;
  const latency = summarize(samples);
  return {
    timedAdds: adds.length,
    perAddUs: (totalMs / adds.length) * 1000,
    p50Us: latency.p50 * 1000,
    p99Us: latency.p99 * 1000,
  };
}

type NaiveResult =
  | (Awaited<ReturnType<typeof timeWindow>> & {
      from: number;
      /** Index files written during the timed adds, counted. */
      indexWrites: number;
      bytesPerRecord: number;
    })
  | { skipped: string };

const tooLargeForNaive = (records: number): NaiveResult | undefined =>
  records > NAIVE_MAX_RECORDS
    ? {
        skipped: `not run: the JSON of ${records} records exceeds V8's maximum string length, so the naive save fails above ~17,000 records`,
      }
    : undefined;

interface NaiveRecord extends MemoryInput {
  vector: number[];
}

const naiveRecord = (i: number): NaiveRecord => {
  const input = memoryInput(i);
  return { ...input, vector: Array.from(randomUnitVector(input.text)) };
};

/** Naive way A, the original Talos: an array of every record, all saved with writeFile per add. */
async function measureNaiveArray(directory: string, records: number): Promise<NaiveResult> {
  const skipped = tooLargeForNaive(records);
  if (skipped) return skipped;
  const file = join(directory, "memory.json");
  const window = Math.min(NAIVE_WINDOW, records);
  const from = records - window;
  // The prefill is not timed: the array simply holds the records the saves will write.
  const all = range(0, from).map(naiveRecord);
  const incoming = range(from, records).map(naiveRecord);
  let indexWrites = 0;
  const result = await timeWindow(
    incoming.map((record) => async () => {
      all.push(record);
      await writeFile(file, JSON.stringify(all));
      indexWrites++;
    }),
    async () => undefined,
  );
  return { ...result, from, indexWrites, bytesPerRecord: statSync(file).size / records };
}

/** vectra's default file storage (a plain writeFile), counting the files it writes. */
class CountingFileStorage extends LocalFileStorage {
  writes = 0;

  override async upsertFile(filePath: string, content: Buffer | string): Promise<void> {
    this.writes++;
    await super.upsertFile(filePath, content);
  }
}

/** Naive way B: vectra's `LocalIndex.insertItem` outside an update, which saves the whole index. */
async function measureNaiveVectra(directory: string, records: number): Promise<NaiveResult> {
  const skipped = tooLargeForNaive(records);
  if (skipped) return skipped;
  const window = Math.min(NAIVE_WINDOW, records);
  const from = records - window;
  const storage = new CountingFileStorage();
  const index = new LocalIndex(directory, undefined, storage);
  await index.createIndex({ version: 1 });
  const item = (i: number) => {
    const { vector, id, kind, text, repo, number, author, url, createdAt, state } = naiveRecord(i);
    const metadata = {
      kind,
      text,
      repo,
      number: number!,
      author: author!,
      url: url!,
      createdAt,
      state: state!,
    };
    return { id, vector, metadata };
  };
  // The prefill goes in one untimed update, so it is written once.
  await index.beginUpdate();
  for (const i of range(0, from)) await index.insertItem(item(i));
  await index.endUpdate();
  const incoming = range(from, records).map(item);
  const writesBefore = storage.writes;
  const result = await timeWindow(
    incoming.map((it) => () => index.insertItem(it)),
    async () => undefined,
  );
  const bytes = statSync(join(directory, "index.json")).size;
  return {
    ...result,
    from,
    indexWrites: storage.writes - writesBefore,
    bytesPerRecord: bytes / records,
  };
}

/** Flushes so far, and the seconds they took, from the store's own metrics. */
async function flushTotals(metrics: Metrics) {
  const { values } = await metrics.memoryFlushDuration.get();
  const total = (suffix: string) => values.find((v) => v.metricName?.endsWith(suffix))?.value ?? 0;
  return { count: total("_count"), seconds: total("_sum") };
}

async function timeSearches(store: VectraMemoryStore, bench: BenchEmbedder, queries: string[]) {
  bench.prepare(queries);
  for (const query of queries.slice(0, SEARCH_WARM_UP)) await store.search(query, { k: 5 });
  return timedWithoutEmbedding(bench, async () => {
    const samples: number[] = [];
    for (const query of queries) {
      const start = performance.now();
      await store.search(query, { k: 5 });
      samples.push(performance.now() - start);
    }
    const { p50, p99 } = summarize(samples);
    return { p50Ms: p50, p99Ms: p99 };
  });
}

/** Adds `count` records from `from` with `inFlight` adds at once, the last flush included. */
async function timeConcurrentAdds(
  store: VectraMemoryStore,
  bench: BenchEmbedder,
  from: number,
  count: number,
  inFlight: number,
) {
  const inputs = range(from, from + count).map(memoryInput);
  bench.prepare(inputs.map((input) => input.text));
  let next = 0;
  return timedWithoutEmbedding(bench, async () => {
    const start = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < inputs.length) await store.add(inputs[next++]!);
      }),
    );
    await store.flush();
    return {
      adds: count,
      inFlight,
      perAddUs: ((performance.now() - start) / count) * 1000,
    };
  });
}

/** The store at `records`: prefill, a timed window of single durable adds, searches, a reload. */
async function measureStore(
  directory: string,
  records: number,
  bench: BenchEmbedder,
  threads: ServerThreads,
) {
  const metrics = createMetrics();
  const window = Math.min(STORE_WINDOW, records);
  const from = records - window;
  let store = await openBenchStore(directory, bench, metrics, threads);

  const prefillSeconds = await prefill(store, from);

  const inputs = range(from, records).map(memoryInput);
  bench.prepare(inputs.map((input) => input.text));
  const flushesBefore = await flushTotals(metrics);
  const adds = await timedWithoutEmbedding(bench, () =>
    timeWindow(
      inputs.map((input) => () => store.add(input)),
      // The flush the last add started, or the records still waiting: part of the cost.
      () => store.flush(),
    ),
  );
  const flushesAfter = await flushTotals(metrics);
  const indexWrites = flushesAfter.count - flushesBefore.count;
  const flushMsMean = ((flushesAfter.seconds - flushesBefore.seconds) * 1000) / indexWrites;

  const long = await timeSearches(store, bench, range(0, SEARCHES).map(longQuery));
  const short = await timeSearches(store, bench, range(0, SEARCHES).map(shortQuery));

  await store.close();
  const loadStart = performance.now();
  store = await openBenchStore(directory, bench, createMetrics(), threads);
  const loadMs = performance.now() - loadStart;
  const { bytesOnDisk, records: reopened } = await store.stats();

  // Every record is back, and a record's own text finds it first.
  let foundAfterReopen = 0;
  for (const i of range(0, records))
    if ((await store.get(`issue-${i}`))?.text === memoryInput(i).text) foundAfterReopen++;
  let selfHits = 0;
  for (const i of range(0, SELF_SEARCHES).map((j) => Math.floor((j * records) / SELF_SEARCHES))) {
    const [hit] = await store.search(memoryInput(i).text, { k: 5 });
    if (hit?.record.id === `issue-${i}`) selfHits++;
  }

  const concurrent = [];
  let next = records;
  for (const inFlight of CONCURRENCIES) {
    const count = Math.min(CONCURRENT_ADDS, records);
    concurrent.push(await timeConcurrentAdds(store, bench, next, count, inFlight));
    next += count;
  }
  await store.close();
  bench.forget();
  // A start's first open, in a process of its own: the time, the searches and the RSS.
  // The files are written out first, as after a restart: the kernel's writeback of what this
  // process just wrote would otherwise compete with the child's open for the two cores.
  execFileSync("sync");
  const cold = await runChild<ColdOpen>({
    kind: "open",
    directory,
    searches: COLD_SEARCHES,
  });
  return {
    from,
    prefillSeconds,
    ...adds,
    indexWrites,
    flushMsMean,
    searchLong: long,
    searchShort: short,
    loadMs,
    bytesPerRecord: bytesOnDisk / reopened,
    recordsAfterReopen: reopened,
    foundAfterReopen,
    selfSearches: SELF_SEARCHES,
    selfHits,
    concurrent,
    cold,
  };
}

/** Adds records 0 to `count` with `addMany` and flushes; returns the seconds it took. */
async function prefill(store: VectraMemoryStore, count: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i += PREFILL_CHUNK)
    await store.addMany(range(i, Math.min(count, i + PREFILL_CHUNK)).map(memoryInput));
  await store.flush();
  return (performance.now() - start) / 1000;
}

interface ColdOpen {
  records: number;
  openMs: number;
  firstSearchMs: number;
  searchP50Ms: number;
  searchP99Ms: number;
  rssBeforeMb: number;
  rssAfterOpenMb: number;
  rssAfterSearchesMb: number;
  rssPeakMb: number;
  rssPer100kMb: number;
  estimatedMb: number;
}

interface RepositoriesRun {
  repositories: number;
  passes: number;
  capMb: number;
  baselineRssMb: number;
  peakRssMb: number;
  settledRssMb: number;
  openAndSearchP50Ms: number;
  openAndSearchP99Ms: number;
  seconds: number;
}

/** Runs a task of memory-child.ts in a new Node process; resolves with its JSON line. */
function runChild<T>(task: ChildTask): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "--import", "tsx", CHILD, JSON.stringify(task)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      const last = output.trim().split("\n").at(-1);
      if (code !== 0 || !last) reject(new Error(`memory-child ${task.kind} exited with ${code}`));
      else resolve(JSON.parse(last) as T);
    });
  });
}

/**
 * Many repositories under one RAM cap, as an installation holds them: one memory of
 * `REPOSITORIES.records` is written, then linked into `REPOSITORIES.count` namespaces (the
 * stores only read them here, and each reads its own copy into RAM), and a child process opens
 * and searches each in turn through the registry, whose LRU closes idle stores over the cap.
 */
async function measureRepositories(
  root: string,
  bench: BenchEmbedder,
  threads: ServerThreads,
  config: typeof REPOSITORIES,
) {
  const template = join(root, "repositories-template");
  mkdirSync(template, { recursive: true });
  const store = await openBenchStore(template, bench, createMetrics(), threads);
  const prefillSeconds = await prefill(store, config.records);
  await store.close();
  const memory = join(root, "repositories", "memory");
  for (let r = 1; r <= config.count; r++) {
    const directory = join(memory, "1", String(r));
    mkdirSync(directory, { recursive: true });
    for (const name of readdirSync(template))
      if (!name.endsWith(".lock")) linkSync(join(template, name), join(directory, name));
    writeFileSync(
      join(directory, "repository.json"),
      JSON.stringify({ installation: 1, repository: r, name: `acme/repo-${r}` }),
    );
  }
  const run = await runChild<RepositoriesRun>({
    kind: "repositories",
    directory: memory,
    repositories: config.count,
    passes: config.passes,
    maxOpenBytes: config.maxOpenMb * 2 ** 20,
  });
  return { recordsEach: config.records, prefillSeconds, ...run };
}

/**
 * Recall@5 of the store's vector search (int8 scan, the best 4 × 5 rescored in float32)
 * against exact float32 search, on the benchmark's vectors.
 */
function measureQuantizedRecall(records: number) {
  const matrix = new QuantizedMatrix(DIMENSION, records);
  const all = new Float32Array(records * DIMENSION);
  for (const i of range(0, records)) {
    const vector = randomUnitVector(memoryInput(i).text);
    all.set(vector, i * DIMENSION);
    matrix.set(i, `issue-${i}`, vector);
  }
  const row = (i: number) => all.subarray(i * DIMENSION, (i + 1) * DIMENSION);
  let rescored = 0;
  let approximateOnly = 0;
  const queries = range(0, RECALL_QUERIES).map((j) => randomUnitVector(longQuery(j)));
  for (const query of queries) {
    const exact = new Set(
      range(0, records)
        .map((i) => ({ i, score: dot(query, row(i)) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 5)
        .map(({ i }) => i),
    );
    const candidates = matrix.candidates(query, RESCORE_FACTOR * 5, () => true);
    const best = candidates
      .map((c) => ({ i: c.slot, score: dot(query, row(c.slot)) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 5);
    rescored += best.filter(({ i }) => exact.has(i)).length / 5;
    approximateOnly += candidates.slice(0, 5).filter((c) => exact.has(c.slot)).length / 5;
  }
  return {
    records,
    queries: queries.length,
    recallAt5: rescored / queries.length,
    approximateOnlyRecallAt5: approximateOnly / queries.length,
  };
}

/** A few hundred untimed adds and searches, so the first size is not measured on cold code. */
async function warmUp(directory: string, bench: BenchEmbedder) {
  const store = await openBenchStore(directory, bench, createMetrics());
  for (const i of range(0, 300)) await store.add(memoryInput(i));
  for (const query of ["editor crash", "why does the editor crash when saving a large file"])
    await store.search(query, { k: 5 });
  await store.close();
}

type StoreResult = Awaited<ReturnType<typeof measureStore>>;

interface SizeResult {
  records: number;
  naiveArray: NaiveResult;
  naiveVectra: NaiveResult;
  store: StoreResult;
  /** How many times faster the store's durable add is than each naive add. */
  speedup: { naiveArray: number | null; naiveVectra: number | null };
}

const perAdd = (naive: NaiveResult) => ("skipped" in naive ? undefined : naive.perAddUs);

async function measureSize(
  root: string,
  records: number,
  bench: BenchEmbedder,
  threads: ServerThreads,
): Promise<SizeResult> {
  const directory = (name: string) => {
    const path = join(root, `${name}-${records}`);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const naiveArray = await measureNaiveArray(directory("naive-array"), records);
  const naiveVectra = await measureNaiveVectra(directory("naive-vectra"), records);
  const store = await measureStore(directory("store"), records, bench, threads);
  const ratio = (naive: NaiveResult) => {
    const us = perAdd(naive);
    return us === undefined ? null : us / store.perAddUs;
  };
  return {
    records,
    naiveArray,
    naiveVectra,
    store,
    speedup: { naiveArray: ratio(naiveArray), naiveVectra: ratio(naiveVectra) },
  };
}

/** The project's targets, each `met: null` when this run did not measure it. */
interface Extras {
  recall: ReturnType<typeof measureQuantizedRecall>;
  repositories: Awaited<ReturnType<typeof measureRepositories>>;
  similar: SimilarBenchResult;
}

function evaluateTargets(sizes: SizeResult[], { recall, repositories, similar }: Extras) {
  const at = (records: number) => sizes.find((s) => s.records === records);
  const quarterMillion = at(250_000);
  const coldAt100k = at(100_000)?.store.cold.openMs ?? null;
  const rss = rssPer100k(sizes);
  const searchAt250k = quarterMillion
    ? Math.max(quarterMillion.store.searchLong.p50Ms, quarterMillion.store.searchShort.p50Ms)
    : null;
  const realRecall = "skipped" in similar ? null : similar.quantized.recallAt5;
  const repositoriesLimit = repositories.capMb + RSS_OVERHEAD_MB;
  const tenK = at(10_000);
  const hundredK = at(100_000);
  const smallest = sizes[0];
  const largest = sizes.at(-1);
  const speedups = tenK ? [tenK.speedup.naiveArray, tenK.speedup.naiveVectra] : [];
  const flatRatio =
    smallest && largest && largest !== smallest
      ? largest.store.perAddUs / smallest.store.perAddUs
      : null;
  const searchWorst = (q: "p50Ms" | "p99Ms") =>
    hundredK ? Math.max(hundredK.store.searchLong[q], hundredK.store.searchShort[q]) : null;
  const p50 = searchWorst("p50Ms");
  const p99 = searchWorst("p99Ms");
  const most = CONCURRENCIES.at(-1)!;
  const concurrentAdd =
    largest?.store.concurrent.find((c) => c.inFlight === most)?.perAddUs ?? null;
  return {
    coldOpenAt100k: {
      targetMs: TARGETS.coldOpenMs,
      openMs: coldAt100k,
      met: coldAt100k === null ? null : coldAt100k <= TARGETS.coldOpenMs,
    },
    rssPer100k: {
      targetMb: TARGETS.rssPer100kMb,
      /** The smaller cold open the growth is taken from (null: `at`'s whole open). */
      from: rss?.from ?? null,
      at: rss?.at ?? null,
      mb: rss?.mb ?? null,
      /** The largest cold open's whole RSS growth, per 100,000 records. */
      wholeOpenMb: largestCold(sizes)?.rssPer100kMb ?? null,
      met: rss ? rss.mb <= TARGETS.rssPer100kMb : null,
    },
    searchAt250k: {
      targetMs: TARGETS.searchAt250kMs,
      worstP50Ms: searchAt250k,
      met: searchAt250k === null ? null : searchAt250k <= TARGETS.searchAt250kMs,
    },
    quantizedRecallAt5: {
      target: TARGETS.recallAt5,
      benchmarkData: recall.recallAt5,
      realText: realRecall,
      met:
        recall.recallAt5 >= TARGETS.recallAt5 &&
        (realRecall === null ? null : realRecall >= TARGETS.recallAt5),
    },
    repositories: {
      target: `peak RSS ≤ the ${repositories.capMb} MB cap + ${RSS_OVERHEAD_MB} MB`,
      peakRssMb: repositories.peakRssMb,
      met: repositories.peakRssMb <= repositoriesLimit,
    },
    similarIssues: "skipped" in similar ? { skipped: similar.skipped } : similar.targets,
    concurrentAdds: {
      target: `amortized add with ${most} adders in flight ≤ ${TARGETS.concurrentAddUs} µs, at ${largest?.records.toLocaleString("en-US")} records`,
      perAddUs: concurrentAdd,
      met: concurrentAdd === null ? null : concurrentAdd <= TARGETS.concurrentAddUs,
    },
    speedupAt10k: {
      target: TARGETS.speedup,
      naiveArray: tenK?.speedup.naiveArray ?? null,
      naiveVectra: tenK?.speedup.naiveVectra ?? null,
      met:
        speedups.length > 0 && speedups.every((s) => s !== null)
          ? speedups.every((s) => s! >= TARGETS.speedup)
          : null,
    },
    flatAddCost: {
      target: `per-add at ${largest?.records.toLocaleString("en-US")} records within ${TARGETS.flatRatio}× of per-add at ${smallest?.records.toLocaleString("en-US")}`,
      ratio: flatRatio,
      met: flatRatio === null ? null : flatRatio <= TARGETS.flatRatio,
    },
    searchAt100k: {
      targetMs: TARGETS.searchMs,
      worstP50Ms: p50,
      worstP99Ms: p99,
      metAtP50: p50 === null ? null : p50 <= TARGETS.searchMs,
      metAtP99: p99 === null ? null : p99 <= TARGETS.searchMs,
    },
  };
}

type Targets = ReturnType<typeof evaluateTargets>;

/** The cold open of the largest size measured. */
const largestCold = (sizes: SizeResult[]) => sizes.at(-1)?.store.cold;

/**
 * RSS per 100,000 records: what the largest cold open's RSS grew by beyond the next largest's,
 * per record. Each open's growth also holds what a process pays once, whatever the size: the
 * young generation's pages, mapped as allocation first reaches them, and the optimizing
 * compiler's memory, which grew by 1–2 MB a search over a fresh child's first 20 searches
 * (about 35 MB in all: the cold open of 4,000 records grew RSS by 45 MB). The difference
 * leaves that out. With a single size, its whole open.
 */
function rssPer100k(sizes: SizeResult[]): { mb: number; from: number | null; at: number } | null {
  const [smaller, larger] = sizes.slice(-2).map((size) => size.store.cold);
  if (!smaller) return null;
  if (!larger) return { mb: smaller.rssPer100kMb, from: null, at: smaller.records };
  const grown = (cold: ColdOpen) => cold.rssAfterSearchesMb - cold.rssBeforeMb;
  return {
    mb: ((grown(larger) - grown(smaller)) * 100_000) / (larger.records - smaller.records),
    from: smaller.records,
    at: larger.records,
  };
}

export async function runMemoryBench({
  json,
  sizes = DEFAULT_SIZES,
  repositories = REPOSITORIES,
  recallRecords = 100_000,
  similarDirectory,
}: {
  json: boolean;
  sizes?: number[];
  repositories?: typeof REPOSITORIES;
  recallRecords?: number;
  /** The duplicate-issue data (default ../shared/data/duplicates); missing, that part skips. */
  similarDirectory?: string;
}) {
  const started = performance.now();
  // Other processes share this machine: the load says how much they took from the figures.
  const loadAtStart = loadavg()[0]!;
  const root = mkdtempSync(join(tmpdir(), "talos-memory-bench-"));
  const bench = createBenchEmbedder();
  const results: SizeResult[] = [];
  // As the server runs: the scan shared with a second thread where there is a second core.
  const threads = startServerThreads();
  let extras: Extras;
  try {
    await warmUp(join(root, "warm-up"), bench);
    for (const records of sizes) results.push(await measureSize(root, records, bench, threads));
    extras = {
      recall: measureQuantizedRecall(recallRecords),
      repositories: await measureRepositories(root, bench, threads, repositories),
      similar: await runSimilarBench({
        json: true,
        splits: ["test"],
        ...(similarDirectory ? { directory: similarDirectory } : {}),
      }),
    };
  } finally {
    await stopServerThreads(threads);
    rmSync(root, { recursive: true, force: true });
  }
  const result = {
    suite: "memory",
    dimension: DIMENSION,
    setup: {
      batchSize: BATCH_SIZE,
      flushMs: FLUSH_MS,
      segmentSize: SEGMENT_SIZE,
      storeWindow: STORE_WINDOW,
      naiveWindow: NAIVE_WINDOW,
      concurrency: CONCURRENCIES,
      searches: SEARCHES,
      scanThreads: threads.scanHelper ? 2 : 1,
    },
    machine: { cores: cpus().length, loadAverage1m: { start: loadAtStart, end: loadavg()[0]! } },
    sizes: results,
    ...extras,
    targets: evaluateTargets(results, extras),
    totalSeconds: (performance.now() - started) / 1000,
  };
  if (!json) printReport(result);
  return result;
}

const n = (value: number) => value.toLocaleString("en-US");
const times = (value: number | null) => (value === null ? "n/a" : `${value.toFixed(0)}×`);
const verdict = (met: boolean | null) =>
  met === null ? "not measured in this run" : met ? "met" : "NOT met";

function rssDetail({ mb, from, at, wholeOpenMb }: Targets["rssPer100k"]): string {
  if (mb === null || at === null) return "";
  const whole =
    wholeOpenMb === null ? "" : `; the whole open at ${n(at)}: ${wholeOpenMb.toFixed(0)} MB`;
  return from === null
    ? ` (${mb.toFixed(0)} MB, the whole open at ${n(at)})`
    : ` (${mb.toFixed(1)} MB, from ${n(from)} records to ${n(at)}${whole})`;
}

function printReport({
  machine,
  sizes,
  targets,
  totalSeconds,
  recall,
  repositories,
  similar,
}: Extras & {
  machine: { cores: number; loadAverage1m: { start: number; end: number } };
  sizes: SizeResult[];
  targets: Targets;
  totalSeconds: number;
}): void {
  console.log(
    `memory: durable adds, searches and reloads with ${DIMENSION}-dimension vectors (pseudo-random unit vectors, embedded before timing starts)`,
  );
  console.log(
    "  naive A: an array of every record, JSON.stringify + writeFile of all of them on every add, as the original Talos did (no fsync)",
  );
  console.log(
    "  naive B: vectra 0.15 LocalIndex.insertItem outside beginUpdate/endUpdate, which rewrites index.json (JSON codec, no fsync)",
  );
  console.log(
    `  store:   VectraMemoryStore, sequential \`await add()\`, each fsynced in the write-ahead log; batch ${BATCH_SIZE}, segments of ${n(SEGMENT_SIZE)}; flushes included`,
  );
  console.log(
    `  per add = a window's total time / its adds: the naive ways' last ${NAIVE_WINDOW} adds up to N after an untimed prefill (they are O(n) per add);`,
  );
  console.log(
    `  the store's last ${n(STORE_WINDOW)} single adds up to N, after an untimed addMany prefill, with the flush the window ends on`,
  );
  console.log(
    `  ${machine.cores} cores; 1-minute load average ${machine.loadAverage1m.start.toFixed(1)} at the start, ${machine.loadAverage1m.end.toFixed(1)} at the end\n`,
  );
  const addRow = (
    way: string,
    records: number,
    r: NaiveResult | StoreResult,
  ): Record<string, string | number> =>
    "skipped" in r
      ? { way, records: n(records), "timed adds": "-", "per add µs": "not run (see below)" }
      : {
          way,
          records: n(records),
          "timed adds": `${n(r.from)}→${n(records)}`,
          "per add µs": r.perAddUs,
          "p50 µs": r.p50Us,
          "p99 µs": r.p99Us,
          "index writes/1k adds": (r.indexWrites / r.timedAdds) * 1_000,
          "bytes/record": Math.round(r.bytesPerRecord),
        };
  printTable(
    sizes.flatMap((s) => [
      addRow("naive A (array + writeFile)", s.records, s.naiveArray),
      addRow("naive B (vectra insertItem)", s.records, s.naiveVectra),
      addRow("store", s.records, s.store),
    ]),
  );
  for (const s of sizes) {
    for (const [way, r] of [
      ["naive A", s.naiveArray],
      ["naive B", s.naiveVectra],
    ] as const)
      if ("skipped" in r) console.log(`${way} at ${n(s.records)}: ${r.skipped}`);
  }
  console.log("");
  printTable(
    sizes.map(({ records, store }) => ({
      records: n(records),
      "prefill s": store.prefillSeconds,
      "flush ms": store.flushMsMean,
      ...Object.fromEntries(
        store.concurrent.map((c) => [`${c.inFlight} in flight µs/add`, c.perAddUs]),
      ),
      "search long p50 ms": store.searchLong.p50Ms,
      "long p99 ms": store.searchLong.p99Ms,
      "short p50 ms": store.searchShort.p50Ms,
      "short p99 ms": store.searchShort.p99Ms,
      "reopen ms": store.loadMs,
      "found after reopen": `${n(store.foundAfterReopen)}/${n(records)}`,
      "self-search hits": `${store.selfHits}/${store.selfSearches}`,
    })),
  );
  console.log(
    `\nflush ms: one flush in the timed window (a rewrite of the segment it fills, ≤ ${n(SEGMENT_SIZE)} records, and the manifest)`,
  );
  console.log(
    `search: top 5 over all records, ${SEARCHES} queries each after ${SEARCH_WARM_UP} warm-up; long = 12 words, short = 2 words; each a hybrid (vectors and BM25 over every record, fused; near-duplicates first), the keyword index built by the first search`,
  );
  for (const s of sizes) {
    console.log(
      `store vs naive at ${n(s.records)}: ${times(s.speedup.naiveArray)} faster than naive A, ${times(s.speedup.naiveVectra)} faster than naive B`,
    );
  }
  const { speedupAt10k, flatAddCost, searchAt100k, concurrentAdds } = targets;
  console.log(
    `\ntarget ≥ ${speedupAt10k.target}× faster adds than naive at 10,000: ${verdict(speedupAt10k.met)} (A ${times(speedupAt10k.naiveArray)}, B ${times(speedupAt10k.naiveVectra)})`,
  );
  console.log(
    `target flat add cost (${flatAddCost.target}): ${verdict(flatAddCost.met)}${flatAddCost.ratio === null ? "" : ` (ratio ${flatAddCost.ratio.toFixed(2)})`}`,
  );
  console.log(
    `target search top-5 at 100,000 ≤ ${searchAt100k.targetMs} ms: p50 ${verdict(searchAt100k.metAtP50)}, p99 ${verdict(searchAt100k.metAtP99)}${searchAt100k.worstP50Ms === null ? "" : ` (slowest kind: p50 ${searchAt100k.worstP50Ms.toFixed(1)} ms, p99 ${searchAt100k.worstP99Ms!.toFixed(1)} ms)`}`,
  );
  console.log(
    `target ${concurrentAdds.target}: ${verdict(concurrentAdds.met)}${concurrentAdds.perAddUs === null ? "" : ` (${concurrentAdds.perAddUs.toPrecision(3)} µs)`}`,
  );
  console.log(
    "\ncold open: a new process opens the closed memory (its snapshot), searches once (which loads the keyword index from the words files) and 30 times more",
  );
  printTable(
    sizes.map(({ store: { cold } }) => ({
      records: n(cold.records),
      "open ms": cold.openMs,
      "first search ms": cold.firstSearchMs,
      "search p50 ms": cold.searchP50Ms,
      "search p99 ms": cold.searchP99Ms,
      "RSS before MB": cold.rssBeforeMb,
      "after open MB": cold.rssAfterOpenMb,
      "after searches MB": cold.rssAfterSearchesMb,
      "peak MB": cold.rssPeakMb,
      "MB per 100k": cold.rssPer100kMb,
      "store's estimate MB": cold.estimatedMb,
    })),
  );
  console.log(
    "RSS after a step is read after a forced garbage collection; the peak is sampled every 5 ms without one. MB per 100k = (after searches − before) scaled to 100,000 records; the target's figure is the growth from the second largest to the largest, which leaves out what every open pays once per process",
  );
  console.log(
    `\nquantized search (int8 scan, best ${RESCORE_FACTOR * 5} rescored in float32) against exact float32 top 5: recall@5 ${recall.recallAt5.toFixed(3)} on ${n(recall.records)} of the benchmark's vectors (${recall.approximateOnlyRecallAt5.toFixed(3)} without rescoring), ${recall.queries} queries`,
  );
  if ("skipped" in similar) console.log(`similar issues: skipped (${similar.skipped})`);
  else {
    const q = similar.quantized;
    console.log(
      `on ${similar.issues} real issues embedded by the local embedder: recall@5 ${q.recallAt5.toFixed(3)} (${q.approximateOnlyRecallAt5.toFixed(3)} without rescoring), ${q.queries} queries`,
    );
    const test = similar.splits.test;
    if (test)
      printTable(
        (["vector", "bm25", "hybrid"] as const).map((method) => ({
          "similar issues (test split)": method,
          "recall@1": test.recall[method].at1,
          "recall@3": test.recall[method].at3,
          "recall@10": test.recall[method].at10,
        })),
      );
  }
  const r = repositories;
  console.log(
    `\n${r.repositories} repositories of ${n(r.recordsEach)} records, each opened and searched ${r.passes} times round through the registry with a ${r.capMb} MB cap on open stores: peak RSS ${r.peakRssMb.toFixed(0)} MB (${r.baselineRssMb.toFixed(0)} MB before the first open, ${r.settledRssMb.toFixed(0)} MB settled at the end); open + search p50 ${r.openAndSearchP50Ms.toFixed(0)} ms, p99 ${r.openAndSearchP99Ms.toFixed(0)} ms`,
  );
  console.log(
    `\ntarget cold open at 100,000 ≤ ${targets.coldOpenAt100k.targetMs} ms: ${verdict(targets.coldOpenAt100k.met)}${targets.coldOpenAt100k.openMs === null ? "" : ` (${targets.coldOpenAt100k.openMs.toFixed(0)} ms)`}`,
  );
  console.log(
    `target RSS per 100,000 records ≤ ${targets.rssPer100k.targetMb} MB: ${verdict(targets.rssPer100k.met)}${rssDetail(targets.rssPer100k)}`,
  );
  console.log(
    `target top-5 search at 250,000 ≤ ${targets.searchAt250k.targetMs} ms p50: ${verdict(targets.searchAt250k.met)}${targets.searchAt250k.worstP50Ms === null ? "" : ` (slowest kind ${targets.searchAt250k.worstP50Ms.toFixed(1)} ms)`}`,
  );
  console.log(
    `target recall@5 ≥ ${targets.quantizedRecallAt5.target}: ${verdict(targets.quantizedRecallAt5.met)}`,
  );
  console.log(`target ${targets.repositories.target}: ${verdict(targets.repositories.met)}`);
  console.log(`\ntotal run time ${totalSeconds.toFixed(0)} s`);
}

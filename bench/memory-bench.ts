import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { LocalFileStorage, LocalIndex } from "vectra";
import { systemClock } from "../src/clock.js";
import type { Embedder } from "../src/memory/embedder.js";
import type { MemoryInput } from "../src/memory/memory-store.js";
import { VectraMemoryStore } from "../src/memory/vectra-memory-store.js";
import { createMetrics, type Metrics } from "../src/metrics/create-metrics.js";
import { printTable, summarize } from "./stats.js";

const DIMENSION = 1536;
const DEFAULT_SIZES = [1_000, 10_000, 100_000];
const BATCH_SIZE = 100;
// Large, so that every flush in the timed windows is one triggered by the batch size.
const FLUSH_MS = 3_600_000;
// The store's default segment size. From 2,000 records on, the timed window is a multiple of it
// that starts on a segment boundary: its flushes rewrite segments of every fill level, as in
// steady use.
const SEGMENT_SIZE = 1_000;
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
const TARGETS = { speedup: 100, flatRatio: 1.5, searchMs: 150, concurrentAddUs: 100 };

const WORDS = (
  "crash save editor file windows linux startup config token network timeout retry cache " +
  "widget export import settings theme dark login permission denied memory leak slow render " +
  "button layout update install plugin error warning stack trace null pointer upload download"
).split(" ");

/** A seeded 32-bit PRNG (mulberry32); the seed is a hash of the text, so vectors are per text. */
function createRandom(text: string): () => number {
  let seed = 2166136261;
  for (let i = 0; i < text.length; i++) seed = Math.imul(seed ^ text.charCodeAt(i), 16777619);
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomUnitVector(text: string): Float32Array {
  const random = createRandom(text);
  const vector = new Float32Array(DIMENSION);
  let norm = 0;
  for (let i = 0; i < DIMENSION; i++) {
    vector[i] = random() * 2 - 1;
    norm += vector[i]! * vector[i]!;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < DIMENSION; i++) vector[i]! *= scale;
  return vector;
}

/**
 * Deterministic pseudo-random unit vectors. Texts passed to `prepare` are embedded ahead of the
 * timed windows; any other text is generated on demand and counted, so a timed window can prove
 * it embedded nothing.
 */
function createBenchEmbedder() {
  const prepared = new Map<string, Float32Array>();
  const counts = { generated: 0 };
  const embedder: Embedder = {
    model: "bench-random",
    dimension: DIMENSION,
    relatedScore: 0.5,
    async embed(texts) {
      return texts.map((text) => {
        const vector = prepared.get(text);
        if (vector) return vector;
        counts.generated++;
        return randomUnitVector(text);
      });
    },
  };
  return {
    embedder,
    prepare: (texts: string[]) => {
      for (const text of texts) prepared.set(text, randomUnitVector(text));
    },
    forget: () => prepared.clear(),
    counts,
  };
}

type BenchEmbedder = ReturnType<typeof createBenchEmbedder>;

/** Fails a measurement whose timed part embedded a text: embedding time is not what is measured. */
async function timedWithoutEmbedding<T>(bench: BenchEmbedder, run: () => Promise<T>): Promise<T> {
  const before = bench.counts.generated;
  const result = await run();
  if (bench.counts.generated !== before)
    throw new Error("a timed section embedded a text that was not prepared");
  return result;
}

function memoryInput(i: number): MemoryInput {
  const random = createRandom(`words-${i}`);
  const words = Array.from({ length: 12 }, () => WORDS[Math.floor(random() * WORDS.length)]);
  return {
    id: `issue-${i}`,
    kind: "issue",
    text: `Issue ${i}: ${words.join(" ")}`,
    repo: "acme/widgets",
    number: i,
    author: "alice",
    url: `https://github.com/acme/widgets/issues/${i}`,
    createdAt: "2026-11-01T10:00:00.000Z",
    state: "open",
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

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

function openStore(directory: string, bench: BenchEmbedder, metrics: Metrics) {
  return VectraMemoryStore.open({
    directory,
    repo: "acme/widgets",
    embedder: bench.embedder,
    batchSize: BATCH_SIZE,
    flushMs: FLUSH_MS,
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics,
    segmentSize: SEGMENT_SIZE,
  });
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
async function measureStore(directory: string, records: number, bench: BenchEmbedder) {
  const metrics = createMetrics();
  const window = Math.min(STORE_WINDOW, records);
  const from = records - window;
  let store = await openStore(directory, bench, metrics);

  const prefillStart = performance.now();
  for (let i = 0; i < from; i += PREFILL_CHUNK)
    await store.addMany(range(i, Math.min(from, i + PREFILL_CHUNK)).map(memoryInput));
  await store.flush();
  const prefillSeconds = (performance.now() - prefillStart) / 1000;

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

  const long = await timeSearches(
    store,
    bench,
    range(0, SEARCHES).map((j) => `why does the editor crash when saving a large file, case ${j}`),
  );
  const short = await timeSearches(
    store,
    bench,
    range(0, SEARCHES).map(
      (j) => `${WORDS[j % WORDS.length]} ${WORDS[(j * 7 + 3) % WORDS.length]}`,
    ),
  );

  await store.close();
  const loadStart = performance.now();
  store = await openStore(directory, bench, createMetrics());
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
  };
}

/** A few hundred untimed adds and searches, so the first size is not measured on cold code. */
async function warmUp(directory: string, bench: BenchEmbedder) {
  const store = await openStore(directory, bench, createMetrics());
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
): Promise<SizeResult> {
  const directory = (name: string) => {
    const path = join(root, `${name}-${records}`);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const naiveArray = await measureNaiveArray(directory("naive-array"), records);
  const naiveVectra = await measureNaiveVectra(directory("naive-vectra"), records);
  const store = await measureStore(directory("store"), records, bench);
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
function evaluateTargets(sizes: SizeResult[]) {
  const at = (records: number) => sizes.find((s) => s.records === records);
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

export async function runMemoryBench({
  json,
  sizes = DEFAULT_SIZES,
}: {
  json: boolean;
  sizes?: number[];
}) {
  const started = performance.now();
  // Other processes share this machine: the load says how much they took from the figures.
  const loadAtStart = loadavg()[0]!;
  const root = mkdtempSync(join(tmpdir(), "talos-memory-bench-"));
  const bench = createBenchEmbedder();
  const results: SizeResult[] = [];
  try {
    await warmUp(join(root, "warm-up"), bench);
    for (const records of sizes) results.push(await measureSize(root, records, bench));
  } finally {
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
    },
    machine: { cores: cpus().length, loadAverage1m: { start: loadAtStart, end: loadavg()[0]! } },
    sizes: results,
    targets: evaluateTargets(results),
    totalSeconds: (performance.now() - started) / 1000,
  };
  if (!json) printReport(result);
  return result;
}

const n = (value: number) => value.toLocaleString("en-US");
const times = (value: number | null) => (value === null ? "n/a" : `${value.toFixed(0)}×`);
const verdict = (met: boolean | null) =>
  met === null ? "not measured in this run" : met ? "met" : "NOT met";

function printReport({
  machine,
  sizes,
  targets,
  totalSeconds,
}: {
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
    `target ${concurrentAdds.target}: ${verdict(concurrentAdds.met)}${concurrentAdds.perAddUs === null ? "" : ` (${concurrentAdds.perAddUs.toFixed(0)} µs)`}`,
  );
  console.log(`\ntotal run time ${totalSeconds.toFixed(0)} s`);
}

// Run by memory-bench.ts in a process of its own (`node --expose-gc --import tsx`), so that the
// RSS it reports is what the memory takes, not the parent's leftovers. Prints one JSON line.
import { pino } from "pino";
import { systemClock } from "../src/clock.js";
import { MemoryRegistry } from "../src/memory/memory-registry.js";
import { createMetrics } from "../src/metrics/create-metrics.js";
import {
  BATCH_SIZE,
  createBenchEmbedder,
  FLUSH_MS,
  longQuery,
  openBenchStore,
  range,
  shortQuery,
  startServerThreads,
  stopServerThreads,
  timedWithoutEmbedding,
} from "./memory-data.js";
import { summarize } from "./stats.js";

export type ChildTask =
  | { kind: "open"; directory: string; searches: number }
  | {
      kind: "repositories";
      directory: string;
      repositories: number;
      passes: number;
      maxOpenBytes: number;
    };

const MB = 2 ** 20;
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const rss = () => process.memoryUsage().rss;
/**
 * RSS once the garbage a step left is collected: what stays. A collection only finds dead
 * ArrayBuffers; V8 frees their memory on a background sweeper afterwards, so RSS read at once
 * still holds them (a search's dead keyword-index arrays put ~15 MB per 100,000 records on the
 * figure). A second collection waits for that sweep.
 */
const settledRss = () => {
  gc();
  gc();
  return rss();
};

/** A cold open of one memory: open, first search (it loads the keyword index), then searches. */
async function coldOpen(task: Extract<ChildTask, { kind: "open" }>) {
  const bench = createBenchEmbedder();
  const queries = range(0, task.searches).map((j) => (j % 2 ? shortQuery(j) : longQuery(j)));
  bench.prepare(queries);
  const before = settledRss();
  let peak = before;
  const sample = () => (peak = Math.max(peak, rss()));
  const timer = setInterval(sample, 5);
  return timedWithoutEmbedding(bench, async () => {
    const openStart = performance.now();
    const store = await openBenchStore(task.directory, bench, createMetrics(), threads);
    const openMs = performance.now() - openStart;
    const afterOpen = settledRss();
    const firstStart = performance.now();
    await store.search(queries[0]!, { k: 5 });
    const firstSearchMs = performance.now() - firstStart;
    const samples: number[] = [];
    for (const query of queries.slice(1)) {
      const start = performance.now();
      await store.search(query, { k: 5 });
      samples.push(performance.now() - start);
    }
    clearInterval(timer);
    sample();
    const afterSearches = settledRss();
    const { records, bytesInRam } = await store.stats();
    await store.close();
    const { p50, p99 } = summarize(samples);
    return {
      records,
      openMs,
      firstSearchMs,
      searchP50Ms: p50,
      searchP99Ms: p99,
      rssBeforeMb: before / MB,
      rssAfterOpenMb: afterOpen / MB,
      rssAfterSearchesMb: afterSearches / MB,
      rssPeakMb: peak / MB,
      /** What the open memory adds to the process, per 100,000 records, once settled. */
      rssPer100kMb: ((afterSearches - before) / MB) * (100_000 / records),
      estimatedMb: bytesInRam / MB,
    };
  });
}

/**
 * Many memories through the registry's LRU of open stores, bounded by `maxOpenBytes`: each
 * repository in turn is opened (or found open) and searched, `passes` times round. RSS is
 * sampled every 5 ms and after every search.
 */
async function repositories(task: Extract<ChildTask, { kind: "repositories" }>) {
  const bench = createBenchEmbedder();
  const queries = range(0, task.repositories * task.passes).map(longQuery);
  bench.prepare(queries);
  const registry = new MemoryRegistry({
    directory: task.directory,
    embedder: bench.embedder,
    batchSize: BATCH_SIZE,
    flushMs: FLUSH_MS,
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    maxOpenBytes: task.maxOpenBytes,
    ...threads,
  });
  const baseline = settledRss();
  let peak = baseline;
  const sample = () => (peak = Math.max(peak, rss()));
  const timer = setInterval(sample, 5);
  const samples: number[] = [];
  const started = performance.now();
  let searches = 0;
  for (let pass = 0; pass < task.passes; pass++) {
    for (let r = 1; r <= task.repositories; r++) {
      const start = performance.now();
      const memory = await registry.open({
        installation: 1,
        repository: r,
        name: `acme/repo-${r}`,
      });
      await memory.search(queries[searches++]!, { k: 5 });
      samples.push(performance.now() - start);
      sample();
    }
  }
  clearInterval(timer);
  const seconds = (performance.now() - started) / 1000;
  const settled = settledRss();
  await registry.closeAll();
  const { p50, p99 } = summarize(samples);
  return {
    repositories: task.repositories,
    passes: task.passes,
    capMb: task.maxOpenBytes / MB,
    baselineRssMb: baseline / MB,
    peakRssMb: peak / MB,
    settledRssMb: settled / MB,
    openAndSearchP50Ms: p50,
    openAndSearchP99Ms: p99,
    seconds,
  };
}

const task = JSON.parse(process.argv[2]!) as ChildTask;
// As the server runs: with its threads, where there is a second core.
const threads = startServerThreads();
const result = task.kind === "open" ? await coldOpen(task) : await repositories(task);
await stopServerThreads(threads);
console.log(JSON.stringify(result));

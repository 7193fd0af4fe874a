import { availableParallelism } from "node:os";
import { pino } from "pino";
import { systemClock } from "../src/clock.js";
import type { Embedder } from "../src/memory/embedder.js";
import type { MemoryInput } from "../src/memory/memory-store.js";
import { ScanHelper } from "../src/memory/scan-helper.js";
import { WordsWorker } from "../src/memory/words-counter.js";
import { VectraMemoryStore } from "../src/memory/vectra-memory-store.js";
import type { Metrics } from "../src/metrics/create-metrics.js";

// The memory benchmark's data, shared by its parent and its child processes.
export const DIMENSION = 1536;
export const BATCH_SIZE = 100;
// Large, so that every flush in the timed windows is one triggered by the batch size.
export const FLUSH_MS = 3_600_000;
// The store's default segment size. From 2,000 records on, the timed window is a multiple of it
// that starts on a segment boundary: its flushes rewrite segments of every fill level, as in
// steady use.
export const SEGMENT_SIZE = 1_000;

export const WORDS = (
  "crash save editor file windows linux startup config token network timeout retry cache " +
  "widget export import settings theme dark login permission denied memory leak slow render " +
  "button layout update install plugin error warning stack trace null pointer upload download"
).split(" ");

/** A seeded 32-bit PRNG (mulberry32); the seed is a hash of the text, so vectors are per text. */
export function createRandom(text: string): () => number {
  let seed = 2166136261;
  for (let i = 0; i < text.length; i++) seed = Math.imul(seed ^ text.charCodeAt(i), 16777619);
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomUnitVector(text: string): Float32Array {
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
export function createBenchEmbedder() {
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

export type BenchEmbedder = ReturnType<typeof createBenchEmbedder>;

/** Fails a measurement whose timed part embedded a text: embedding time is not what is measured. */
export async function timedWithoutEmbedding<T>(
  bench: BenchEmbedder,
  run: () => Promise<T>,
): Promise<T> {
  const before = bench.counts.generated;
  const result = await run();
  if (bench.counts.generated !== before)
    throw new Error("a timed section embedded a text that was not prepared");
  return result;
}

export function memoryInput(i: number): MemoryInput {
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

/** The threads the server gives its stores, where the machine has a second core. */
export interface ServerThreads {
  scanHelper?: ScanHelper;
  wordsCounter?: WordsWorker;
}

export function startServerThreads(): ServerThreads {
  if (availableParallelism() < 2) return {};
  return { scanHelper: new ScanHelper(), wordsCounter: new WordsWorker() };
}

export async function stopServerThreads({ scanHelper, wordsCounter }: ServerThreads) {
  await scanHelper?.close();
  await wordsCounter?.close();
}

/** A store as the server opens one: with its threads (see `startServerThreads`). */
export function openBenchStore(
  directory: string,
  bench: BenchEmbedder,
  metrics: Metrics,
  { scanHelper, wordsCounter }: ServerThreads = {},
) {
  return VectraMemoryStore.open({
    scanHelper,
    wordsCounter,
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

export const range = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => from + i);

/** A 12-word question about the benchmark's vocabulary. */
export const longQuery = (j: number) =>
  `why does the editor crash when saving a large file, case ${j}`;

/** Two words of the benchmark's vocabulary. */
export const shortQuery = (j: number) =>
  `${WORDS[j % WORDS.length]} ${WORDS[(j * 7 + 3) % WORDS.length]}`;

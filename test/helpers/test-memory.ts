import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Database } from "../../src/database/database.js";
import { PostgresMemory } from "../../src/database/postgres-memory.js";
import { LOCK_NAME } from "../../src/memory/directory-lock.js";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { MemoryRegistry } from "../../src/memory/memory-registry.js";
import {
  VectraMemoryStore,
  type VectraMemoryStoreOptions,
} from "../../src/memory/vectra-memory-store.js";
import type { MemoryInput, MemoryStore } from "../../src/memory/memory-store.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { systemClock } from "../../src/clock.js";
import {
  encodeSegmentWords,
  hashText,
  SegmentWordsBuilder,
  wordsFile,
} from "../../src/memory/segment-words.js";
import { makeDataDir } from "./test-app.js";
import { TEST_DATABASE_URL } from "./shared-services.js";

/** An embedder that waits, while a text holds `hold`, until `release()`: a call kept in use. */
export function holdingEmbedder(hold: string) {
  const inner = createLocalEmbedder();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const holding = new Promise<void>((resolve) => (entered = resolve));
  const embedder: Embedder = {
    ...inner,
    async embed(texts) {
      if (texts.some((t) => t.includes(hold))) {
        entered();
        await released;
      }
      return inner.embed(texts);
    },
  };
  return { embedder, holding, release };
}

/**
 * The local embedder, except that a text holding "overflow" comes back with a value past
 * float32's range: what an OpenAI-compatible server (TALOS_EMBEDDING_BASE_URL) answering `1e39`
 * gives once `Float32Array.from` has made it Infinity. The dimension is right.
 */
export function overflowingEmbedder(): Embedder {
  const inner = createLocalEmbedder();
  return {
    ...inner,
    async embed(texts) {
      const vectors = await inner.embed(texts);
      return vectors.map((vector, i) => {
        if (!texts[i]!.includes("overflow")) return vector;
        const bad = Float32Array.from(vector);
        bad[0] = Number.POSITIVE_INFINITY;
        return bad;
      });
    },
  };
}

/** Ten short issue titles, distinct enough for the local embedder. */
export const ISSUE_TEXTS = [
  "App crashes when saving a widget on Windows",
  "Dark mode colours are wrong in the settings page",
  "Saving a widget fails with permission denied",
  "Add support for exporting widgets to CSV",
  "Crash on startup after updating to 2.0",
  "Login token expires after one minute",
  "Upload of large files times out",
  "Plugin install fails behind a proxy",
  "Memory leak when the editor stays open overnight",
  "Export to PDF loses the page margins",
];

/** An embedder that counts the texts it embeds (the local hashing one underneath). */
export function countingEmbedder(inner: Embedder = createLocalEmbedder()) {
  const texts: string[] = [];
  const embedder: Embedder = {
    model: inner.model,
    dimension: inner.dimension,
    relatedScore: inner.relatedScore,
    async embed(batch) {
      texts.push(...batch);
      return inner.embed(batch);
    },
  };
  return { embedder, texts };
}

export function openTestStore(directory: string, options: Partial<VectraMemoryStoreOptions> = {}) {
  return VectraMemoryStore.open({
    directory,
    repo: "acme/widgets",
    embedder: createLocalEmbedder(),
    batchSize: 50,
    flushMs: 60_000,
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    ...options,
  });
}

export function issueMemory(
  number: number,
  text: string,
  changes: Partial<MemoryInput> = {},
): MemoryInput {
  return {
    id: `issue-${number}`,
    kind: "issue",
    text,
    repo: "acme/widgets",
    number,
    author: "alice",
    url: `https://github.com/acme/widgets/issues/${number}`,
    createdAt: "2026-11-01T10:00:00Z",
    state: "open",
    ...changes,
  };
}

/** A registry of memories under `directory` (a data dir's `memory/`), quiet and unhurried. */
export function createTestRegistry(
  directory: string,
  {
    embedder = createLocalEmbedder(),
    batchSize = 50,
  }: { embedder?: Embedder; batchSize?: number } = {},
) {
  return new MemoryRegistry({
    directory,
    embedder,
    batchSize,
    flushMs: 60_000,
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
  });
}

/**
 * The memory in the machine's PostgreSQL on `schema`, as an instance opens it (local embedder),
 * with what closes it and its database.
 */
export async function openPostgresMemory(schema: string) {
  const log = pino({ level: "silent" });
  const database = await Database.open({ url: TEST_DATABASE_URL, schema, log });
  const memory = await PostgresMemory.open({
    database,
    schema,
    embedder: createLocalEmbedder(),
    log,
    metrics: createMetrics(),
    maxOpenBytes: 2 ** 24,
  });
  return {
    memory,
    close: async () => {
      await memory.closeAll();
      await database.close();
    },
  };
}

/**
 * 30 memories close to `query` by meaning with none of its words, and 120 with its words and a
 * vector far from it, with the table embedder that gives them those vectors: keyword-only hits
 * below a `minScore` of 0.5 that outrank, in the fusion, the 30 that reach it. The two groups
 * are not orthogonal (cosines ~0.96 and ~0.29 to the query): orthogonal, every one of the 120
 * was exactly as far from the query, and in about 1 pgvector HNSW graph in 10 (its levels are
 * random) a search entering among them never left them, so the SQL path found none of the 30.
 */
export function keywordCrowdedMemories() {
  const query = "widget export fails with a timeout error";
  const table = new Map<string, number[]>([[query, [1, 0, 0, 0]]]);
  const inputs: MemoryInput[] = [];
  for (let i = 1; i <= 30; i++) {
    const text = `meaning ${i} alpha beta gamma`;
    table.set(text, [1, 0.01 * i, 0.3, 0]);
    inputs.push(issueMemory(i, text));
  }
  for (let i = 101; i <= 220; i++) {
    const text = `widget export fails with timeout error number ${i}`;
    table.set(text, [0.3, 0, 1, 0.01 * i]);
    inputs.push(issueMemory(i, text));
  }
  const embedder: Embedder = {
    model: "table",
    dimension: 4,
    relatedScore: 0.5,
    embed: async (texts) => texts.map((text) => Float32Array.from(table.get(text) ?? [0, 1, 0, 0])),
  };
  return { query, inputs, embedder };
}

/** What a thread said, by `said`: an answer, note or comment in thread `number`. */
export const said = (
  id: string,
  kind: "answer" | "note" | "comment",
  number: number,
  text: string,
) => issueMemory(number, text, { id, kind, state: undefined });

/** A later version of a record's source. */
export const LATE = { metadata: { updatedAt: "2030-01-01T00:00:00.000Z" } };

/**
 * Thread 7 (an issue that leaked a key, answers, a comment and a note) and thread 8, for
 * `forgetThread(7)`; returns the ids that stay once 7 is forgotten and `writeLateToThread7`
 * has run.
 */
export async function seedThreadToForget(store: Pick<MemoryStore, "addMany">) {
  await store.addMany([
    issueMemory(7, "The deploy key leaked in the logs"),
    said("answer-70", "answer", 7, "The key in the logs is sk-live-1234"),
    said("summary-7", "answer", 7, "Summary of #7: the key sk-live-1234 leaked"),
    said("comment-73", "comment", 7, "Here is the key again: sk-live-1234"),
    said("note-71", "note", 7, "Rotate deploy keys every month"),
    said("answer-80", "answer", 8, "Widgets export to CSV from the menu"),
    issueMemory(8, "Export to CSV"),
  ]);
  return ["answer-80", "issue-8", "note-71", "note-72"];
}

/**
 * Late writes of forgotten thread 7: an edit delivered after the deletion, an answer that was
 * being written, a backfill page read before. Only the maintainer's note may get in.
 */
export async function writeLateToThread7(store: Pick<MemoryStore, "add" | "addMany">) {
  await store.addMany([
    issueMemory(7, "The deploy key leaked in the logs (edited)", LATE),
    said("answer-74", "answer", 7, "The key sk-live-1234 was rotated"),
    said("note-72", "note", 7, "Keys live in the vault now"),
  ]);
  await store.add(issueMemory(7, "The deploy key leaked", LATE));
}

/**
 * Locks a memory directory as a running server holds it: the owner is the test runner's parent,
 * a live process of this host that is not us. Returns the CLI's message for it.
 */
export function lockAsRunningServer(directory: string): string {
  const lock = join(directory, LOCK_NAME);
  mkdirSync(lock);
  writeFileSync(
    join(lock, "owner.json"),
    JSON.stringify({ pid: process.ppid, host: hostname(), since: new Date().toISOString() }),
  );
  return `${directory} is in use by process ${process.ppid}; stop it first (or remove ${lock} if it is gone)`;
}

/**
 * A store of `texts` (four, one segment of `segmentSize`) whose words file is replaced by one an
 * older Talos wrote: format `version`, the first record counted as `firstWords` under its text's
 * hash. Returns that older file, the current one it replaced, and a store opened on it, whose
 * warnings are collected in `logged`.
 */
export async function openWithOlderWordsFile(options: {
  texts: string[];
  segmentSize: number;
  version: number;
  firstWords: string;
}) {
  const { texts, segmentSize } = options;
  const directory = makeDataDir();
  const seeding = await openTestStore(directory, { segmentSize });
  await seeding.addMany(texts.map((text, i) => issueMemory(i + 1, text)));
  await seeding.close();
  const file = join(directory, wordsFile(1));
  const current = readFileSync(file);
  const builder = new SegmentWordsBuilder(segmentSize);
  builder.add(0, options.firstWords, hashText(texts[0]!));
  texts.slice(1, 4).forEach((text, i) => builder.add(i + 1, text));
  const old = encodeSegmentWords(builder.finish());
  // "TWD" and the version's digit.
  old.writeUInt32LE(0x445754 | ((0x30 + options.version) << 24), 0);
  writeFileSync(file, old);
  const logged: string[] = [];
  const log = pino(
    { level: "warn" },
    { write: (line: string) => logged.push(JSON.parse(line).msg as string) },
  );
  const store = await openTestStore(directory, { segmentSize, log });
  return { file, old, current, store, logged };
}

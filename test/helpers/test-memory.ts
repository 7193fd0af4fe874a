import { pino } from "pino";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { MemoryRegistry } from "../../src/memory/memory-registry.js";
import {
  VectraMemoryStore,
  type VectraMemoryStoreOptions,
} from "../../src/memory/vectra-memory-store.js";
import type { MemoryInput } from "../../src/memory/memory-store.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { systemClock } from "../../src/clock.js";

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

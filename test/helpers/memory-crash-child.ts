// A process that adds memories as fast as it can and prints `ack <id>` once each add resolved,
// until it is killed. Used by the crash test: tsx memory-crash-child.ts <directory> <prefix>
import { pino } from "pino";
import { systemClock } from "../../src/clock.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { VectraMemoryStore } from "../../src/memory/vectra-memory-store.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";

const [directory, prefix] = process.argv.slice(2);
if (!directory || !prefix) throw new Error("usage: memory-crash-child.ts <directory> <prefix>");

const store = await VectraMemoryStore.open({
  directory,
  repo: "acme/widgets",
  embedder: createLocalEmbedder(),
  // Small batches and segments: flushes, log rotations and index rewrites happen all the time.
  batchSize: 5,
  flushMs: 3,
  segmentSize: 15,
  clock: systemClock,
  log: pino({ level: "silent" }),
  metrics: createMetrics(),
});
process.stdout.write("ready\n");

for (let i = 0; ; i += 3) {
  // Three at a time, so that group commit and concurrent adds are part of what gets killed.
  await Promise.all(
    [i, i + 1, i + 2].map(async (n) => {
      const id = `note-${prefix}-${n}`;
      await store.add({
        id,
        kind: "note",
        text: `note ${n} of ${prefix}`,
        repo: "acme/widgets",
        createdAt: "2026-11-24T00:00:00Z",
      });
      // stdout to a pipe is synchronous on Linux: the parent has the line before we go on.
      process.stdout.write(`ack ${id}\n`);
    }),
  );
}

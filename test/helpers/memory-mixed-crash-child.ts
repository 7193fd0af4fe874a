// A writer for test/memory/memory-mixed-crash.test.ts: three workers, each on numbers of its
// own, edit issues (rising versions), remove them, forget their threads and write notes, until
// the process is killed. Prints `start <op>` before each operation and `ack <op>` once it is
// acknowledged. tsx memory-mixed-crash-child.ts <directory> <round> <seed>
import { pino } from "pino";
import { systemClock } from "../../src/clock.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { VectraMemoryStore } from "../../src/memory/vectra-memory-store.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { seededRandom } from "./seeded-random.js";

const [directory, round, seed] = process.argv.slice(2);
const random = seededRandom(Number(seed));
const store = await VectraMemoryStore.open({
  directory: directory!,
  repo: "acme/widgets",
  embedder: createLocalEmbedder(),
  // Small batches, segments and flush intervals: every path a crash can cut runs often.
  batchSize: 4,
  flushMs: 2,
  segmentSize: 8,
  clock: systemClock,
  log: pino({ level: "silent" }),
  metrics: createMetrics(),
});
const say = (line: string) => process.stdout.write(`${line}\n`);
say("ready");

// Versions rise across rounds, so that a later edit is always the newer one.
let version = Number(round) * 1_000_000;
await Promise.all(
  [0, 1, 2].map(async (worker) => {
    for (;;) {
      const number = 1 + worker + 3 * Math.floor(random() * 20);
      const id = `issue-${number}`;
      const roll = random();
      const op =
        roll < 0.6
          ? { op: "put", id, number, v: ++version }
          : roll < 0.9
            ? { op: "del", id, number, v: ++version }
            : roll < 0.93
              ? { op: "forget", id, number, v: ++version }
              : { op: "note", id: `note-${number}`, number, v: ++version };
      say(`start ${JSON.stringify(op)}`);
      if (op.op === "put") {
        await store.add({
          id,
          kind: "issue",
          text: `issue ${number} version ${op.v} ${"words ".repeat(Math.floor(random() * 40))}`,
          repo: "acme/widgets",
          number,
          createdAt: "2026-11-24T00:00:00Z",
          state: "open",
          metadata: { updatedAt: new Date(Date.UTC(2026, 0, 1) + op.v * 1000).toISOString() },
        });
      } else if (op.op === "del") await store.remove(id);
      else if (op.op === "forget") await store.forgetThread(number);
      else {
        await store.add({
          id: op.id,
          kind: "note",
          text: `note of ${number} version ${op.v}`,
          repo: "acme/widgets",
          number,
          createdAt: "2026-11-24T00:00:00Z",
        });
      }
      say(`ack ${JSON.stringify(op)}`);
    }
  }),
);

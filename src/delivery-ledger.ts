import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "./clock.js";
import { writeFileAtomically } from "./write-file-atomically.js";

/**
 * Remembers which webhook deliveries (`X-GitHub-Delivery`) were processed, so that a redelivery,
 * or a delivery that arrives again after a restart, is skipped.
 */
export interface DeliveryLedger {
  /** Claims a delivery for processing; false when it was processed before or is in progress. */
  claim(id: string): boolean;
  /** Records a claimed delivery as processed. Resolves once the record is durable. */
  complete(id: string): Promise<void>;
  /** Gives a claim back after a failure, so that a redelivery runs the handlers again. */
  release(id: string): void;
  close(): Promise<void>;
}

export interface LedgerOptions {
  file: string;
  retentionMs: number;
  maxEntries: number;
  clock: Clock;
  log: Logger;
}

// Delivery ids are GUIDs; anything else is not written, so a line can never be forged.
const DELIVERY_ID = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * A ledger kept as an append-only file of `<delivery id>\t<processed at ms>` lines. Each completed
 * delivery costs one appended line and one fdatasync; the file is rewritten (atomically) only
 * when it has grown to twice the retained entries, so retention stays bounded.
 */
export async function openDeliveryLedger(options: LedgerOptions): Promise<DeliveryLedger> {
  const { file, clock, log } = options;
  await mkdir(dirname(file), { recursive: true });
  const done = await readLedger(file, log);
  const inFlight = new Set<string>();
  let linesInFile = done.size;

  const prune = () => {
    const oldest = clock.now() - options.retentionMs;
    // Maps iterate in insertion order, which is completion order: the first entries are the oldest.
    for (const [id, at] of done) {
      if (at >= oldest && done.size <= options.maxEntries) break;
      done.delete(id);
    }
  };
  const rewrite = async () => {
    prune();
    await writeFileAtomically(file, [...done].map(([id, at]) => `${id}\t${at}\n`).join(""));
    linesInFile = done.size;
  };

  await rewrite();
  let handle: FileHandle = await open(file, "a");
  // Appends and rewrites are chained so that a rewrite never loses a concurrent append.
  let queue: Promise<unknown> = Promise.resolve();
  let closed: Promise<void> | undefined;
  const enqueue = <T>(task: () => Promise<T>): Promise<T> => {
    const next = queue.then(task);
    queue = next.catch(() => undefined);
    return next;
  };

  return {
    claim(id) {
      if (done.has(id) || inFlight.has(id)) return false;
      inFlight.add(id);
      return true;
    },
    complete(id) {
      inFlight.delete(id);
      if (!DELIVERY_ID.test(id)) {
        log.warn(
          { delivery: id.slice(0, 100) },
          "delivery id has an unexpected shape; not recorded",
        );
        return Promise.resolve();
      }
      done.set(id, clock.now());
      return enqueue(async () => {
        await handle.appendFile(`${id}\t${done.get(id) ?? clock.now()}\n`);
        await handle.datasync();
        linesInFile++;
        if (linesInFile >= 2 * options.maxEntries) {
          await handle.close();
          await rewrite();
          handle = await open(file, "a");
        }
      });
    },
    release(id) {
      inFlight.delete(id);
    },
    close() {
      closed ??= enqueue(() => handle.close());
      return closed;
    },
  };
}

/** A ledger that lives only as long as the process, for one-off runs such as `talos replay`. */
export function createMemoryLedger(): DeliveryLedger {
  const done = new Set<string>();
  const inFlight = new Set<string>();
  return {
    claim: (id) => !done.has(id) && !inFlight.has(id) && Boolean(inFlight.add(id)),
    complete: async (id) => {
      inFlight.delete(id);
      done.add(id);
    },
    release: (id) => void inFlight.delete(id),
    close: async () => undefined,
  };
}

async function readLedger(file: string, log: Logger): Promise<Map<string, number>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw new Error(`Cannot read the delivery ledger ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const done = new Map<string, number>();
  const lines = text.split("\n");
  // The element after the last newline is empty, unless a crash in the middle of an append
  // left a partly written line there: either way it is dropped.
  const complete = lines.slice(0, -1);
  if (lines.at(-1)) {
    log.warn(
      { file },
      "delivery ledger ends in a partly written line (a crash during an append); ignoring it",
    );
  }
  complete.forEach((line, index) => {
    const [id, at] = line.split("\t");
    const when = Number(at);
    if (!id || !DELIVERY_ID.test(id) || !Number.isFinite(when)) {
      log.warn({ file, line: index + 1 }, "delivery ledger has a malformed line; skipping it");
      return;
    }
    done.delete(id);
    done.set(id, when);
  });
  return done;
}

import type { Worker } from "node:worker_threads";
import { besideModule, startWorker } from "../start-worker.js";
import { encodeSegmentWords, SegmentWordsBuilder } from "./segment-words.js";

/** A segment's texts to count, by position. */
export type SegmentTexts = ReadonlyArray<readonly [position: number, text: string]>;

/** Counts a full segment's words into the bytes of its words file (see segment-words.ts). */
export interface WordsCounter {
  count(segmentSize: number, texts: SegmentTexts): Promise<Uint8Array>;
}

// About 3 ms of counting on this project's VM between two turns of the event loop.
const TEXTS_PER_TURN = 100;
// A worker nobody asked anything of for this long is stopped: a store counts a segment once
// per thousand records added, and a server that adds none needs no thread for it. Minutes, not
// seconds: a new worker compiles its code again, and at 250,000 records the thousand adds that
// followed a restart of it took 227 µs each rather than 127, with 64 adders in flight.
const IDLE_MS = 300_000;

/** The words file of `texts`, counted in one go (the worker's way). */
export function countSegmentWords(segmentSize: number, texts: SegmentTexts): Uint8Array {
  const builder = new SegmentWordsBuilder(segmentSize);
  for (const [position, text] of texts) builder.add(position, text);
  return encodeSegmentWords(builder.finish());
}

/** Counts on the caller's thread, a hundred texts a turn. */
export const countWordsHere: WordsCounter = {
  async count(segmentSize, texts) {
    const builder = new SegmentWordsBuilder(segmentSize);
    let counted = 0;
    for (const [position, text] of texts) {
      builder.add(position, text);
      if (++counted % TEXTS_PER_TURN === 0) await new Promise(setImmediate);
    }
    return encodeSegmentWords(builder.finish());
  },
};

interface Reply {
  id: number;
  bytes?: Uint8Array;
  error?: string;
}

/**
 * Counts on a worker thread (`words-worker`), so that a backfill's or a busy repository's
 * segments are counted beside its adds rather than between them: on a 2-core machine a
 * single add at 250,000 records took 1,679 µs rather than 942 while the caller's thread counted
 * the segments a prefill filled. Started on first use, stopped when idle; if it fails, this and later counts run on
 * the caller's thread.
 */
export class WordsWorker implements WordsCounter {
  readonly #script: URL;
  #worker: Worker | undefined;
  #next = 0;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  #idle: NodeJS.Timeout | undefined;
  #broken: string | undefined;

  /** `script` replaces the worker's file: tests give one that fails. */
  constructor(script = besideModule(import.meta.url, "words-worker")) {
    this.#script = script;
  }

  /** Why counts run on the caller's thread, or undefined while the worker counts them. */
  get broken(): string | undefined {
    return this.#broken;
  }

  async count(segmentSize: number, texts: SegmentTexts): Promise<Uint8Array> {
    if (this.#broken) return countWordsHere.count(segmentSize, texts);
    const worker = this.#start();
    clearTimeout(this.#idle);
    const id = ++this.#next;
    const reply = await new Promise<Reply>((resolve) => {
      this.#pending.set(id, resolve);
      worker.postMessage({ id, segmentSize, texts });
    });
    if (this.#pending.size === 0) this.#idleSoon();
    if (reply.bytes) return reply.bytes;
    if (reply.error !== undefined) throw new Error(`counting words failed: ${reply.error}`);
    return countWordsHere.count(segmentSize, texts);
  }

  async close(): Promise<void> {
    clearTimeout(this.#idle);
    this.#fail("closed");
    await this.#worker?.terminate();
    this.#worker = undefined;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = startWorker(this.#script);
    // It never keeps the process alive.
    worker.unref();
    worker.on("message", (reply: Reply) => {
      const resolve = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      resolve?.(reply);
    });
    // A worker stopped when idle is no longer `#worker`: its exit says nothing of the counts
    // a newer one has in hand.
    worker.on("error", (error) => {
      if (this.#worker === worker) this.#fail(error.message);
    });
    worker.on("exit", (code) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      if (this.#pending.size > 0) this.#fail(`exited with code ${code}`);
    });
    this.#worker = worker;
    return worker;
  }

  #idleSoon(): void {
    this.#idle = setTimeout(() => {
      const worker = this.#worker;
      this.#worker = undefined;
      void worker?.terminate();
    }, IDLE_MS);
    this.#idle.unref();
  }

  /** Answers every count waiting, with no bytes: each then counts on the caller's thread. */
  #fail(reason: string): void {
    this.#broken ??= reason;
    for (const [id, resolve] of this.#pending) resolve({ id });
    this.#pending.clear();
  }
}

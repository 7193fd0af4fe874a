import { Worker } from "node:worker_threads";
import { crc32 } from "node:zlib";
import { DOT_KERNEL_WASM } from "./dot-kernel.js";

/**
 * Codes to read from the start of a file into shared memory (`into`, `offset`, `length`), zero
 * past the file's end, `chunk` bytes (whole blocks) at a time, with the crc32 of each `block`
 * bytes. The chunks are claimed from `claims` (see `claimsFor`), so that the caller reads them
 * too, beside the helper.
 */
export interface LoadJob {
  into: SharedArrayBuffer;
  offset: number;
  length: number;
  file: string;
  block: number;
  chunk: number;
  claims: SharedArrayBuffer;
}

/**
 * The shared words a load's readers claim its chunks from: the next chunk's number, then each
 * block's crc32 as the reader that read it took it (see `readClaimed`).
 */
export const claimsFor = (blocks: number) => new SharedArrayBuffer(4 * (1 + blocks));

/**
 * Reads chunks of a load into `into` until none is left to claim; the helper's thread runs the
 * same loop in its worker source. `read` reads at a file offset as FileHandle.read does.
 */
export async function readClaimed(
  job: Omit<LoadJob, "into" | "offset" | "file">,
  into: Uint8Array,
  read: (into: Uint8Array, at: number, length: number) => Promise<{ bytesRead: number }>,
): Promise<void> {
  const { length, chunk, block, claims } = job;
  const next = new Int32Array(claims, 0, 1);
  const crcs = new Uint32Array(claims, 4);
  for (let at; (at = Atomics.add(next, 0, 1) * chunk) < length;) {
    const size = Math.min(chunk, length - at);
    const { bytesRead } = await read(into, at, size);
    // The file ends at the last slot written: the rest of the last segment reads as zeros.
    into.fill(0, at + bytesRead, at + size);
    for (let start = at; start < at + size; start += block)
      crcs[start / block] = crc32(into.subarray(start, Math.min(start + block, at + size)));
  }
}

/** What the helper needs to scan rows: the kernel's arguments, as byte offsets. */
export interface ScanJob {
  memory: WebAssembly.Memory;
  query: number;
  rows: number;
  count: number;
  stride: number;
  out: number;
}

// A helper that has not answered in this long is stuck (a half-scan of 125,000 rows takes
// ~30 ms): it is stopped, and the caller scans those rows itself, as it does from then on.
const DEFAULT_DEADLINE_MS = 2_000;

// The worker instantiates the kernel on the shared memory it is sent and scans the rows it is
// given, then publishes the job's number and wakes the caller. It imports nothing but Node's
// own modules, so it runs from sources and from dist alike, without a file of its own.
//
// A store's shared memory is freed only once every thread that saw it has collected its
// handle, and this thread allocates too little to collect on its own: 40 stores of 20,000
// records opened and closed in turn kept 2.1 GB of RSS. So it collects, fully (a millisecond or
// two for its small heap, off the caller's path), once scans have paused for COLLECT_AFTER_MS,
// and as soon as a memory it saw is let go of (`release`, when a store closes): stores opened
// one after another, with no such pause between them, kept 1.1 GB where the cap was 512 MB.
// V8's gc() is not exposed by default: the worker sets --expose-gc (V8's flags are per process,
// but only contexts made after get gc(), as the one it takes it from) and counts collections
// in the control array's second word.
const COLLECT_AFTER_MS = 100;
//
// It also reads a store's codes at open (`load`), so that faulting in their pages, which is
// most of that read, and checking them run beside the caller's load of the rows; the caller
// claims chunks of them too (see readClaimed, whose loop this is). Its reads are asynchronous,
// a chunk at a time: a scan sent meanwhile waits for one chunk, not the whole file.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { open } = require("node:fs/promises");
const { crc32 } = require("node:zlib");
require("node:v8").setFlagsFromString("--expose-gc");
const collect = require("node:vm").runInNewContext("gc");
const control = new Int32Array(workerData.control);
let timer;
let releasing = false;
const collectNow = () => {
  clearTimeout(timer);
  collect();
  Atomics.add(control, 1, 1);
};
const rest = () => {
  clearTimeout(timer);
  timer = setTimeout(collectNow, workerData.collectAfterMs);
};
async function load({ into, offset, length, file, block, chunk, claims }) {
  const bytes = new Uint8Array(into, offset, length);
  const next = new Int32Array(claims, 0, 1);
  const crcs = new Uint32Array(claims, 4);
  const handle = await open(file, "r");
  try {
    for (let at; (at = Atomics.add(next, 0, 1) * chunk) < length; ) {
      const size = Math.min(chunk, length - at);
      const { bytesRead } = await handle.read(bytes, at, size, at);
      bytes.fill(0, at + bytesRead, at + size);
      for (let start = at; start < at + size; start += block)
        crcs[start / block] = crc32(bytes.subarray(start, Math.min(start + block, at + size)));
    }
  } finally {
    await handle.close();
  }
}
parentPort.on("message", (message) => {
  if (message.release) {
    // Once for the releases that came together (a registry closing every store).
    if (!releasing) {
      releasing = true;
      setImmediate(() => {
        releasing = false;
        collectNow();
      });
    }
    return;
  }
  if (message.load !== undefined) {
    load(message).then(
      () => parentPort.postMessage({ load: message.load, done: true }),
      (error) => parentPort.postMessage({ load: message.load, error: String(error && error.message) }),
    ).finally(rest);
    return;
  }
  const { memory, job, query, rows, count, stride, out } = message;
  const kernel = new WebAssembly.Instance(workerData.module, { env: { memory } }).exports;
  kernel.scores(query, rows, count, stride, out);
  Atomics.store(control, 0, job);
  Atomics.notify(control, 0);
  rest();
});
`;

/**
 * A second thread for the int8 scan, the part of a search that grows with the memory: the
 * caller scans one half of the rows while the helper scans the other, in the same shared
 * WebAssembly memory. The caller blocks on an Atomics wait for the helper's half, so a search
 * stays one synchronous call. One helper serves every store of the process; scans run one at
 * a time, as JavaScript does.
 *
 * If the worker dies or misses its deadline, it is stopped and every later scan runs on the
 * caller's thread alone: slower, never wrong.
 */
export class ScanHelper {
  readonly #worker: Worker;
  /** [the last job done, the collections the worker ran] */
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  readonly #deadlineMs: number;
  #job = 0;
  #scans = 0;
  #loads = 0;
  readonly #pending = new Map<number, (done: boolean) => void>();
  #broken: string | undefined;

  /** `collectAfterMs`: the pause in scans after which the worker collects. */
  constructor(options: { deadlineMs?: number; source?: string; collectAfterMs?: number } = {}) {
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const module = new WebAssembly.Module(Buffer.from(DOT_KERNEL_WASM, "base64"));
    // `source` replaces the worker's code: tests give it one that hangs or dies.
    this.#worker = new Worker(options.source ?? WORKER_SOURCE, {
      eval: true,
      workerData: {
        module,
        control: this.#control.buffer,
        collectAfterMs: options.collectAfterMs ?? COLLECT_AFTER_MS,
      },
    });
    // It never keeps the process alive, and a failure only turns it off.
    this.#worker.unref();
    this.#worker.on("error", (error) => this.#stop(error.message));
    this.#worker.on("exit", (code) => this.#stop(`exited with code ${code}`));
    this.#worker.on("message", (message: { load: number; done?: boolean }) => {
      const resolve = this.#pending.get(message.load);
      this.#pending.delete(message.load);
      if (message.done) this.#loads++;
      resolve?.(message.done === true);
    });
  }

  /** Files of codes the helper read. */
  get loads(): number {
    return this.#loads;
  }

  /**
   * Reads chunks of a file of codes into shared memory on the helper's thread, until none is
   * left to claim; resolves to whether it did. False: a chunk it claimed may be unread, and the
   * caller must read the file again itself.
   */
  load(job: LoadJob): Promise<boolean> {
    if (this.#broken) return Promise.resolve(false);
    const number = ++this.#job;
    // Generous (10 MB/s, on top of a scan's deadline): past it, the worker is stuck.
    const deadlineMs = this.#deadlineMs + job.length / 10_000;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#stop(`no answer within ${Math.round(deadlineMs)} ms`);
        void this.#worker.terminate();
      }, deadlineMs);
      this.#pending.set(number, (done) => {
        clearTimeout(timer);
        resolve(done);
      });
      this.#worker.postMessage({ ...job, load: number });
    });
  }

  #stop(reason: string): void {
    this.#broken ??= reason;
    for (const resolve of this.#pending.values()) resolve(false);
    this.#pending.clear();
  }

  /** Half-scans the helper did. */
  get scans(): number {
    return this.#scans;
  }

  /** Full collections the worker ran, each after a pause in scans. */
  get collections(): number {
    return Atomics.load(this.#control, 1);
  }

  /** Why the helper stopped helping, or undefined while it works. */
  get broken(): string | undefined {
    return this.#broken;
  }

  /**
   * Starts scanning `job` on the helper; the returned function waits for it and says whether
   * the helper did it (false: it did not, and the caller must). Call it before starting another.
   */
  start(job: ScanJob): () => boolean {
    if (this.#broken) return () => false;
    const number = ++this.#job;
    this.#worker.postMessage({ ...job, job: number });
    return () => {
      const deadline = performance.now() + this.#deadlineMs;
      for (;;) {
        const seen = Atomics.load(this.#control, 0);
        if (seen === number) {
          this.#scans++;
          return true;
        }
        const left = deadline - performance.now();
        if (this.#broken || left <= 0) break;
        Atomics.wait(this.#control, 0, seen, Math.min(left, 50));
      }
      // Stopped, so that it cannot write its half of this scan over a later one.
      this.#stop(`no answer within ${this.#deadlineMs} ms`);
      void this.#worker.terminate();
      return false;
    };
  }

  /**
   * A memory the helper scanned or loaded is no longer used (its store closed): the worker
   * collects soon, letting go of its handles on it, so that RAM is freed once the caller's
   * thread lets go too.
   */
  release(): void {
    if (!this.#broken) this.#worker.postMessage({ release: true });
  }

  async close(): Promise<void> {
    this.#stop("closed");
    await this.#worker.terminate();
  }
}

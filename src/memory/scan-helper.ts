import { Worker } from "node:worker_threads";
import { DOT_KERNEL_WASM } from "./dot-kernel.js";

/**
 * Codes to read from the start of a file into shared memory (`into`, `offset`, `length`), zero
 * past the file's end, with the crc32 of each `block` bytes.
 */
export interface LoadJob {
  into: SharedArrayBuffer;
  offset: number;
  length: number;
  file: string;
  block: number;
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
// records opened and closed in turn kept 2.1 GB of RSS. So it collects, fully, once scans have
// paused for COLLECT_AFTER_MS (a millisecond or two for its small heap, off the caller's path).
// V8's gc() is not exposed by default: the worker sets --expose-gc (V8's flags are per process,
// but only contexts made after get gc(), as the one it takes it from) and counts collections
// in the control array's second word.
const COLLECT_AFTER_MS = 100;
//
// It also reads a store's codes at open (`load`), so that faulting in their pages, which is
// most of that read, and checking them run beside the caller's parse of the rows. Its reads
// are asynchronous, in chunks: a scan sent meanwhile waits for one chunk, not the whole file.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { open } = require("node:fs/promises");
const { crc32 } = require("node:zlib");
require("node:v8").setFlagsFromString("--expose-gc");
const collect = require("node:vm").runInNewContext("gc");
const control = new Int32Array(workerData.control);
let timer;
const rest = () => {
  clearTimeout(timer);
  timer = setTimeout(() => {
    collect();
    Atomics.add(control, 1, 1);
  }, ${COLLECT_AFTER_MS});
};
async function load({ into, offset, length, file, block }) {
  const bytes = new Uint8Array(into, offset, length);
  const chunk = Math.max(1, Math.floor(${4 * 2 ** 20} / block)) * block;
  const crcs = [];
  const handle = await open(file, "r");
  try {
    for (let read = 0; read < length; ) {
      const size = Math.min(chunk, length - read);
      const { bytesRead } = await handle.read(bytes, read, size, read);
      bytes.fill(0, read + bytesRead, read + size);
      for (let start = read; start < read + size; start += block)
        crcs.push(crc32(bytes.subarray(start, Math.min(start + block, read + size))));
      read += size;
    }
  } finally {
    await handle.close();
  }
  return crcs;
}
parentPort.on("message", (message) => {
  if (message.load !== undefined) {
    load(message).then(
      (crcs) => parentPort.postMessage({ load: message.load, crcs }),
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
  readonly #pending = new Map<number, (crcs: number[] | undefined) => void>();
  #broken: string | undefined;

  constructor(options: { deadlineMs?: number; source?: string } = {}) {
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const module = new WebAssembly.Module(Buffer.from(DOT_KERNEL_WASM, "base64"));
    // `source` replaces the worker's code: tests give it one that hangs or dies.
    this.#worker = new Worker(options.source ?? WORKER_SOURCE, {
      eval: true,
      workerData: { module, control: this.#control.buffer },
    });
    // It never keeps the process alive, and a failure only turns it off.
    this.#worker.unref();
    this.#worker.on("error", (error) => this.#stop(error.message));
    this.#worker.on("exit", (code) => this.#stop(`exited with code ${code}`));
    this.#worker.on("message", (message: { load: number; crcs?: number[] }) => {
      const resolve = this.#pending.get(message.load);
      this.#pending.delete(message.load);
      if (message.crcs) this.#loads++;
      resolve?.(message.crcs);
    });
  }

  /** Files of codes the helper read. */
  get loads(): number {
    return this.#loads;
  }

  /**
   * Reads a file of codes into shared memory on the helper's thread; resolves to the crc32 of
   * each block, or undefined when the helper could not (the caller then reads it itself).
   */
  load(job: LoadJob): Promise<number[] | undefined> {
    if (this.#broken) return Promise.resolve(undefined);
    const number = ++this.#job;
    // Generous (10 MB/s, on top of a scan's deadline): past it, the worker is stuck.
    const deadlineMs = this.#deadlineMs + job.length / 10_000;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#stop(`no answer within ${Math.round(deadlineMs)} ms`);
        void this.#worker.terminate();
      }, deadlineMs);
      this.#pending.set(number, (crcs) => {
        clearTimeout(timer);
        resolve(crcs);
      });
      this.#worker.postMessage({ ...job, load: number });
    });
  }

  #stop(reason: string): void {
    this.#broken ??= reason;
    for (const resolve of this.#pending.values()) resolve(undefined);
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

  async close(): Promise<void> {
    this.#stop("closed");
    await this.#worker.terminate();
  }
}

import { DOT_KERNEL_WASM } from "./dot-kernel.js";

// The kernel reads 16 floats per step: rows are padded with zeros to a multiple of that.
const LANES = 16;
const PAGE = 65_536;
// WebAssembly's 32-bit memory: 65,536 pages of 64 KiB.
const MAX_BYTES = 2 ** 32;

interface DotKernel {
  memory: WebAssembly.Memory;
  scores(query: number, rows: number, count: number, stride: number, out: number): void;
}

/**
 * Unit vectors in one contiguous block of WebAssembly memory, for brute-force cosine search.
 * vectra keeps each vector as a `number[]` and scans those in JavaScript; here a SIMD kernel
 * (dot-kernel.wat) scores every row in one call, about five times faster than a JavaScript loop
 * over a Float32Array, which keeps a top-5 search over 100,000 vectors of 1,536 dimensions
 * under 150 ms. WebAssembly memory is 32-bit: about 690,000 such vectors fit in one matrix.
 *
 * Layout: the query (one row), then the rows, then one float per row for the scores.
 */
export class VectorMatrix {
  readonly dimension: number;
  readonly #stride: number;
  readonly #kernel: DotKernel;
  #capacity = 0;
  #floats!: Float32Array;
  readonly #ids: string[] = [];
  readonly #rows = new Map<string, number>();

  constructor(dimension: number, capacity = 64) {
    this.dimension = dimension;
    this.#stride = Math.ceil(dimension / LANES) * LANES;
    const module = new WebAssembly.Module(Buffer.from(DOT_KERNEL_WASM, "base64"));
    this.#kernel = new WebAssembly.Instance(module).exports as unknown as DotKernel;
    this.#reserve(capacity);
  }

  get size(): number {
    return this.#ids.length;
  }

  /** The WebAssembly memory this matrix holds: rows, room to grow into, and scores. */
  get bytes(): number {
    return this.#kernel.memory.buffer.byteLength;
  }

  /** Stores `vector` (normalized here) under `id`, replacing any vector already there. */
  set(id: string, vector: ArrayLike<number>): void {
    if (vector.length !== this.dimension) {
      throw new Error(`vector for ${id} has ${vector.length} dimensions, not ${this.dimension}`);
    }
    let row = this.#rows.get(id);
    if (row === undefined) {
      row = this.#ids.length;
      if (row >= this.#capacity) {
        // Doubling, but never past what 32-bit memory holds: the last rows fit too.
        const most = Math.floor((MAX_BYTES / 4 - this.#stride) / (this.#stride + 1));
        this.#reserve(Math.max(Math.min(this.#capacity * 2, most), row + 1));
      }
      this.#ids.push(id);
      this.#rows.set(id, row);
    }
    this.#writeUnit(this.#offsetOf(row), vector);
  }

  /** A copy of the stored (unit) vector. */
  get(id: string): Float32Array | undefined {
    const row = this.#rows.get(id);
    if (row === undefined) return undefined;
    const start = this.#offsetOf(row);
    return this.#floats.slice(start, start + this.dimension);
  }

  has(id: string): boolean {
    return this.#rows.has(id);
  }

  delete(id: string): boolean {
    const row = this.#rows.get(id);
    if (row === undefined) return false;
    // Move the last row into the hole, so the rows stay contiguous.
    const last = this.#ids.length - 1;
    const lastId = this.#ids[last]!;
    if (row !== last) {
      const from = this.#offsetOf(last);
      this.#floats.copyWithin(this.#offsetOf(row), from, from + this.#stride);
      this.#ids[row] = lastId;
      this.#rows.set(lastId, row);
    }
    this.#ids.pop();
    this.#rows.delete(id);
    return true;
  }

  /**
   * The `k` vectors most similar to `query` among those `accept` lets through, best first.
   * `accept` is asked only about rows that score high enough to enter the top `k` so far.
   */
  topK(
    query: ArrayLike<number>,
    k: number,
    accept: (id: string) => boolean,
  ): Array<{ id: string; score: number }> {
    const count = this.#ids.length;
    if (count === 0 || k <= 0) return [];
    this.#writeUnit(0, query);
    const out = this.#offsetOf(this.#capacity);
    this.#kernel.scores(0, this.#offsetOf(0) * 4, count, this.#stride, out * 4);
    const all = this.#floats.subarray(out, out + count);

    // A min-heap of the best k so far: O(n log k).
    const scores: number[] = [];
    const rows: number[] = [];
    for (let row = 0; row < count; row++) {
      const score = all[row]!;
      if (scores.length === k && score <= scores[0]!) continue;
      if (!accept(this.#ids[row]!)) continue;
      if (scores.length < k) {
        scores.push(score);
        rows.push(row);
        siftUp(scores, rows, scores.length - 1);
      } else {
        scores[0] = score;
        rows[0] = row;
        siftDown(scores, rows);
      }
    }
    return rows
      .map((row, i) => ({ id: this.#ids[row]!, score: scores[i]! }))
      .sort((a, b) => b.score - a.score);
  }

  /** Where row `row` starts, in floats; row 0 follows the query's slot. */
  #offsetOf(row: number): number {
    return (row + 1) * this.#stride;
  }

  #writeUnit(start: number, vector: ArrayLike<number>): void {
    let norm = 0;
    for (let i = 0; i < this.dimension; i++) norm += vector[i]! * vector[i]!;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = 0; i < this.dimension; i++) this.#floats[start + i] = vector[i]! * scale;
    // The padding may hold old scores (rows grow into the scores' old place): it must be zero.
    this.#floats.fill(0, start + this.dimension, start + this.#stride);
  }

  /** Room for `capacity` rows and their scores. The rows stay where they are; memory only grows. */
  #reserve(capacity: number): void {
    const bytes = (this.#offsetOf(capacity) + capacity) * 4;
    const { memory } = this.#kernel;
    const missing = Math.ceil((bytes - memory.buffer.byteLength) / PAGE);
    if (missing > 0) {
      try {
        memory.grow(missing);
      } catch (error) {
        throw new Error(
          `one memory index cannot hold ${capacity} vectors of ${this.dimension} dimensions (${Math.round(bytes / 2 ** 20)} MiB of WebAssembly memory)`,
          { cause: error },
        );
      }
    }
    this.#capacity = capacity;
    // Growing detaches the old buffer: views are made anew.
    this.#floats = new Float32Array(memory.buffer);
  }
}

function swap(scores: number[], rows: number[], a: number, b: number): void {
  [scores[a], scores[b]] = [scores[b]!, scores[a]!];
  [rows[a], rows[b]] = [rows[b]!, rows[a]!];
}

function siftUp(scores: number[], rows: number[], start: number): void {
  let i = start;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (scores[parent]! <= scores[i]!) break;
    swap(scores, rows, parent, i);
    i = parent;
  }
}

function siftDown(scores: number[], rows: number[]): void {
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let smallest = i;
    if (left < scores.length && scores[left]! < scores[smallest]!) smallest = left;
    if (right < scores.length && scores[right]! < scores[smallest]!) smallest = right;
    if (smallest === i) return;
    swap(scores, rows, i, smallest);
    i = smallest;
  }
}

import { DOT_KERNEL_WASM } from "./dot-kernel.js";
import type { ScanHelper } from "./scan-helper.js";

// The kernel reads 16 bytes per step: rows are padded with zeros to a multiple of that.
const LANES = 16;
const PAGE = 65_536;
// WebAssembly's 32-bit memory: 65,536 pages of 64 KiB.
const MAX_PAGES = 65_536;
const MAX_BYTES = MAX_PAGES * PAGE;
// Below this many rows (a few milliseconds of scan), waking the helper costs more than it saves.
const MIN_SHARED_SCAN = 16_384;
// Codes are symmetric, -127..127: -128 would give one side of zero more room than the other.
const LEVELS = 127;
// What V8 keeps for a string beyond its characters (map, hash, length), and for an array slot.
const STRING_HEADER_BYTES = 16;
const POINTER_BYTES = 8;

interface DotKernel {
  scores(query: number, rows: number, count: number, stride: number, out: number): void;
  absmax(src: number, n: number): number;
  squares(src: number, n: number): number;
  quantize(src: number, dst: number, n: number, inverse: number): void;
}

/**
 * Slot-addressed int8 rows in WebAssembly memory. A slot is a fixed position (a snapshot file
 * holds slot s at byte s*stride); slots may be empty (holes).
 *
 * Each row is a unit vector scalar-quantized with its own scale (see `quantize`): one byte per
 * dimension instead of four, so 100,000 vectors of 1,536 dimensions take 154 MB, not 614 MB, and
 * a 32-bit WebAssembly memory holds about 2.8 million of them. A SIMD kernel (dot-kernel.wat)
 * takes the integer dot product of the quantized query with every row in one call, about
 * three times faster than the float32 scan it replaces (memory is what it waits on). Scores are
 * approximate, typically within 1e-3 of the float32 cosine: good enough to pick candidates,
 * which the caller rescores exactly.
 *
 * Layout, in bytes: the query (one row), then slot 0, 1, ..., then one i32 per slot for the
 * kernel's output.
 */
export class QuantizedMatrix {
  readonly dimension: number;
  /** Bytes per row: the dimension rounded up to a multiple of 16 (zero padding). */
  readonly stride: number;
  readonly #kernel: DotKernel;
  readonly #memory: WebAssembly.Memory;
  readonly #helper: ScanHelper | undefined;
  #capacity = 0;
  #extent = 0;
  #size = 0;
  #idChars = 0;
  #bytes!: Int8Array;
  #scales = new Float32Array(0);
  readonly #ids: Array<string | undefined> = [];

  /** `helper`, when given, scans half the rows of large searches on another thread. */
  constructor(dimension: number, capacity = 64, helper?: ScanHelper) {
    if (!Number.isInteger(dimension) || dimension <= 0) {
      throw new RangeError(`a dimension must be a positive integer, not ${dimension}`);
    }
    this.dimension = dimension;
    this.stride = strideOf(dimension);
    const module = new WebAssembly.Module(Buffer.from(DOT_KERNEL_WASM, "base64"));
    // Shared memory needs a maximum; it reserves address space, not RAM.
    this.#memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    this.#helper = helper;
    this.#kernel = new WebAssembly.Instance(module, { env: { memory: this.#memory } })
      .exports as unknown as DotKernel;
    this.#grow(Math.max(capacity, 1));
  }

  /** Slots with room reserved. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Slots holding a vector. */
  get size(): number {
    return this.#size;
  }

  /** One past the highest slot that holds (or held) a vector: what a scan covers. */
  get extent(): number {
    return this.#extent;
  }

  /**
   * Called when the matrix is no longer used: the scan helper, which holds handles on its
   * memory from the scans and loads it did, lets go of them soon (see ScanHelper.release).
   */
  release(): void {
    this.#helper?.release();
  }

  /**
   * RAM taken, estimated: the rows up to the highest slot written with the kernel's output for
   * them, the scales and the ids. The capacity reserved past them (it grows by doubling) takes
   * no RAM until written: at 253,000 records one add that starts a segment reserves 390 MB more
   * memory, and RSS does not move.
   */
  get bytes(): number {
    return (
      this.#bytesFor(this.#extent) +
      this.#extent * Float32Array.BYTES_PER_ELEMENT +
      this.#ids.length * POINTER_BYTES +
      this.#size * STRING_HEADER_BYTES +
      // Two bytes a character, as the store counts its records: UTF-16 at worst.
      this.#idChars * 2
    );
  }

  /** Room for at least `slots` slots (grows by doubling; never shrinks). */
  reserve(slots: number): void {
    if (slots <= this.#capacity) return;
    if (this.#bytesFor(slots) > MAX_BYTES) {
      throw new Error(
        `one memory index cannot hold ${slots} vectors of ${this.dimension} dimensions: ${Math.round(this.#bytesFor(slots) / 2 ** 20)} MiB is past the 4 GiB of 32-bit WebAssembly memory`,
      );
    }
    // Doubling, but never past what 32-bit memory holds: the last slots fit too.
    const most = Math.floor((MAX_BYTES - this.#bytesFor(0)) / (this.stride + 4));
    this.#grow(Math.max(Math.min(this.#capacity * 2, most), slots));
  }

  /**
   * Quantizes `vector` (normalized here to unit length first) into `slot` under `id`, replacing
   * whatever the slot held.
   */
  set(slot: number, id: string, vector: ArrayLike<number>): void {
    this.#checkSlot(slot);
    if (vector.length !== this.dimension) {
      throw new Error(`vector for ${id} has ${vector.length} dimensions, not ${this.dimension}`);
    }
    this.reserve(slot + 1);
    const start = this.#offsetOf(slot);
    let scale = vector instanceof Float32Array ? this.#quantizeHere(vector, start) : undefined;
    if (scale === undefined) {
      scale = quantizeInto(vector, this.#bytes.subarray(start, start + this.dimension), true);
      // Padding never counts (the query's is zero: nothing else writes there), but kept zero,
      // a snapshot written through codes() is the same bytes for the same vectors.
      this.#bytes.fill(0, start + this.dimension, start + this.stride);
    }
    this.#name(slot, id, scale);
  }

  /** Empties a slot (zeroes its row, forgets its id). */
  clear(slot: number): void {
    this.#checkSlot(slot);
    if (slot >= this.#capacity) return;
    const start = this.#offsetOf(slot);
    this.#bytes.fill(0, start, start + this.stride);
    this.#scales[slot] = 0;
    const id = this.#ids[slot];
    if (id === undefined) return;
    this.#ids[slot] = undefined;
    this.#size--;
    this.#idChars -= id.length;
  }

  idAt(slot: number): string | undefined {
    return this.#ids[slot];
  }

  /** The slot's scale (code * scale ≈ value); 0 for an empty slot. */
  scaleAt(slot: number): number {
    return slot < this.#capacity ? this.#scales[slot]! : 0;
  }

  /**
   * The codes of slots [from, from + count) as a Uint8Array view on WebAssembly memory, to read a
   * snapshot file straight into (or to write one from). Reserves room first. Valid until the
   * memory grows: `reserve`, `set` or another `codes` past the capacity detaches it.
   */
  codes(from: number, count: number): Uint8Array {
    this.#checkSlot(from);
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(`a slot count must be a non-negative integer, not ${count}`);
    }
    this.reserve(from + count);
    const { buffer } = this.#memory;
    return new Uint8Array(buffer, this.#offsetOf(from), count * this.stride);
  }

  /** Names a slot whose codes were written through `codes()`, with its scale. */
  assign(slot: number, id: string, scale: number): void {
    this.#checkSlot(slot);
    if (slot >= this.#capacity) {
      throw new RangeError(`slot ${slot} has no codes: write them through codes() first`);
    }
    if (!Number.isFinite(scale) || scale < 0) {
      throw new RangeError(`the scale of ${id} must be a finite non-negative number, not ${scale}`);
    }
    this.#name(slot, id, scale);
  }

  /**
   * The slot's vector as decoded from its codes (approximate unit vector); undefined for an
   * empty slot.
   */
  approximate(slot: number): Float32Array | undefined {
    if (this.#ids[slot] === undefined) return undefined;
    const scale = this.#scales[slot]!;
    const start = this.#offsetOf(slot);
    const vector = new Float32Array(this.dimension);
    for (let i = 0; i < this.dimension; i++) vector[i] = this.#bytes[start + i]! * scale;
    return vector;
  }

  /**
   * The `n` best slots by approximate cosine with `query` (normalized here), among non-empty
   * slots whose id `accept` lets through, best first. `accept` is asked only about slots that
   * would enter the top `n` so far.
   */
  candidates(
    query: ArrayLike<number>,
    n: number,
    accept: (id: string) => boolean,
  ): Array<{ slot: number; id: string; score: number }> {
    if (query.length !== this.dimension) {
      throw new Error(`the query has ${query.length} dimensions, not ${this.dimension}`);
    }
    const count = this.#extent;
    if (this.#size === 0 || n <= 0) return [];
    const queryScale = quantizeInto(query, this.#bytes.subarray(0, this.dimension), true);
    const out = this.#offsetOf(this.#capacity);
    // Offsets past 2 GiB turn negative as i32 arguments; WebAssembly reads them as unsigned.
    this.#scan(count, out);
    const dots = new Int32Array(this.#memory.buffer, out, count);

    // A min-heap of the best n so far: O(count log n).
    const scores: number[] = [];
    const slots: number[] = [];
    for (let slot = 0; slot < count; slot++) {
      const id = this.#ids[slot];
      if (id === undefined) continue;
      const score = dots[slot]! * this.#scales[slot]!;
      if (scores.length === n && score <= scores[0]!) continue;
      if (!accept(id)) continue;
      if (scores.length < n) {
        scores.push(score);
        slots.push(slot);
        siftUp(scores, slots, scores.length - 1);
      } else {
        scores[0] = score;
        slots[0] = slot;
        siftDown(scores, slots);
      }
    }
    return (
      slots
        .map((slot, i) => ({ slot, id: this.#ids[slot]!, score: scores[i]! * queryScale }))
        // Equal scores by slot: their order in the heap depends on the other rows scanned.
        .sort((a, b) => b.score - a.score || a.slot - b.slot)
    );
  }

  /** The kernel over slots [0, count): half of them on the helper's thread when there is one. */
  #scan(count: number, out: number): void {
    const half = this.#helper && count >= MIN_SHARED_SCAN ? count >> 1 : count;
    const wait =
      half < count
        ? this.#helper!.start({
            memory: this.#memory,
            query: 0,
            rows: this.#offsetOf(half),
            count: count - half,
            stride: this.stride,
            out: out + half * 4,
          })
        : undefined;
    this.#kernel.scores(0, this.#offsetOf(0), half, this.stride, out);
    if (wait && !wait())
      this.#kernel.scores(0, this.#offsetOf(half), count - half, this.stride, out + half * 4);
  }

  #name(slot: number, id: string, scale: number): void {
    const previous = this.#ids[slot];
    if (previous === undefined) this.#size++;
    this.#idChars += id.length - (previous?.length ?? 0);
    this.#ids[slot] = id;
    this.#scales[slot] = scale;
    this.#extent = Math.max(this.#extent, slot + 1);
  }

  #checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0) {
      throw new RangeError(`a slot must be a non-negative integer, not ${slot}`);
    }
  }

  /**
   * `quantizeInto` with the kernel's SIMD loops, the vector copied into the scratch row (its
   * padding zero, and so the codes'): the scale, or undefined when the sum of squares overflows
   * or underflows a float32, which `quantizeInto` handles.
   */
  #quantizeHere(vector: Float32Array, at: number): number | undefined {
    const scratch = this.#scratchAt();
    const floats = new Float32Array(this.#memory.buffer, scratch, this.stride);
    floats.set(vector);
    floats.fill(0, vector.length);
    const max = this.#kernel.absmax(scratch, this.stride);
    if (!Number.isFinite(max)) throw new RangeError("a vector to quantize must be finite");
    if (max === 0) {
      this.#bytes.fill(0, at, at + this.stride);
      return 0;
    }
    const norm = Math.sqrt(this.#kernel.squares(scratch, this.stride));
    // Overflowed, or underflowed to nothing (values about 1e-24 and below, squared in float32):
    // `quantizeInto` sums in float64.
    if (!Number.isFinite(norm) || norm === 0) return undefined;
    this.#kernel.quantize(scratch, at, this.stride, LEVELS / max);
    return max / norm / LEVELS;
  }

  /** Where the scratch row of float32 values is: after the kernel's output, 16-byte aligned. */
  #scratchAt(): number {
    return Math.ceil((this.#offsetOf(this.#capacity) + this.#capacity * 4) / LANES) * LANES;
  }

  /** Where slot `slot` starts, in bytes; slot 0 follows the query's row. */
  #offsetOf(slot: number): number {
    return (slot + 1) * this.stride;
  }

  /** The memory `slots` slots need: the query, the rows, the kernel's output and the scratch. */
  #bytesFor(slots: number): number {
    return this.#offsetOf(slots) + slots * 4 + LANES + this.stride * 4;
  }

  /** Room for `capacity` slots. The rows stay where they are; memory only grows. */
  #grow(capacity: number): void {
    const bytes = this.#bytesFor(capacity);
    const memory = this.#memory;
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
    // Growing detaches the old buffer: views are made anew.
    this.#bytes = new Int8Array(memory.buffer);
    // The new rows cover the old kernel output and scratch; fresh pages are zero already.
    const oldOut = this.#offsetOf(this.#capacity);
    this.#bytes.fill(0, oldOut, this.#bytesFor(this.#capacity));
    const scales = new Float32Array(capacity);
    scales.set(this.#scales);
    this.#scales = scales;
    this.#capacity = capacity;
  }
}

/** Bytes of a row's codes: the dimension rounded up to the kernel's 16 lanes. */
export function strideOf(dimension: number): number {
  return Math.ceil(dimension / LANES) * LANES;
}

/**
 * Quantizes a unit vector into `out` (length ≥ dimension); returns its scale (code * scale ≈
 * value). Per-vector symmetric: scale = max|x| / 127, code = round(x / scale). A zero vector has
 * scale 0. One scale per vector rather than per dimension: a vector is added without
 * requantizing the others, and on the local embedder's vectors it ranks better (per-dimension
 * scales, fixed by the largest value any vector has there, leave long texts few levels).
 */
export function quantize(vector: ArrayLike<number>, out: Int8Array): number {
  return quantizeInto(vector, out, false);
}

/** Quantizes `vector` as `quantize` does, returning the scale of `vector` made unit (or not). */
function quantizeInto(vector: ArrayLike<number>, out: Int8Array, unit: boolean): number {
  let max = 0;
  let squares = 0;
  for (let i = 0; i < vector.length; i++) {
    const x = vector[i]!;
    const magnitude = x < 0 ? -x : x;
    if (magnitude > max) max = magnitude;
    squares += x * x;
  }
  if (!Number.isFinite(max) || Number.isNaN(squares))
    throw new RangeError("a vector to quantize must be finite");
  if (max === 0) {
    out.fill(0, 0, vector.length);
    return 0;
  }
  // The unit vector's largest value is max / norm. Squares of values past ~1e154 overflow:
  // their norm is taken of vector / max instead.
  let norm = Math.sqrt(squares);
  if (!Number.isFinite(norm)) {
    let scaled = 0;
    for (let i = 0; i < vector.length; i++) scaled += (vector[i]! / max) ** 2;
    norm = max * Math.sqrt(scaled);
  }
  const inverse = LEVELS / max;
  // Math.round, as floor(x + 0.5): on this project's VM Math.round's loop took twice as long.
  for (let i = 0; i < vector.length; i++) out[i] = Math.floor(vector[i]! * inverse + 0.5);
  return (unit ? max / norm : max) / LEVELS;
}

function swap(scores: number[], slots: number[], a: number, b: number): void {
  [scores[a], scores[b]] = [scores[b]!, scores[a]!];
  [slots[a], slots[b]] = [slots[b]!, slots[a]!];
}

function siftUp(scores: number[], slots: number[], start: number): void {
  let i = start;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (scores[parent]! <= scores[i]!) break;
    swap(scores, slots, parent, i);
    i = parent;
  }
}

function siftDown(scores: number[], slots: number[]): void {
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let smallest = i;
    if (left < scores.length && scores[left]! < scores[smallest]!) smallest = left;
    if (right < scores.length && scores[right]! < scores[smallest]!) smallest = right;
    if (smallest === i) return;
    swap(scores, slots, i, smallest);
    i = smallest;
  }
}

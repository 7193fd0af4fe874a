/**
 * Unit vectors in one contiguous Float32Array, for brute-force cosine search. vectra keeps each
 * vector as a `number[]` and scans those; a contiguous float32 scan is several times faster and
 * takes half the memory, which is what keeps a top-5 search over 100,000 vectors well within
 * 150 ms.
 */
export class VectorMatrix {
  readonly dimension: number;
  #data: Float32Array;
  #ids: string[] = [];
  readonly #rows = new Map<string, number>();

  constructor(dimension: number, capacity = 1024) {
    this.dimension = dimension;
    this.#data = new Float32Array(dimension * capacity);
  }

  get size(): number {
    return this.#ids.length;
  }

  /** Stores `vector` (normalized here) under `id`, replacing any vector already there. */
  set(id: string, vector: ArrayLike<number>): void {
    if (vector.length !== this.dimension) {
      throw new Error(`vector for ${id} has ${vector.length} dimensions, not ${this.dimension}`);
    }
    let row = this.#rows.get(id);
    if (row === undefined) {
      row = this.#ids.length;
      if ((row + 1) * this.dimension > this.#data.length) this.#grow();
      this.#ids.push(id);
      this.#rows.set(id, row);
    }
    let norm = 0;
    for (let i = 0; i < vector.length; i++) norm += vector[i]! * vector[i]!;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    const base = row * this.dimension;
    for (let i = 0; i < vector.length; i++) this.#data[base + i] = vector[i]! * scale;
  }

  /** A copy of the stored (unit) vector. */
  get(id: string): Float32Array | undefined {
    const row = this.#rows.get(id);
    if (row === undefined) return undefined;
    return this.#data.slice(row * this.dimension, (row + 1) * this.dimension);
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
      this.#data.copyWithin(
        row * this.dimension,
        last * this.dimension,
        (last + 1) * this.dimension,
      );
      this.#ids[row] = lastId;
      this.#rows.set(lastId, row);
    }
    this.#ids.pop();
    this.#rows.delete(id);
    return true;
  }

  /** The `k` vectors most similar to `query` among those `accept` lets through, best first. */
  topK(
    query: ArrayLike<number>,
    k: number,
    accept: (id: string) => boolean,
  ): Array<{ id: string; score: number }> {
    const dimension = this.dimension;
    const q = new Float32Array(dimension);
    let norm = 0;
    for (let i = 0; i < dimension; i++) norm += query[i]! * query[i]!;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = 0; i < dimension; i++) q[i] = query[i]! * scale;

    // A min-heap of the best k so far: O(n log k).
    const scores: number[] = [];
    const rows: number[] = [];
    const data = this.#data;
    const count = this.#ids.length;
    for (let row = 0; row < count; row++) {
      if (!accept(this.#ids[row]!)) continue;
      const base = row * dimension;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      let i = 0;
      for (; i + 3 < dimension; i += 4) {
        s0 += data[base + i]! * q[i]!;
        s1 += data[base + i + 1]! * q[i + 1]!;
        s2 += data[base + i + 2]! * q[i + 2]!;
        s3 += data[base + i + 3]! * q[i + 3]!;
      }
      for (; i < dimension; i++) s0 += data[base + i]! * q[i]!;
      const score = s0 + s1 + s2 + s3;
      if (scores.length < k) {
        scores.push(score);
        rows.push(row);
        siftUp(scores, rows, scores.length - 1);
      } else if (k > 0 && score > scores[0]!) {
        scores[0] = score;
        rows[0] = row;
        siftDown(scores, rows);
      }
    }
    return rows
      .map((row, i) => ({ id: this.#ids[row]!, score: scores[i]! }))
      .sort((a, b) => b.score - a.score);
  }

  #grow(): void {
    const next = new Float32Array(Math.max(this.#data.length * 2, this.dimension * 1024));
    next.set(this.#data);
    this.#data = next;
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

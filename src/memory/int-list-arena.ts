const INITIAL_LISTS = 64;
const INITIAL_INTS = 1_024;

// A list that outgrows its room moves with this much more: twice while small, half again once
// large. A big list's move copies it, and its spare room stays in RAM: a word in a tenth of
// 250,000 records holds 200 KB of postings, so doubling would waste up to as much per word.
const SMALL_LIST = 64;
const grownRoom = (count: number) =>
  count < SMALL_LIST ? Math.max(2, count * 2) : count + (count >> 1);

/**
 * Many growable lists of int32 tuples (`width` ints an item) in one Int32Array, each list named
 * by a small integer. A keyword index holds one list per word and one per record: at 100,000
 * records that is 200,000 lists, and a typed array and an object each took ~250 bytes, more
 * than the lists' contents. Here a list costs three ints of bookkeeping.
 *
 * A list that outgrows its room moves to the end with more room (`grownRoom`); the room it
 * left, and that of cleared lists, is reclaimed by compaction once it is a quarter of what the
 * array holds. Compaction keeps each list's room, so that the lists just moved do not all move
 * again on their next push. Item order within a list is not kept by `removeAt` (it swaps with
 * the last).
 */
export class IntListArena {
  readonly width: number;
  #data = new Int32Array(INITIAL_INTS);
  #end = 0;
  #garbage = 0;
  #start = new Int32Array(INITIAL_LISTS);
  #count = new Int32Array(INITIAL_LISTS);
  #room = new Int32Array(INITIAL_LISTS);

  /** `width` is 1 or 2 ints an item. */
  constructor(width: 1 | 2) {
    this.width = width;
  }

  /** The array the lists live in; valid until the next push, set or compaction. */
  get data(): Int32Array {
    return this.#data;
  }

  /**
   * Bytes in RAM: the array up to its last list (spare room, and room left by moves, included)
   * and the bookkeeping. The array's tail past that was never written, and a large typed array's
   * untouched pages take no RAM.
   */
  get bytes(): number {
    return this.#end * Int32Array.BYTES_PER_ELEMENT + this.#start.byteLength * 3;
  }

  /** Items in `list` (0 for a list never used). */
  count(list: number): number {
    return list < this.#count.length ? this.#count[list]! : 0;
  }

  /** Where `list`'s first item starts in `data`, in ints. */
  start(list: number): number {
    return this.#start[list]!;
  }

  /** Appends one item: `a`, and `b` when items are two ints wide. */
  push(list: number, a: number, b = 0): void {
    this.#ensureList(list);
    const count = this.#count[list]!;
    if (count === this.#room[list]) this.#move(list, grownRoom(count));
    const at = this.#start[list]! + count * this.width;
    this.#data[at] = a;
    if (this.width === 2) this.#data[at + 1] = b;
    this.#count[list] = count + 1;
  }

  /** Replaces `list` with `values` (whole items), in room just big enough. */
  set(list: number, values: ArrayLike<number>): void {
    this.#ensureList(list);
    this.clear(list);
    const count = values.length / this.width;
    if (count === 0) return;
    this.#move(list, count);
    this.#data.set(values, this.#start[list]!);
    this.#count[list] = count;
  }

  /**
   * Gives lists `0 … rooms.length − 1` of an empty arena room for `rooms[list]` items each, in
   * one array with an eighth more at its end: a bulk load then pushes without a list ever moving,
   * and the lists made after it fit without the array growing (which copies it whole). With
   * `growth`, a list of `SMALL_LIST` items or more gets an eighth more room too: without it every
   * list is full after the load, and the first records added after it move every common word's
   * list (a copy of each), whose old room then sets off compactions of the whole array: at
   * 250,000 records, the first thousand adds after a cold open's first search, one at a time,
   * took 1.4–1.6 s rather than 0.8. Room never written takes no RAM: a new typed array's pages
   * are mapped when first written.
   */
  allocate(rooms: ArrayLike<number>, { growth = false } = {}): void {
    if (this.#end > 0) throw new Error("allocate needs an empty arena");
    this.#ensureList(Math.max(rooms.length - 1, 0));
    let end = 0;
    for (let list = 0; list < rooms.length; list++) {
      const room = rooms[list]!;
      this.#start[list] = end;
      this.#room[list] = growth && room >= SMALL_LIST ? room + (room >> 3) : room;
      end += this.#room[list]! * this.width;
    }
    this.#data = new Int32Array(Math.max(end + (end >> 3), INITIAL_INTS));
    this.#end = end;
  }

  /** Removes item `index` of `list`, moving the last item into its place. */
  removeAt(list: number, index: number): void {
    const { width } = this;
    const count = this.#count[list]! - 1;
    const start = this.#start[list]!;
    this.#data.copyWithin(
      start + index * width,
      start + count * width,
      start + (count + 1) * width,
    );
    this.#count[list] = count;
  }

  /** Empties `list` and gives its room back. */
  clear(list: number): void {
    if (list >= this.#room.length) return;
    this.#garbage += this.#room[list]! * this.width;
    this.#count[list] = 0;
    this.#room[list] = 0;
  }

  /** Gives `list` room for `room` items at the end of the array, its items moved there. */
  #move(list: number, room: number): void {
    const { width } = this;
    const ints = room * width;
    // Checked at every move, not only when the array is full: the room left behind is written
    // memory, and the array's unwritten tail, however long, is not.
    if (this.#garbage * 4 > this.#end) this.#compact(ints);
    if (this.#end + ints > this.#data.length) {
      let length = this.#data.length * 2;
      while (length < this.#end + ints) length *= 2;
      const grown = new Int32Array(length);
      grown.set(this.#data.subarray(0, this.#end));
      this.#data = grown;
    }
    const start = this.#start[list]!;
    const count = this.#count[list]!;
    this.#data.copyWithin(this.#end, start, start + count * width);
    this.#garbage += this.#room[list]! * width;
    this.#start[list] = this.#end;
    this.#room[list] = room;
    this.#end += ints;
  }

  /**
   * Packs every list together, with its room, into a new array with space for `more` ints after
   * them, and as much again as they take.
   */
  #compact(more: number): void {
    const { width } = this;
    let used = 0;
    for (let list = 0; list < this.#count.length; list++) used += this.#room[list]! * width;
    const packed = new Int32Array(Math.max(INITIAL_INTS, 2 * used + more));
    let end = 0;
    for (let list = 0; list < this.#count.length; list++) {
      const count = this.#count[list]!;
      const start = this.#start[list]!;
      packed.set(this.#data.subarray(start, start + count * width), end);
      this.#start[list] = end;
      end += this.#room[list]! * width;
    }
    this.#data = packed;
    this.#end = end;
    this.#garbage = 0;
  }

  #ensureList(list: number): void {
    if (list < this.#count.length) return;
    let length = this.#count.length * 2;
    while (length <= list) length *= 2;
    const grow = (array: Int32Array) => {
      const grown = new Int32Array(length);
      grown.set(array);
      return grown;
    };
    this.#start = grow(this.#start);
    this.#count = grow(this.#count);
    this.#room = grow(this.#room);
  }
}

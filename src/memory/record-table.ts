import { MEMORY_KINDS, type MetadataValue, type RecordMetadata } from "./memory-store.js";

const INITIAL_SLOTS = 64;
/** A sha256: the bytes of a text hash in the table's and a rows file's hash column. */
export const HASH_BYTES = 32;
// A sha256 in base64: 44 characters, the last one "=".
const HASH_CHARS = 44;
// What a value kept aside (`#rare`) costs beyond its characters: a Map entry and an object.
const RARE_BYTES = 120;

/** What few records have, kept aside rather than in a column for every record. */
export interface Rare {
  url?: string | undefined;
  createdAt?: string;
  hash?: string;
  metadata?: Record<string, MetadataValue> | undefined;
}

/**
 * Every record's metadata, hash and creation time as columns of typed arrays indexed by slot,
 * rather than an object and a handful of strings a record: 100,000 records took about 48 MB of
 * heap as objects. Repository, author and state are numbers into a table of the distinct
 * strings; a GitHub URL that follows from the repository, kind and number is not kept; the text
 * hash is its 32 bytes. What does not fit (another host's URL, extra metadata, a creation time
 * or hash not in the usual form) is kept aside for that record, so that `get` always gives back
 * what `set` was given.
 */
export class RecordTable {
  #kind = new Uint8Array(INITIAL_SLOTS);
  #flags = new Uint8Array(INITIAL_SLOTS);
  #repo = new Uint32Array(INITIAL_SLOTS);
  #author = new Uint32Array(INITIAL_SLOTS);
  #state = new Uint32Array(INITIAL_SLOTS);
  #number = new Float64Array(INITIAL_SLOTS);
  #created = new Float64Array(INITIAL_SLOTS);
  #hash = new Uint8Array(INITIAL_SLOTS * HASH_BYTES);
  /** Distinct repository, author and state strings; index 0 stands for "none". */
  readonly #strings: string[] = [""];
  readonly #stringIds = new Map<string, number>();
  #stringBytes = 0;
  readonly #rare = new Map<number, Rare>();
  #rareBytes = 0;

  /** RAM taken, estimated: the columns as allocated, the string table and the values aside. */
  get bytes(): number {
    const columns =
      this.#kind.byteLength * 2 +
      this.#repo.byteLength * 3 +
      this.#number.byteLength * 2 +
      this.#hash.byteLength;
    return columns + this.#stringBytes + this.#rareBytes;
  }

  set(slot: number, record: RecordMetadata, hash: string): void {
    this.clear(slot);
    this.#reserve(slot + 1);
    const fields = fieldsOf(record, hash);
    this.#kind[slot] = fields.kind;
    this.#flags[slot] = fields.flags;
    this.#repo[slot] = this.#stringId(record.repo);
    this.#author[slot] = record.author === undefined ? 0 : this.#stringId(record.author);
    this.#state[slot] = record.state === undefined ? 0 : this.#stringId(record.state);
    this.#number[slot] = fields.number;
    this.#created[slot] = fields.created;
    if (fields.hash) this.#hash.set(fields.hash, slot * HASH_BYTES);
    if (fields.rare) this.#keepRare(slot, fields.rare);
  }

  /**
   * Row i of `columns` into `slots[i]`, for every row: an open's load, with no object or string
   * made a record (the strings are the chunk's few distinct ones).
   */
  setColumns(slots: ArrayLike<number>, columns: RecordColumns): void {
    let last = -1;
    for (let i = 0; i < slots.length; i++) last = Math.max(last, slots[i]!);
    this.#reserve(last + 1);
    const strings = columns.strings.map((value, i) => (i === 0 ? 0 : this.#stringId(value!)));
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      this.clear(slot);
      this.#kind[slot] = columns.kind[i]!;
      this.#flags[slot] = columns.flags[i]!;
      this.#repo[slot] = strings[columns.repo[i]!]!;
      this.#author[slot] = strings[columns.author[i]!]!;
      this.#state[slot] = strings[columns.state[i]!]!;
      this.#number[slot] = columns.number[i]!;
      this.#created[slot] = columns.created[i]!;
      const from = i * HASH_BYTES;
      const to = slot * HASH_BYTES;
      for (let b = 0; b < HASH_BYTES; b++) this.#hash[to + b] = columns.hash[from + b]!;
    }
    for (const [i, rare] of Object.entries(columns.rare)) this.#keepRare(slots[Number(i)]!, rare);
  }

  #keepRare(slot: number, rare: Rare): void {
    this.#rare.set(slot, rare);
    this.#rareBytes += RARE_BYTES + JSON.stringify(rare).length * 2;
  }

  clear(slot: number): void {
    if (slot >= this.#kind.length) return;
    this.#kind[slot] = 0;
    const rare = this.#rare.get(slot);
    if (!rare) return;
    this.#rareBytes -= RARE_BYTES + JSON.stringify(rare).length * 2;
    this.#rare.delete(slot);
  }

  /** The record in `slot`, named `id`, as it was set. */
  get(slot: number, id: string): RecordMetadata {
    const rare = this.#rare.get(slot);
    const record = {
      id,
      kind: this.kind(slot),
      repo: this.#strings[this.#repo[slot]!]!,
      number: this.number(slot),
      author: this.#optional(this.#author[slot]!),
      url: undefined as string | undefined,
      createdAt: rare?.createdAt ?? new Date(this.#created[slot]!).toISOString(),
      state: this.#optional(this.#state[slot]!),
      metadata: rare?.metadata,
    };
    record.url = this.#flags[slot] === 1 ? gitHubUrl(record) : rare?.url;
    return record;
  }

  kind(slot: number): RecordMetadata["kind"] {
    return MEMORY_KINDS[this.#kind[slot]! - 1]!;
  }

  /** The record's issue or pull request number, if it has one. */
  number(slot: number): number | undefined {
    const number = this.#number[slot]!;
    return Number.isNaN(number) ? undefined : number;
  }

  state(slot: number): string | undefined {
    return this.#optional(this.#state[slot]!);
  }

  /** Milliseconds since the epoch (NaN for a creation time that does not parse). */
  createdAt(slot: number): number {
    return this.#created[slot]!;
  }

  /** The text's sha256, base64, as it was set. */
  hash(slot: number): string {
    const rare = this.#rare.get(slot)?.hash;
    if (rare !== undefined) return rare;
    const start = slot * HASH_BYTES;
    return Buffer.from(this.#hash.buffer, this.#hash.byteOffset + start, HASH_BYTES).toString(
      "base64",
    );
  }

  #optional(index: number): string | undefined {
    return index === 0 ? undefined : this.#strings[index];
  }

  #stringId(value: string): number {
    let index = this.#stringIds.get(value);
    if (index === undefined) {
      index = this.#strings.length;
      this.#strings.push(value);
      this.#stringIds.set(value, index);
      this.#stringBytes += 80 + value.length * 2;
    }
    return index;
  }

  #reserve(slots: number): void {
    if (slots <= this.#kind.length) return;
    let length = this.#kind.length * 2;
    while (length < slots) length *= 2;
    const grow = <T extends Uint8Array | Uint32Array | Float64Array>(array: T, per = 1): T => {
      const grown = new (array.constructor as new (length: number) => T)(length * per);
      grown.set(array);
      return grown;
    };
    this.#kind = grow(this.#kind);
    this.#flags = grow(this.#flags);
    this.#repo = grow(this.#repo);
    this.#author = grow(this.#author);
    this.#state = grow(this.#state);
    this.#number = grow(this.#number);
    this.#created = grow(this.#created);
    this.#hash = grow(this.#hash, HASH_BYTES);
  }
}

/** The URL GitHub gives an issue or pull request, which most records carry. */
export function gitHubUrl({
  kind,
  repo,
  number,
}: Pick<RecordMetadata, "kind" | "repo" | "number">): string | undefined {
  if (number === undefined) return undefined;
  if (kind === "issue") return `https://github.com/${repo}/issues/${number}`;
  if (kind === "pull_request") return `https://github.com/${repo}/pull/${number}`;
  return undefined;
}

/**
 * Records' table columns as a snapshot's rows file holds them (memory-snapshot.ts): row i is
 * the i-th record given to `encodeColumns`.
 */
export interface RecordColumns {
  /** The repository, author and state strings that `repo`, `author` and `state` index; 0 is "none". */
  strings: Array<string | null>;
  kind: Uint8Array;
  /** 1 when the URL is the one GitHub gives (see `gitHubUrl`), and is not kept. */
  flags: Uint8Array;
  repo: Uint32Array;
  author: Uint32Array;
  state: Uint32Array;
  number: Float64Array;
  created: Float64Array;
  /** 32 bytes a row. */
  hash: Uint8Array;
  /** By row: what the columns do not hold. */
  rare: Record<string, Rare>;
}

/** The columns of `items`, in order. */
export function encodeColumns(
  items: ReadonlyArray<{ record: RecordMetadata; hash: string }>,
): RecordColumns {
  const count = items.length;
  const strings: Array<string | null> = [null];
  const ids = new Map<string, number>();
  const stringId = (value: string | undefined) => {
    if (value === undefined) return 0;
    let id = ids.get(value);
    if (id === undefined) {
      id = strings.push(value) - 1;
      ids.set(value, id);
    }
    return id;
  };
  const columns: RecordColumns = {
    strings,
    kind: new Uint8Array(count),
    flags: new Uint8Array(count),
    repo: new Uint32Array(count),
    author: new Uint32Array(count),
    state: new Uint32Array(count),
    number: new Float64Array(count),
    created: new Float64Array(count),
    hash: new Uint8Array(count * HASH_BYTES),
    rare: {},
  };
  items.forEach(({ record, hash }, i) => {
    const fields = fieldsOf(record, hash);
    columns.kind[i] = fields.kind;
    columns.flags[i] = fields.flags;
    columns.repo[i] = stringId(record.repo);
    columns.author[i] = stringId(record.author);
    columns.state[i] = stringId(record.state);
    columns.number[i] = fields.number;
    columns.created[i] = fields.created;
    if (fields.hash) columns.hash.set(fields.hash, i * HASH_BYTES);
    if (fields.rare) columns.rare[String(i)] = fields.rare;
  });
  return columns;
}

/** A record's values as the table's columns hold them, and what they cannot hold. */
function fieldsOf(record: RecordMetadata, hash: string) {
  // Made only for a record that has something to keep aside: most have not.
  let rare: Rare | undefined;
  const created = Date.parse(record.createdAt);
  if (Number.isNaN(created) || new Date(created).toISOString() !== record.createdAt)
    (rare ??= {}).createdAt = record.createdAt;
  const derived = record.url !== undefined && record.url === gitHubUrl(record);
  if (!derived && record.url !== undefined) (rare ??= {}).url = record.url;
  let bytes: Buffer | undefined =
    hash.length === HASH_CHARS ? Buffer.from(hash, "base64") : undefined;
  if (bytes?.length !== HASH_BYTES || bytes.toString("base64") !== hash) {
    (rare ??= {}).hash = hash;
    bytes = undefined;
  }
  if (record.metadata !== undefined) (rare ??= {}).metadata = record.metadata;
  return {
    kind: MEMORY_KINDS.indexOf(record.kind) + 1,
    flags: derived ? 1 : 0,
    number: record.number ?? Number.NaN,
    created,
    hash: bytes,
    rare,
  };
}

import { MEMORY_KINDS, type MetadataValue, type RecordMetadata } from "./memory-store.js";

const INITIAL_SLOTS = 64;
const HASH_BYTES = 32;
// A sha256 in base64: 44 characters, the last one "=".
const HASH_CHARS = 44;
// What a value kept aside (`#rare`) costs beyond its characters: a Map entry and an object.
const RARE_BYTES = 120;

/** What few records have, kept aside rather than in a column for every record. */
interface Rare {
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
    // Made only for a record that has something to keep aside: most have not.
    let rare: Rare | undefined;
    this.#kind[slot] = MEMORY_KINDS.indexOf(record.kind) + 1;
    this.#repo[slot] = this.#stringId(record.repo);
    this.#author[slot] = record.author === undefined ? 0 : this.#stringId(record.author);
    this.#state[slot] = record.state === undefined ? 0 : this.#stringId(record.state);
    this.#number[slot] = record.number ?? Number.NaN;
    const created = Date.parse(record.createdAt);
    this.#created[slot] = created;
    if (Number.isNaN(created) || new Date(created).toISOString() !== record.createdAt)
      (rare ??= {}).createdAt = record.createdAt;
    const derived = record.url !== undefined && record.url === gitHubUrl(record);
    this.#flags[slot] = derived ? 1 : 0;
    if (!derived && record.url !== undefined) (rare ??= {}).url = record.url;
    const bytes = hash.length === HASH_CHARS ? Buffer.from(hash, "base64") : undefined;
    if (bytes?.length === HASH_BYTES && bytes.toString("base64") === hash)
      this.#hash.set(bytes, slot * HASH_BYTES);
    else (rare ??= {}).hash = hash;
    if (record.metadata !== undefined) (rare ??= {}).metadata = record.metadata;
    if (rare) {
      this.#rare.set(slot, rare);
      this.#rareBytes += RARE_BYTES + JSON.stringify(rare).length * 2;
    }
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

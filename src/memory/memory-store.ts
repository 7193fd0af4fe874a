import { sliceWhole } from "../slice-whole.js";

/** What a memory is of. */
export const MEMORY_KINDS = ["issue", "pull_request", "comment", "answer", "note"] as const;
export type MemoryKind = (typeof MEMORY_KINDS)[number];

export type MetadataValue = string | number | boolean;

/** A memory to store. `id` names its source, so storing the same source again updates it. */
export interface MemoryInput {
  /** Stable per source: `issue-12`, `pull_request-7`, `answer-<comment id>`, `note-<comment id>`. */
  id: string;
  kind: MemoryKind;
  text: string;
  /** `owner/repo`. */
  repo: string;
  number?: number | undefined;
  author?: string | undefined;
  url?: string | undefined;
  /** ISO 8601. */
  createdAt: string;
  /** `open` or `closed`, for issues and pull requests. */
  state?: string | undefined;
  /**
   * `updatedAt` (ISO 8601) is the source's version, its `updated_at` on GitHub: a record of an
   * older version than the one stored is not written (see isOlderVersion).
   */
  metadata?: Record<string, MetadataValue> | undefined;
}

export type MemoryRecord = MemoryInput;

/** A record without its text: what RAM keeps once the text is on disk. */
export type RecordMetadata = Omit<MemoryRecord, "text">;

export function withoutText(record: MemoryRecord): RecordMetadata {
  // Not a copy with `text` deleted: a deletion turns an object into a dictionary, three times
  // the heap, and an add makes one.
  const { text, ...metadata } = record;
  void text;
  return metadata;
}

export interface SearchOptions {
  k: number;
  kinds?: readonly MemoryKind[];
  state?: string;
  /** Only memories created at or after this ISO time. */
  since?: string;
  /** Leave these out (the issue the search is about, say). */
  excludeIds?: readonly string[];
  /** Only hits whose cosine similarity reaches this, but for near-exact duplicates (see below). */
  minScore?: number;
  /**
   * Keep a short query's keyword hits below `minScore` too (default true): embeddings of a few
   * words are vague, and the words are the better signal. Similar issues say false: their
   * threshold is the one the repository set, whatever the length of the issue.
   */
  shortQueryKeywords?: boolean;
}

export interface SearchHit {
  record: MemoryRecord;
  /** Cosine similarity of the embeddings. */
  score: number;
  /** Found by keywords (BM25) rather than by meaning alone. */
  keyword: boolean;
}

export interface MemoryPage {
  records: MemoryRecord[];
  next?: string | undefined;
}

export interface MemoryStats {
  records: number;
  byKind: Record<string, number>;
  /** Records in the log not yet written to the index files. */
  pending: number;
  segments: number;
  bytesOnDisk: number;
  /**
   * What the store holds in RAM while open, estimated: its vectors as allocated and its records
   * (and its keyword indexes, once a search has built them). The open-store LRU counts this.
   */
  bytesInRam: number;
  model: string;
  dimension: number;
}

/** A memory that cannot be stored as given (no text, a bad id, another repository's record). */
export class InvalidMemoryError extends Error {
  override name = "InvalidMemoryError";
}

const ID = /^[\w.:-]{1,200}$/;
/** A memory's text is cut here: an issue's title and description, not a whole thread. */
const MAX_TEXT = 20_000;

/** A memory as stored: its text trimmed and cut, its time in ISO form; or why it cannot be. */
export function validateMemory(input: MemoryInput): MemoryRecord {
  if (!ID.test(input.id))
    throw new InvalidMemoryError(`memory id ${JSON.stringify(input.id)} is not valid`);
  if (!MEMORY_KINDS.includes(input.kind))
    throw new InvalidMemoryError(`memory kind ${JSON.stringify(input.kind)} is not valid`);
  // Storable in both stores alike (see storableText), and cut between whole characters: a cut
  // inside an emoji left half of it, which PostgreSQL's JSON refuses too.
  const text = sliceWhole(storableText(input.text).trim(), MAX_TEXT);
  if (!text) throw new InvalidMemoryError(`memory ${input.id} has no text`);
  const createdAt = new Date(input.createdAt);
  if (Number.isNaN(createdAt.getTime()))
    throw new InvalidMemoryError(`memory ${input.id} has no valid created time`);
  const record = { ...input, text, createdAt: createdAt.toISOString() };
  const updatedAt = input.metadata?.updatedAt;
  if (updatedAt === undefined) return record;
  // One form, so that versions compare as strings too (in SQL).
  const version = typeof updatedAt === "string" ? new Date(updatedAt) : new Date(Number.NaN);
  if (Number.isNaN(version.getTime()))
    throw new InvalidMemoryError(`memory ${input.id} has no valid updated time`);
  return { ...record, metadata: { ...input.metadata, updatedAt: version.toISOString() } };
}

/**
 * `vector`, the embedding of memory `id`, once it is one both stores can hold; checked before
 * anything is written. A wrong dimension is the embedder's setup, not the memory's (an Error). A
 * value that is not finite (an OpenAI-compatible server answering 1e39 gives Infinity as
 * float32) is refused as this memory's (InvalidMemoryError): the vectra store could not apply it
 * once logged, and pgvector refuses it.
 */
export function validateEmbedding(
  id: string,
  vector: Float32Array | undefined,
  dimension: number,
): Float32Array {
  if (vector?.length !== dimension)
    throw new Error(
      `the embedder gave memory ${id} ${vector?.length ?? "no"} dimensions, not ${dimension}`,
    );
  if (!isFiniteVector(vector))
    throw new InvalidMemoryError(`the embedding of memory ${id} holds a value that is not finite`);
  return vector;
}

/** Whether every value of `vector` is finite: no Infinity, no NaN (what Infinity scales to). */
export function isFiniteVector(vector: Float32Array): boolean {
  for (let i = 0; i < vector.length; i++) if (!Number.isFinite(vector[i])) return false;
  return true;
}

/**
 * Whether `record` is an older version of its source than `stored`: GitHub does not promise to
 * deliver events in order, and a redelivery comes whenever it is asked for, so an edit may come
 * after a later one. Either without a version (a summary, a note, a write from elsewhere) is
 * not older: it is written.
 */
export function isOlderVersion(
  record: Pick<MemoryInput, "metadata">,
  stored: Pick<MemoryInput, "metadata">,
): boolean {
  const version = record.metadata?.updatedAt;
  const storedVersion = stored.metadata?.updatedAt;
  if (typeof version !== "string" || typeof storedVersion !== "string") return false;
  return Date.parse(version) < Date.parse(storedVersion);
}

/**
 * Whether `record` belongs to a thread forgotten with `forgetThread`: anything of it but a
 * maintainer's note.
 */
export function isOfForgottenThread(
  record: Pick<MemoryInput, "kind" | "number">,
  forgotten: ReadonlySet<number>,
): boolean {
  return record.kind !== "note" && record.number !== undefined && forgotten.has(record.number);
}

/** The repository comes from the event; a record naming another cannot get in. */
export function checkRepository(input: MemoryInput, name: string): MemoryInput {
  if (input.repo.toLowerCase() !== name.toLowerCase())
    throw new InvalidMemoryError(`a memory of ${input.repo} cannot go into the memory of ${name}`);
  return input;
}

// Half of a surrogate pair without its other half: no character, and not valid UTF-8 either.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * `text` as both stores can hold it: without U+0000, which means nothing in an issue and which
 * PostgreSQL's text cannot hold, and with each lone surrogate (anyone can send one through the
 * API) as U+FFFD, which PostgreSQL's JSON refuses: with DATABASE_URL a batch holding either
 * failed whole, and a backfill page with it failed at every try (found by a review). Linear:
 * the pattern looks one unit either side; most texts come back as they are.
 */
export function storableText(text: string): string {
  const withoutNul = text.includes("\u0000") ? text.replaceAll("\u0000", "") : text;
  return withoutNul.replace(LONE_SURROGATE, "\ufffd");
}

/** The memory was deleted (with its repository or installation) after this handle was opened. */
export class MemoryDeletedError extends Error {
  override name = "MemoryDeletedError";
}

/**
 * The memory of one installation's repository. Implementations keep each repository's memories
 * apart at the storage level; the caller picks the repository from the event, never from text
 * the model wrote. Reads are asynchronous: a registry may have closed an idle store to bound
 * the RAM that open stores take, and reopens it on the next call.
 */
export interface MemoryStore {
  /** A similarity above which this store's embedder usually means related texts. */
  readonly relatedScore: number;
  /**
   * Resolves once the memory is durable; it is searchable at once. One older than the stored
   * version of its source (`metadata.updatedAt`) is not written: the newer one stays.
   */
  add(input: MemoryInput): Promise<MemoryRecord>;
  /** Many memories with one embedding batch and one durable write. */
  addMany(inputs: MemoryInput[]): Promise<MemoryRecord[]>;
  /** Resolves false when there was no such memory. */
  remove(id: string): Promise<boolean>;
  /**
   * Forgets thread `number` (an issue deleted or transferred away): removes every record of it
   * (its issue, Talos's answers there with its summary, its comments) but maintainers' notes,
   * found by their metadata, durably as `remove` does, and refuses for good any later write of
   * it but a note: an edit delivered late, an answer that was being written or a backfill page
   * read before would otherwise bring it back, and the number never returns to this
   * repository. A deleted issue may be spam or a leaked secret, and answers may quote it.
   * Resolves with how many records it removed.
   */
  forgetThread(number: number): Promise<number>;
  /** The threads forgotten, in order: what a copy of this memory must refuse too. */
  forgottenThreads(): Promise<number[]>;
  get(id: string): Promise<MemoryRecord | undefined>;
  search(query: string, options: SearchOptions): Promise<SearchHit[]>;
  list(): Promise<MemoryRecord[]>;
  /**
   * The records a page at a time, for an export that must not hold them all at once (the
   * server's RAM, and one answer's size, bound it beside a running server): the page after
   * `cursor` (without one, the first) and the cursor of the next, if there is one. A record
   * written meanwhile may come twice, the later the newer; none that stays is left out.
   */
  listPage(cursor?: string): Promise<MemoryPage>;
  stats(): Promise<MemoryStats>;
  /** Writes pending memories into the index files now. */
  flush(): Promise<void>;
  /** Builds now what the first search would otherwise wait for (its keyword indexes). */
  warm(): Promise<void>;
}

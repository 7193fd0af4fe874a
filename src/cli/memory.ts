import { once } from "node:events";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import { systemClock } from "../clock.js";
import { sliceWhole } from "../slice-whole.js";
import { getSecrets, type Env } from "../config.js";
import { createSecretScrubber } from "../create-logger.js";
import { createEmbedder } from "../memory/create-embedder.js";
import { describeEmbedder, type Embedder } from "../memory/embedder.js";
import { Database } from "../database/database.js";
import { PostgresMemory } from "../database/postgres-memory.js";
import type { MemoryNamespace, MemoryRegistry } from "../memory/memory-registry.js";
import { type StoredNamespace } from "../memory/memory-registry.js";
import type { LegacyMemory } from "../memory/legacy-memory.js";
import type { MemoryService, RepoMemory } from "../memory/memory-service.js";
import type { BackfillState } from "../memory/backfill-repository.js";
import {
  MEMORY_KINDS,
  type MemoryKind,
  type MemoryPage,
  type MemoryRecord,
  type MemoryStats,
  type SearchHit,
} from "../memory/memory-store.js";
import {
  readBackfill,
  sizeOf,
  type MemoryRequest,
  type NamespaceStatsAnswer,
} from "../memory/memory-request.js";
import { z } from "zod";
import { createMemoryRegistry } from "../create-services.js";
import { createMetrics } from "../metrics/create-metrics.js";
import { lockDirectory, type LockOwner } from "../memory/directory-lock.js";
import { askServer, holdDataDirectory } from "./hold-data-directory.js";
import { assertDirectory } from "./assert-directory.js";
import { toTerminalText } from "./to-terminal-text.js";
import { UsageError } from "./usage-error.js";

export interface MemoryCommandOptions {
  /** `--data-dir` or TALOS_DATA_DIR; the memory is in its `memory/` directory. */
  dataDir: string;
  /** `--repo owner/repo` (or a repository id): only this repository's namespaces. */
  repo: string | undefined;
  /** `--installation ID`: only this installation's namespaces. */
  installation: string | undefined;
  json: boolean;
  env: Env;
  log: Logger;
  stdout: Writable;
}

export interface SearchMemoryOptions extends MemoryCommandOptions {
  query: string;
  k: number;
  kinds: MemoryKind[] | undefined;
}

/** A namespace as the commands show it: ids, and `repo`, the name its repository.json holds. */
export interface ShownNamespace {
  installation: number;
  repository: number;
  repo: string;
}

export type NamespaceStats = ShownNamespace & MemoryStats;

const REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** `talos memory stats`: records, kinds, pending log entries and size per namespace. */
export async function showMemoryStats(options: MemoryCommandOptions): Promise<number> {
  const access = await accessMemory(options);
  let rows: Array<NamespaceStats & { backfill: BackfillState | { error: string } | null }>;
  let stored: Array<Pick<LegacyMemory, "installation" | "name">>;
  try {
    const picked = await select(access, options);
    stored = picked.waiting;
    const stats = await access.stats(picked.namespaces);
    rows = picked.namespaces.map((namespace, i) => ({ ...namespace, ...stats[i]! }));
  } finally {
    await access.close();
  }
  const totals = sumStats(rows);
  const legacy = stored.map(({ installation, name }) => ({ installation, repo: name }));
  if (options.json) {
    // Rows carry what backfill.json holds: an error an older version kept as it came included.
    // Each string on its own, so that what is scrubbed (a key cut short runs to its text's end)
    // never takes JSON with it.
    const scrub = createSecretScrubber(getSecrets(options.env));
    const line = JSON.stringify({ namespaces: rows, totals, legacy }, (_key, value: unknown) =>
      typeof value === "string" ? scrub(value) : value,
    );
    await writeLine(options.stdout, line);
    return 0;
  }
  const table = [
    [
      "NAMESPACE",
      "RECORDS",
      "PENDING",
      "SEGMENTS",
      "ON DISK",
      "IN RAM",
      "EMBEDDER",
      "BACKFILL",
      "KINDS",
    ],
    ...rows.map((row) => [
      `${row.installation}/${row.repo}`,
      String(row.records),
      String(row.pending),
      String(row.segments),
      formatBytes(row.bytesOnDisk),
      formatBytes(row.bytesInRam),
      describeEmbedder(row),
      describeBackfill(row.backfill),
      formatKinds(row.byKind),
    ]),
    [
      `total (${totals.namespaces})`,
      String(totals.records),
      String(totals.pending),
      String(totals.segments),
      formatBytes(totals.bytesOnDisk),
      formatBytes(totals.bytesInRam),
      "",
      "",
      formatKinds(totals.byKind),
    ],
  ];
  await writeLine(options.stdout, formatTable(table, [1, 2, 3, 4, 5]));
  if (legacy.length > 0) {
    await writeText(
      options.stdout,
      `${legacy.length} name-keyed ${legacy.length === 1 ? "memory" : "memories"} from before the upgrade ${legacy.length === 1 ? "waits for its repository's" : "wait for their repositories'"} next event: ${legacy.map((l) => `${l.installation}/${l.repo}`).join(", ")}`,
    );
  }
  return 0;
}

/** A backfill's progress in a word or two: where it is, or why it stopped. */
function describeBackfill(state: BackfillState | { error: string } | null): string {
  if (state === null) return "none";
  if ("error" in state) return "unreadable";
  const where =
    state.status === "done"
      ? `done (${state.indexed})`
      : `${state.status} at page ${state.page} (${state.indexed})`;
  // With issues off, the pull requests are read from a listing of their own.
  if (state.listing === "pulls") return `issues off, pulls ${where}`;
  // Saved before the pull requests were read on their own: none were after the 410.
  if (state.issuesDisabledAt) return "issues off";
  return where;
}

/** `talos memory search <query>`: what the bot would recall, in one namespace. */
export async function searchMemory(options: SearchMemoryOptions): Promise<number> {
  const access = await accessMemory(options);
  let namespace: ShownNamespace;
  let hits: SearchHit[];
  try {
    const { namespaces } = await select(access, options);
    if (namespaces.length === 0) throw new UsageError(`no memory to search in ${whereOf(options)}`);
    if (namespaces.length > 1) {
      throw new UsageError(
        `search reads one memory, and ${namespaces.length} match (${namespaces.map(nameOf).join(", ")}); pass --repo and --installation to pick one`,
      );
    }
    namespace = namespaces[0]!;
    hits = await access.search(namespace, options.query, { k: options.k, kinds: options.kinds });
  } finally {
    await access.close();
  }
  const results = hits.map(({ record, score, keyword }) => ({
    score,
    keyword,
    id: record.id,
    kind: record.kind,
    number: record.number,
    url: record.url,
    firstLine: record.text.split("\n", 1)[0] ?? "",
  }));
  if (options.json) {
    await writeLine(
      options.stdout,
      JSON.stringify({ ...namespace, query: options.query, hits: results }),
    );
    return 0;
  }
  if (results.length === 0) {
    await writeText(options.stdout, `No memories of ${nameOf(namespace)} match.`);
    return 0;
  }
  const table = [
    ["SCORE", "ID", "KIND", "NUMBER", "URL", "TEXT"],
    ...results.map((hit) => [
      // Keyword (BM25) hits are ranked by words rather than by this similarity.
      `${hit.score.toFixed(3)}${hit.keyword ? "*" : ""}`,
      hit.id,
      hit.kind,
      hit.number === undefined ? "" : `#${hit.number}`,
      hit.url ?? "",
      // Cut once clean: the 80 are what shows, and no sequence is cut in half.
      sliceWhole(toTerminalText(hit.firstLine, true), 80),
    ]),
  ];
  await writeLine(options.stdout, formatTable(table, [0]));
  return 0;
}

/**
 * `talos memory export`: every record as a JSON line with its installation and repository ids,
 * without vectors.
 */
export async function exportMemory(options: MemoryCommandOptions): Promise<number> {
  const { stdout } = options;
  // `talos memory export | head` closes the pipe early: the reader has what it wanted.
  let broken: unknown;
  const onError = (error: unknown) => (broken = error);
  const access = await accessMemory(options);
  stdout.on("error", onError);
  try {
    for (const namespace of (await select(access, options)).namespaces) {
      await access.eachPage(namespace, async (records) => {
        for (const record of records) {
          // No more pages are read for a reader gone.
          if (broken) throw broken;
          await writeLine(
            stdout,
            JSON.stringify({
              installation: namespace.installation,
              repository: namespace.repository,
              ...record,
            }),
          );
        }
      });
    }
  } catch (error) {
    if (!isBrokenPipe(error)) throw error;
  } finally {
    stdout.off("error", onError);
    await access.close();
  }
  if (broken && !isBrokenPipe(broken)) throw broken;
  return 0;
}

/** Every page of a listing, the first first, each asked with the cursor the one before gave. */
async function eachPageOf(
  read: (cursor: string | undefined) => Promise<MemoryPage>,
  write: (records: MemoryRecord[]) => Promise<void>,
): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await read(cursor);
    await write(page.records);
    cursor = page.next;
  } while (cursor !== undefined);
}

const isBrokenPipe = (error: unknown) => (error as NodeJS.ErrnoException).code === "EPIPE";

/**
 * `talos memory compact`: opening a store replays its log into the index files; the flush
 * then leaves nothing pending.
 */
export async function compactMemory(options: MemoryCommandOptions): Promise<number> {
  if (options.env.DATABASE_URL) {
    await writeLine(
      options.stdout,
      options.json
        ? JSON.stringify({ namespaces: [] })
        : "Nothing to compact: with DATABASE_URL the memory is in PostgreSQL, where every write is durable as it commits.",
    );
    return 0;
  }
  const rows: Array<NamespaceStats & { bytesBefore: number }> = [];
  const access = await accessMemory(options);
  try {
    for (const namespace of (await select(access, options)).namespaces) {
      const { bytesBefore, ...stats } = await access.compact(namespace);
      rows.push({ ...namespace, ...stats, bytesBefore });
      if (!options.json) {
        await writeText(
          options.stdout,
          `Compacted ${nameOf(namespace)}: ${stats.records} records in ${stats.segments} segment(s), ${stats.pending} pending, ${formatBytes(stats.bytesOnDisk)} on disk (was ${formatBytes(bytesBefore)}).`,
        );
      }
    }
  } finally {
    await access.close();
  }
  if (options.json) await writeLine(options.stdout, JSON.stringify({ namespaces: rows }));
  // Silence read as "done" where nothing was there: a mistyped data directory, say.
  else if (rows.length === 0)
    await writeText(options.stdout, `No memory in ${whereOf(options)}: nothing to compact.`);
  return 0;
}

/**
 * `talos memory delete`: deletes the memories picked, with their backfill progress, as the
 * repository's removal from its installation would. What it is for: the memory of an
 * installation uninstalled while Talos was down (the catch-up keeps it, and says so), or a
 * repository whose memory must go. Each stays refused as after that removal: a repository its
 * installation still holds is readmitted, empty, at its next event, and backfilled again.
 */
export async function deleteMemory(
  options: MemoryCommandOptions & { yes: boolean },
): Promise<number> {
  if (options.repo === undefined && options.installation === undefined)
    throw new UsageError(
      "delete takes --installation, --repo or both: it never deletes every memory at once",
    );
  const access = await accessMemory(options);
  const deleted: ShownNamespace[] = [];
  const deletedLegacy: Array<{ installation: number; repo: string }> = [];
  try {
    const { namespaces, legacy } = await select(access, options, { legacy: true });
    const names = [
      ...namespaces.map(nameOf),
      ...legacy.map((l) => `${l.installation}/${l.name} (name-keyed, from before the upgrade)`),
    ];
    if (!options.yes)
      throw new UsageError(
        `this would delete the memory of ${names.join(", ")}: add --yes to delete ${names.length === 1 ? "it" : "them"}`,
      );
    // Checked before anything is deleted: a memory half deleted would be harder to explain.
    await access.assertDeletable(namespaces, legacy);
    for (const namespace of namespaces) {
      await access.delete(namespace);
      deleted.push(namespace);
      if (!options.json)
        await writeText(
          options.stdout,
          `Deleted the memory of ${nameOf(namespace)} (repository ${namespace.repository}) from ${whereOf(options)}.`,
        );
    }
    for (const memory of legacy) {
      await access.deleteLegacy(memory);
      deletedLegacy.push({ installation: memory.installation, repo: memory.name });
      if (!options.json)
        await writeText(
          options.stdout,
          `Deleted the name-keyed memory of ${memory.installation}/${memory.name} (from before the upgrade) from ${memory.directory}.`,
        );
    }
  } finally {
    await access.close();
  }
  if (options.json)
    await writeLine(options.stdout, JSON.stringify({ deleted, legacy: deletedLegacy }));
  return 0;
}

/** Records per write while importing: one embedding request each. */
const IMPORT_BATCH = 100;

/**
 * `talos memory import` (with DATABASE_URL): copies the memories on disk under the data
 * directory into PostgreSQL, for a move from one instance to several. Texts are embedded again,
 * by the embedder the environment configures (the one the instances use), and a repository's
 * backfill progress comes along when PostgreSQL has none, so the instances do not backfill it
 * again. A record already there with the same text is left as it is: running it again resumes,
 * and costs no embedding for what it copied.
 */
export async function importMemory(options: MemoryCommandOptions): Promise<number> {
  if (!options.env.DATABASE_URL)
    throw new UsageError(
      "import copies the memory on disk into PostgreSQL: set DATABASE_URL (in the environment or .env)",
    );
  const onDisk: MemoryCommandOptions = {
    ...options,
    env: { ...options.env, DATABASE_URL: undefined },
  };
  // Read with the data directory held: a running server would write what is being copied.
  const source = await accessMemory(onDisk, { besideServer: false });
  const rows: Array<ShownNamespace & { records: number; backfill: string | undefined }> = [];
  try {
    await importInto(options, onDisk, (await select(source, onDisk)).namespaces, rows);
  } finally {
    await source.close();
  }
  if (options.json) await writeLine(options.stdout, JSON.stringify({ namespaces: rows }));
  else if (rows.length === 0)
    await writeText(options.stdout, `No memory on disk in ${whereOf(onDisk)}: nothing to import.`);
  return 0;
}

async function importInto(
  options: MemoryCommandOptions,
  onDisk: MemoryCommandOptions,
  namespaces: ShownNamespace[],
  rows: Array<ShownNamespace & { records: number; backfill: string | undefined }>,
): Promise<void> {
  const target = await openMemories(options, createEmbedder(options.env));
  try {
    for (const namespace of namespaces) {
      const { records, backfill, forgotten } = await withStoredEmbedder(
        onDisk,
        namespace,
        async (store) => ({
          records: await store.list(),
          backfill: await store.readBackfillState(),
          forgotten: await store.forgottenThreads(),
        }),
      );
      const repo = await target.service.open({ ...namespace, name: namespace.repo });
      // Deleted threads stay refused there: a backfill must not bring them back.
      for (const number of forgotten) await repo.forgetThread(number);
      // A record keeps the name its repository had when it was written; the memory is by id, and
      // goes in under the name the repository has now.
      for (let i = 0; i < records.length; i += IMPORT_BATCH)
        await repo.addMany(
          records.slice(i, i + IMPORT_BATCH).map((record) => ({ ...record, repo: namespace.repo })),
        );
      const kept = backfill && !(await repo.readBackfillState());
      if (kept) await repo.saveBackfillState(backfill);
      rows.push({
        ...namespace,
        records: records.length,
        backfill: kept ? backfill.status : undefined,
      });
      if (!options.json)
        await writeText(
          options.stdout,
          `Imported ${records.length} records of ${nameOf(namespace)} into ${target.where}${kept ? `, with its backfill progress (${backfill.status}, ${backfill.indexed} indexed)` : ""}.`,
        );
    }
  } finally {
    await target.close();
  }
}

/**
 * The namespaces `--repo` and `--installation` pick, and with `legacy`, the name-keyed memories
 * from before the upgrade they pick (by name: they have no repository id); an error when they
 * pick nothing. `waiting` is every name-keyed memory.
 */
async function select(
  access: MemoryAccess,
  options: MemoryCommandOptions,
  { legacy = false } = {},
): Promise<{ namespaces: ShownNamespace[]; legacy: LegacyMemory[]; waiting: LegacyMemory[] }> {
  const { repo, installation } = options;
  const listed = await access.list();
  const picked = (at: number, name: string, id?: number) =>
    (repo === undefined || name.toLowerCase() === repo.toLowerCase() || String(id) === repo) &&
    (installation === undefined || String(at) === installation);
  const found = listed.namespaces
    .map(toShown)
    .sort((a, b) => nameOf(a).localeCompare(nameOf(b), "en", { numeric: true }));
  const selected = found.filter((n) => picked(n.installation, n.repo, n.repository));
  const legacySelected = legacy ? listed.legacy.filter((l) => picked(l.installation, l.name)) : [];
  if (
    selected.length + legacySelected.length === 0 &&
    (repo !== undefined || installation !== undefined)
  ) {
    const wanted = [
      installation === undefined ? "" : `installation ${installation}`,
      repo === undefined ? "" : repo,
    ].filter(Boolean);
    throw new UsageError(
      `no memory of ${wanted.join(", ")} in ${whereOf(options)} (found: ${found.map(nameOf).join(", ") || "none"})`,
    );
  }
  return { namespaces: selected, legacy: legacySelected, waiting: listed.legacy };
}

/** `--repo` and `--installation` checked before anything is opened. */
function checkSelection({ repo, installation }: MemoryCommandOptions): void {
  // Ids as GitHub writes them, and the namespaces are named: "07" would match nothing.
  const isId = (value: string) => /^[1-9]\d{0,15}$/.test(value);
  if (repo !== undefined && !REPO.test(repo) && !isId(repo))
    throw new UsageError(`--repo takes owner/repo or a repository id, not "${repo}"`);
  if (installation !== undefined && !isId(installation))
    throw new UsageError(`--installation takes a numeric installation id, not "${installation}"`);
}

/** What the commands read and change: the memory itself, or the running server's through it. */
interface MemoryAccess {
  list(): Promise<{ namespaces: StoredNamespace[]; legacy: LegacyMemory[] }>;
  stats(namespaces: ShownNamespace[]): Promise<NamespaceStatsAnswer[]>;
  search(
    namespace: ShownNamespace,
    query: string,
    options: { k: number; kinds: MemoryKind[] | undefined },
  ): Promise<SearchHit[]>;
  /** Hands the namespace's records to `write` a page at a time. */
  eachPage(
    namespace: ShownNamespace,
    write: (records: MemoryRecord[]) => Promise<void>,
  ): Promise<void>;
  compact(namespace: ShownNamespace): Promise<MemoryStats & { bytesBefore: number }>;
  /** Throws, before anything is deleted, when one of them cannot be. */
  assertDeletable(namespaces: ShownNamespace[], legacy: LegacyMemory[]): Promise<void>;
  delete(namespace: ShownNamespace): Promise<void>;
  deleteLegacy(memory: LegacyMemory): Promise<void>;
  close(): Promise<void>;
}

/**
 * The memory as the command may reach it. With DATABASE_URL, PostgreSQL, beside the servers. On
 * disk, the data directory is held for the command's length (a server starting meanwhile waits
 * for it), so that no store opens under a server's feet; when a running server holds it, and
 * answers requests, the command asks that server, which has the memory open. Any other holder
 * (another command, a server of an earlier version) is named in an exit 2.
 */
async function accessMemory(
  options: MemoryCommandOptions,
  { besideServer = true } = {},
): Promise<MemoryAccess> {
  checkSelection(options);
  if (options.env.DATABASE_URL) return localAccess(options, async () => undefined);
  await assertDirectory(options.dataDir);
  const held = await holdDataDirectory(options.dataDir);
  if ("release" in held) return localAccess(options, held.release);
  if (!besideServer)
    throw new UsageError(
      `a running server (process ${held.server.pid}) holds ${options.dataDir}; stop it first`,
    );
  return serverAccess(options, held.server);
}

function localAccess(options: MemoryCommandOptions, release: () => Promise<void>): MemoryAccess {
  const withRefusing = async <T>(use: (service: MemoryService) => Promise<T>) => {
    const memories = await openMemories(options, refusingEmbedder());
    return use(memories.service).finally(() => memories.close());
  };
  return {
    list: () =>
      withRefusing(async (service) => {
        const [namespaces, legacy] = await Promise.all([service.list(), service.listLegacy()]);
        return { namespaces, legacy };
      }),
    stats: async (namespaces) => {
      const backfills = await withRefusing((service) =>
        Promise.all(namespaces.map((namespace) => readBackfill(service, namespace))),
      );
      const rows: NamespaceStatsAnswer[] = [];
      for (const [i, namespace] of namespaces.entries())
        rows.push({
          ...(await withStoredEmbedder(options, namespace, (store) => store.stats())),
          backfill: backfills[i]!,
        });
      return rows;
    },
    // The query must be embedded as the memories were: the configured embedder, checked against
    // the manifest when the store opens.
    search: (namespace, query, { k, kinds }) =>
      withStore(options, namespace, createEmbedder(options.env), (store) =>
        store.search(query, { k, ...(kinds ? { kinds } : {}) }),
      ),
    eachPage: (namespace, write) =>
      withStoredEmbedder(options, namespace, (store) =>
        eachPageOf((cursor) => store.listPage(cursor), write),
      ),
    compact: async (namespace) => {
      const bytesBefore = await sizeOf(directoryOf(options, namespace));
      const stats = await withStoredEmbedder(options, namespace, async (store) => {
        await store.flush();
        return store.stats();
      });
      return { ...stats, bytesBefore };
    },
    // Another process holding one of them (a backfill of an earlier version, which took no hold
    // of the data directory): refused before anything is written. A memory deleted behind its
    // back would be written again by it.
    assertDeletable: async (namespaces) => {
      if (options.env.DATABASE_URL) return;
      for (const namespace of namespaces) {
        const releaseOne = await lockDirectory(directoryOf(options, namespace));
        await releaseOne();
      }
    },
    delete: async (namespace) => {
      await withRefusing((service) => service.delete({ ...namespace, name: namespace.repo }));
    },
    // Only on disk, where no server runs now (the data directory is held): nothing else adopts
    // or writes them.
    deleteLegacy: (memory) => rm(memory.directory, { recursive: true, force: true }),
    close: release,
  };
}

/** The memory through the server holding the data directory (see memory-request.ts). */
function serverAccess(options: MemoryCommandOptions, owner: LockOwner): MemoryAccess {
  const ask = async <S extends z.ZodTypeAny>(
    request: MemoryRequest,
    schema: S,
  ): Promise<z.infer<S>> =>
    schema.parse(
      await askServer(options.dataDir, owner, { kind: "memory", ...request }),
    ) as z.infer<S>;
  const ref = (namespace: ShownNamespace) => ({
    installation: namespace.installation,
    repository: namespace.repository,
    name: namespace.repo,
  });
  return {
    list: () => ask({ op: "list" }, Listed),
    stats: async (namespaces) =>
      (await ask(
        { op: "stats", namespaces: namespaces.map(ref) },
        z.array(StatsAnswer),
      )) as NamespaceStatsAnswer[],
    search: (namespace, query, { k, kinds }) =>
      ask(
        { op: "search", namespace: ref(namespace), query, k, ...(kinds ? { kinds } : {}) },
        z.array(z.object({ record: RecordAnswer, score: z.number(), keyword: z.boolean() })),
      ),
    eachPage: (namespace, write) =>
      eachPageOf(
        async (cursor) =>
          (await ask(
            { op: "export", namespace: ref(namespace), ...(cursor ? { cursor } : {}) },
            z.object({ records: z.array(RecordAnswer), next: z.string().optional() }),
          )) as MemoryPage,
        write,
      ),
    compact: (namespace) =>
      ask({ op: "compact", namespace: ref(namespace) }, Stats.extend({ bytesBefore: z.number() })),
    // The server refuses a memory from its deletion on; one another process holds fails there.
    assertDeletable: async (_, legacy) => {
      if (legacy.length > 0)
        throw new UsageError(
          `a running server holds ${options.dataDir}: stop it to delete name-keyed memories from before the upgrade`,
        );
    },
    delete: async (namespace) => {
      await ask({ op: "delete", namespace: ref(namespace) }, z.boolean());
    },
    deleteLegacy: () => Promise.reject(new Error("name-keyed memories are deleted on disk only")),
    close: async () => undefined,
  };
}

const Listed = z.object({
  namespaces: z.array(
    z.object({ installation: z.number(), repository: z.number(), name: z.string() }),
  ),
  legacy: z.array(z.object({ installation: z.number(), name: z.string(), directory: z.string() })),
});
const Stats = z.object({
  records: z.number(),
  byKind: z.record(z.string(), z.number()),
  pending: z.number(),
  segments: z.number(),
  bytesOnDisk: z.number(),
  bytesInRam: z.number(),
  model: z.string(),
  dimension: z.number(),
});
const StatsAnswer = Stats.extend({ backfill: z.unknown() });
const RecordAnswer = z
  .object({
    id: z.string(),
    kind: z.enum(MEMORY_KINDS),
    text: z.string(),
    repo: z.string(),
    createdAt: z.string(),
  })
  .passthrough();

/**
 * Opens a namespace with an embedder that carries the model and dimension its manifest records,
 * so stats, export and compact work whatever embedder the environment configures: they never
 * embed. A namespace without a manifest holds nothing yet, and takes the configured identity.
 */
async function withStoredEmbedder<T>(
  options: MemoryCommandOptions,
  namespace: ShownNamespace,
  use: (store: RepoMemory) => Promise<T>,
): Promise<T> {
  const memories = await openMemories(options, refusingEmbedder());
  const stored = await memories.identity(namespace).finally(() => memories.close());
  const identity = stored ?? createEmbedder(options.env);
  return withStore(options, namespace, refusingEmbedder(identity), use);
}

async function withStore<T>(
  options: MemoryCommandOptions,
  namespace: ShownNamespace,
  embedder: Embedder,
  use: (store: RepoMemory) => Promise<T>,
): Promise<T> {
  const memories = await openMemories(options, embedder);
  try {
    return await use(await memories.service.open({ ...namespace, name: namespace.repo }));
  } finally {
    await memories.close();
  }
}

/** The memories a command reads: on disk under `--data-dir`, or with DATABASE_URL in PostgreSQL. */
interface Memories {
  service: MemoryService;
  /** The model and dimension a namespace's memories were embedded with. */
  identity(namespace: MemoryNamespace): Promise<Pick<Embedder, "model" | "dimension"> | undefined>;
  /** Where they are, for messages. */
  where: string;
  close(): Promise<void>;
}

async function openMemories(options: MemoryCommandOptions, embedder: Embedder): Promise<Memories> {
  const { env, log } = options;
  if (env.DATABASE_URL) {
    const schema = env.TALOS_DATABASE_SCHEMA;
    const database = await Database.open({ url: env.DATABASE_URL, schema, log });
    const service = await PostgresMemory.open({
      database,
      schema,
      embedder,
      log,
      metrics: createMetrics(),
      maxOpenBytes: env.TALOS_MEMORY_MAX_OPEN_MB * 1024 * 1024,
    }).catch(async (error: unknown) => {
      await database.close();
      throw error;
    });
    return {
      service,
      identity: (namespace) => service.readIdentity(namespace),
      where: whereOf(options),
      close: async () => {
        await service.closeAll();
        await database.close();
      },
    };
  }
  await assertDirectory(options.dataDir);
  const registry = createRegistry(options, embedder);
  return {
    service: registry,
    identity: (namespace) => readEmbedderIdentity(registry.directoryOf(namespace)),
    where: whereOf(options),
    close: () => registry.closeAll(),
  };
}

function whereOf(options: MemoryCommandOptions): string {
  return options.env.DATABASE_URL
    ? `PostgreSQL (schema ${options.env.TALOS_DATABASE_SCHEMA})`
    : join(options.dataDir, "memory");
}

function createRegistry(options: MemoryCommandOptions, embedder: Embedder): MemoryRegistry {
  return createMemoryRegistry(
    { ...options.env, TALOS_DATA_DIR: options.dataDir },
    { embedder, clock: systemClock, log: options.log, metrics: createMetrics() },
  );
}

function directoryOf(options: MemoryCommandOptions, namespace: ShownNamespace): string {
  return createRegistry(options, refusingEmbedder()).directoryOf(namespace);
}

function refusingEmbedder(
  identity: Pick<Embedder, "model" | "dimension"> = { model: "none", dimension: 0 },
): Embedder {
  return {
    model: identity.model,
    dimension: identity.dimension,
    relatedScore: 0,
    embed: () => Promise.reject(new Error("this memory command does not embed text")),
  };
}

/** The store itself validates the manifest when it opens; this only reads the identity. */
async function readEmbedderIdentity(
  directory: string,
): Promise<Pick<Embedder, "model" | "dimension"> | undefined> {
  let text: string;
  try {
    text = await readFile(join(directory, "manifest.json"), "utf8");
  } catch (error) {
    // Nothing stored yet.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch {
    // Damaged: opening the store reports it, naming the file.
    return undefined;
  }
  const { model, dimension } = (manifest ?? {}) as Record<string, unknown>;
  return typeof model === "string" && typeof dimension === "number"
    ? { model, dimension }
    : undefined;
}

function sumStats(rows: NamespaceStats[]) {
  const byKind: Record<string, number> = {};
  for (const row of rows)
    for (const [kind, count] of Object.entries(row.byKind))
      byKind[kind] = (byKind[kind] ?? 0) + count;
  const sum = (field: "records" | "pending" | "segments" | "bytesOnDisk" | "bytesInRam") =>
    rows.reduce((total, row) => total + row[field], 0);
  return {
    namespaces: rows.length,
    records: sum("records"),
    byKind,
    pending: sum("pending"),
    segments: sum("segments"),
    bytesOnDisk: sum("bytesOnDisk"),
    bytesInRam: sum("bytesInRam"),
  };
}

const toShown = ({ installation, repository, name }: StoredNamespace): ShownNamespace => ({
  installation,
  repository,
  repo: name,
});

const nameOf = (namespace: ShownNamespace) => `${namespace.installation}/${namespace.repo}`;

function formatKinds(byKind: Record<string, number>): string {
  return Object.entries(byKind)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, count]) => `${kind} ${count}`)
    .join(", ");
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Columns padded to their widest cell; the numeric columns listed are right-aligned. Each cell is
 * made safe for a terminal, on one line: names and texts come from what was stored.
 */
function formatTable(table: string[][], rightAligned: number[]): string {
  const rows = table.map((row) => row.map((cell) => toTerminalText(cell, true)));
  const widths = rows[0]!.map((_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? "").length)),
  );
  return rows
    .map((row) =>
      row
        .map((cell, column) =>
          rightAligned.includes(column)
            ? cell.padStart(widths[column]!)
            : cell.padEnd(widths[column]!),
        )
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * A message for the terminal, which may name what was stored (a repository's name, a directory):
 * JSON is written with writeLine as it is, since an export must keep every character.
 */
function writeText(stream: Writable, text: string): Promise<void> {
  return writeLine(stream, toTerminalText(text));
}

/** Waits when the reader is slower: an export can run to many megabytes. */
async function writeLine(stream: Writable, line: string): Promise<void> {
  if (!stream.write(`${line}\n`)) await once(stream, "drain");
}

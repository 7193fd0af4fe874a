import { createConnection, createServer, type Socket } from "node:net";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APP_ROLE, Database, type MemoryDatabase } from "../../src/database/database.js";
import { PostgresMemory } from "../../src/database/postgres-memory.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { InvalidMemoryError, MemoryDeletedError } from "../../src/memory/memory-store.js";
import { MemoryMismatchError } from "../../src/memory/vectra-memory-store.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { openPgliteDatabase } from "../helpers/pglite-database.js";
import {
  RECORD_OVERHEAD_BYTES,
  SyncedIndexes,
  toFloat32,
} from "../../src/database/synced-indexes.js";
import { freshSchema, requirePostgres, TEST_DATABASE_URL } from "../helpers/shared-services.js";
import { eventually } from "../helpers/eventually.js";
import {
  countingEmbedder,
  issueMemory,
  keywordCrowdedMemories,
  LATE,
  overflowingEmbedder,
  said,
  seedThreadToForget,
  writeLateToThread7,
} from "../helpers/test-memory.js";

const available = await requirePostgres("the PostgreSQL memory tests");
const log = pino({ level: "silent" });

const ISSUES: Array<[number, string]> = [
  [1, "App crashes when saving a widget on Windows"],
  [2, "Dark mode colours are wrong in the settings page"],
  [3, "Saving a widget fails with permission denied"],
  [4, "Add support for exporting widgets to CSV"],
  [5, "Crash on startup after updating to 2.0"],
];
const ids = (hits: Array<{ record: { id: string } }>) => hits.map((h) => h.record.id);
const REF = { installation: 1, repository: 10, name: "acme/widgets" };

function openMemory(
  database: MemoryDatabase,
  embedder = createLocalEmbedder(),
  maxOpenBytes = 64 * 2 ** 20,
) {
  return PostgresMemory.open({
    database,
    schema: "talos",
    embedder,
    log,
    metrics: createMetrics(),
    maxOpenBytes,
  });
}

/** Calls `ran` with the SQL of every query `db` runs in a scope from now on, once it ran. */
function afterQueries(db: Database, ran: (sql: string) => void | Promise<void>): void {
  const inScope = db.inScope.bind(db);
  db.inScope = (scope, work) =>
    inScope(scope, (client) =>
      work(
        new Proxy(client, {
          get: (target, key) =>
            key === "query"
              ? async (...args: Parameters<typeof target.query>) => {
                  const result = await target.query(...args);
                  await ran(String(args[0]));
                  return result;
                }
              : Reflect.get(target, key, target),
        }),
      ),
    );
}

/** The SQL of every query `db` runs from now on. */
function recordQueries(db: Database): string[] {
  const queries: string[] = [];
  afterQueries(db, (sql) => void queries.push(sql));
  return queries;
}

const readsRecords = (queries: string[]) => queries.some((sql) => sql.includes("seq > $3"));

/**
 * A TCP proxy to the test PostgreSQL that can go silent: no byte passes either way, yet no
 * connection closes, as when a NAT or a load balancer forgets a connection, or in a partition.
 */
async function startSilentProxy() {
  const target = new URL(TEST_DATABASE_URL);
  const sockets = new Set<Socket>();
  let silent = false;
  const server = createServer((client) => {
    const upstream = createConnection({
      host: target.hostname,
      port: Number(target.port || 5432),
    });
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on("data", (data) => void (silent || to.write(data)));
      from.on("close", () => {
        sockets.delete(from);
        to.destroy();
      });
      from.on("error", () => undefined);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(TEST_DATABASE_URL);
  url.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url: url.toString(),
    silence: (on: boolean) => {
      silent = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What either search path must do, on a fresh namespace per test. */
function memoryContract(setUp: () => { database: () => MemoryDatabase; next: () => number }) {
  const context = setUp();
  const fresh = async () => {
    const memory = await openMemory(context.database());
    const ref = { ...REF, repository: context.next() };
    const repo = await memory.open(ref);
    return { memory, repo, ref };
  };

  it("stores, finds, updates and removes memories, durable when add resolves", async () => {
    const { memory, repo } = await fresh();
    await repo.addMany(ISSUES.map(([n, text]) => issueMemory(n, text)));
    const hits = await repo.search("saving a widget crashes on windows", { k: 2 });
    expect(ids(hits)[0]).toBe("issue-1");
    expect(hits[0]!.score).toBeGreaterThan(0.3);
    expect(await repo.get("issue-4")).toEqual({
      ...issueMemory(4, ISSUES[3]![1]),
      createdAt: "2026-11-01T10:00:00.000Z",
    });
    // A new text replaces the old; the same text again is not embedded again.
    await repo.add(issueMemory(2, "Export to PDF produces empty pages"));
    expect((await repo.get("issue-2"))?.text).toBe("Export to PDF produces empty pages");
    expect(ids(await repo.search("PDF export is empty", { k: 1 }))).toEqual(["issue-2"]);
    expect(await repo.remove("issue-1")).toBe(true);
    expect(await repo.remove("issue-1")).toBe(false);
    expect(ids(await repo.search("saving a widget crashes on windows", { k: 5 }))).not.toContain(
      "issue-1",
    );
    expect(await repo.get("issue-1")).toBeUndefined();
    const stats = await repo.stats();
    expect(stats.records).toBe(4);
    expect(stats.byKind).toEqual({ issue: 4 });
    expect((await repo.list()).map((r) => r.id)).toEqual([
      "issue-2",
      "issue-3",
      "issue-4",
      "issue-5",
    ]);
    await memory.closeAll();
  });

  it("lists its records in pages of 1,000 by id, each once", async () => {
    const { memory, repo } = await fresh();
    await repo.addMany(
      Array.from({ length: 1_001 }, (_, i) => issueMemory(i + 1, `Issue ${i + 1}`)),
    );
    const first = await repo.listPage();
    const second = await repo.listPage(first.next);
    const listed = (await repo.list()).map((r) => r.id);
    await memory.closeAll();

    expect(first.records).toHaveLength(1_000);
    expect(first.next).toBe(first.records.at(-1)!.id);
    expect(second).toEqual({ records: [expect.objectContaining({ id: listed.at(-1) })] });
    expect([...first.records, ...second.records].map((r) => r.id)).toEqual(listed);
    // 1,001 records through PGlite take 12 s here, and more than the default 30 s on a busy
    // machine.
  }, 120_000);

  it("forgets a deleted thread for good: its issue, answers and comments go, its notes stay, and nothing of it but a note is written again", async () => {
    const { memory, repo, ref } = await fresh();
    const kept = await seedThreadToForget(repo);

    expect(await repo.forgetThread(7)).toBe(4);
    expect(await repo.forgetThread(7)).toBe(0);
    expect(await repo.forgetThread(9)).toBe(0);
    expect(await repo.get("answer-70")).toBeUndefined();
    expect(await repo.get("issue-7")).toBeUndefined();
    await writeLateToThread7(repo);
    expect((await repo.list()).map((r) => r.id)).toEqual(kept);
    expect(ids(await repo.search("sk-live-1234 key leaked", { k: 5 }))).not.toContain("answer-70");
    expect((await repo.stats()).byKind).toEqual({ answer: 1, issue: 1, note: 2 });
    await memory.closeAll();
    // Another instance, or this one after a restart, reads them gone and refuses them too.
    const restarted = await openMemory(context.database());
    const again = await restarted.open(ref);
    expect((await again.list()).map((r) => r.id)).toEqual(kept);
    expect(ids(await again.search("sk-live-1234 key leaked", { k: 5 }))).not.toContain("summary-7");
    expect(await again.forgottenThreads()).toEqual([7, 9]);
    await again.add(said("answer-75", "answer", 7, "Back again?"));
    expect(await again.get("answer-75")).toBeUndefined();
    await restarted.closeAll();
  });

  it("resolves a write whose every record is refused, on a connection that never took a sequence number", async () => {
    const database = context.database();
    const { memory, repo } = await fresh();
    await repo.forgetThread(5);
    // As on a pooled connection fresh from the server: the session has no `currval` yet.
    const inScope = database.inScope.bind(database);
    database.inScope = async (scope, work) =>
      inScope(scope, async (client) => {
        await client.query("DISCARD SEQUENCES");
        return work(client);
      });
    try {
      await repo.add(issueMemory(5, "Deleted, back from a late edit?", LATE));
      expect(await repo.get("issue-5")).toBeUndefined();
    } finally {
      database.inScope = inScope;
      await memory.closeAll();
    }
  });

  it("applies the search's filters: kinds, state, time and excluded ids", async () => {
    const { memory, repo } = await fresh();
    await repo.addMany([
      issueMemory(1, "Crash when saving a widget"),
      issueMemory(2, "Crash when saving a widget twice", { state: "closed" }),
      issueMemory(3, "Crash when saving a widget again", { createdAt: "2025-01-01T00:00:00Z" }),
      {
        ...issueMemory(4, "Crash when saving a widget: a note"),
        id: "note-9",
        kind: "note",
      },
    ]);
    const query = "crash when saving a widget";
    expect(ids(await repo.search(query, { k: 9, kinds: ["note"] }))).toEqual(["note-9"]);
    expect(ids(await repo.search(query, { k: 9, state: "closed" }))).toEqual(["issue-2"]);
    expect(ids(await repo.search(query, { k: 9, since: "2026-01-01T00:00:00Z" })).sort()).toEqual([
      "issue-1",
      "issue-2",
      "note-9",
    ]);
    expect(
      ids(await repo.search(query, { k: 9, excludeIds: ["issue-1", "note-9"] })).sort(),
    ).toEqual(["issue-2", "issue-3"]);
    await memory.closeAll();
  });

  it("returns k hits that reach minScore when keyword-only hits below it outrank them in the fusion", async () => {
    // 30 records close to the query by meaning, with none of its words; 120 with its words and
    // a vector far from it. Cut at k before minScore, the fusion's first 100 were mostly the
    // latter, and fewer than 30 hits came back.
    const { query, inputs, embedder } = keywordCrowdedMemories();
    const memory = await openMemory(context.database(), embedder);
    const repo = await memory.open({ ...REF, repository: context.next() });
    await repo.addMany(inputs);
    const hits = await repo.search(query, { k: 30, minScore: 0.5 });
    expect(hits.every((hit) => hit.score >= 0.5)).toBe(true);
    expect(hits).toHaveLength(30);
    await memory.closeAll();
  });

  it("ranks a record sharing the query's error line first, and finds by keywords alone", async () => {
    const { memory, repo } = await fresh();
    // Vectors that say nothing about the words: only keywords and fingerprints can find.
    const blind = {
      model: "blind",
      relatedScore: 0.5,
      dimension: 8,
      embed: async (texts: string[]) =>
        texts.map((text) =>
          Float32Array.from({ length: 8 }, (_, i) => Math.sin(text.length * (i + 1))),
        ),
    };
    const blindMemory = await openMemory(context.database(), blind);
    const blindRepo = await blindMemory.open({ ...REF, repository: context.next() });
    await blindRepo.addMany([
      issueMemory(
        1,
        "Widgets vanish\n\nTypeError: Cannot read properties of undefined (reading 'frob')",
      ),
      issueMemory(2, "Exporting to CSV loses the header row"),
      issueMemory(3, "Dark mode colours are wrong"),
    ]);
    const dup = await blindRepo.search(
      "Crash\n\nTypeError: Cannot read properties of undefined (reading 'frob')",
      { k: 3 },
    );
    expect(ids(dup)[0]).toBe("issue-1");
    expect(dup[0]!.keyword).toBe(true);
    const keyword = await blindRepo.search("csv header", { k: 1, minScore: 2 });
    expect(ids(keyword)).toEqual(["issue-2"]);
    // A long issue: its rarity counts are bounded to its first words, the title's among them,
    // so the title still finds (filler words longer than any of the title's, each unknown).
    const filler = Array.from({ length: 3_000 }, (_, i) => `unheardofword${i}x`).join(" ");
    const long = await blindRepo.search(`CSV export drops the header\n\n${filler}`, { k: 3 });
    expect(long.filter((hit) => hit.keyword).map((hit) => hit.record.id)).toEqual(["issue-2"]);
    await blindMemory.closeAll();
    await memory.closeAll();
    void repo;
  });

  it("keeps backfill progress, names, and refuses a deleted memory's writes", async () => {
    const { memory, repo, ref } = await fresh();
    expect(await memory.has(ref)).toBe(true);
    expect(await memory.has({ ...ref, repository: ref.repository + 1_000_000 })).toBe(false);
    expect(await repo.readBackfillState()).toBeUndefined();
    await repo.saveBackfillState({ status: "running", page: 3, indexed: 200, repo: ref.name });
    expect(await memory.readBackfillState(ref)).toMatchObject({ status: "running", page: 3 });
    expect(await memory.rename({ ...ref, name: "acme/gadgets" })).toBe(true);
    expect((await memory.list()).find((n) => n.repository === ref.repository)?.name).toBe(
      "acme/gadgets",
    );
    await repo.add(issueMemory(1, "Crash on save"));
    expect(await memory.delete(ref)).toBe(true);
    expect(await memory.has(ref)).toBe(false);
    await expect(repo.add(issueMemory(2, "Another"))).rejects.toBeInstanceOf(MemoryDeletedError);
    await expect(repo.saveBackfillState({ status: "done", page: 9, indexed: 1 })).rejects.toThrow(
      MemoryDeletedError,
    );
    // Refused until added back to the installation (a job journaled before must not bring it
    // back); then empty.
    await expect(memory.open(ref)).rejects.toBeInstanceOf(MemoryDeletedError);
    expect(await memory.isRefused(ref)).toBe(true);
    expect(await memory.isRefused({ ...ref, repository: ref.repository + 1_000_000 })).toBe(false);
    await memory.readmit(ref);
    expect(await memory.isRefused(ref)).toBe(false);
    const again = await memory.open(ref);
    expect(await memory.has(ref)).toBe(true);
    expect(await again.list()).toEqual([]);
    expect(await again.readBackfillState()).toBeUndefined();
    await memory.closeAll();
  });

  it("tells whether one repository has a memory in one query, however many others have one", async () => {
    // An event of a repository whose memory is off asked `list`: one query per memory of every
    // installation (found by a review).
    const inner = context.database();
    let scopes = 0;
    const counting: MemoryDatabase = {
      vector: inner.vector,
      inScope: (scope, work) => {
        scopes++;
        return inner.inScope(scope, work);
      },
      asOwner: (sql) => inner.asOwner(sql),
      listen: (...args: Parameters<MemoryDatabase["listen"]>) => inner.listen(...args),
    };
    const memory = await openMemory(counting);
    const refs = Array.from({ length: 5 }, () => ({ ...REF, repository: context.next() }));
    for (const ref of refs) await memory.open(ref);
    scopes = 0;
    expect(await memory.has(refs[2]!)).toBe(true);
    expect(scopes).toBe(1);
    await memory.closeAll();
  });

  it("lets one instance at a time run a repository's backfill, until its claim lapses", async () => {
    const { memory, ref } = await fresh();
    expect(await memory.claimBackfill(ref, "a", 60_000)).toBe(true);
    expect(await memory.claimBackfill(ref, "b", 60_000)).toBe(false);
    // Renewed by its holder; given back by its holder only.
    expect(await memory.claimBackfill(ref, "a", 60_000)).toBe(true);
    expect(await memory.claimBackfill(ref, "b", 0)).toBe(false);
    expect(await memory.claimBackfill(ref, "a", 0)).toBe(true);
    expect(await memory.claimBackfill(ref, "b", 1)).toBe(true);
    // b's claim of 1 ms has lapsed (as a dead instance's does): another may take it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await memory.claimBackfill(ref, "a", 60_000)).toBe(true);
    await memory.closeAll();
  });

  it("refuses a memory embedded by another model", async () => {
    const { memory, ref } = await fresh();
    const other = await openMemory(context.database(), {
      ...createLocalEmbedder(),
      model: "another-model",
    });
    await expect(other.open(ref)).rejects.toBeInstanceOf(MemoryMismatchError);
    await memory.closeAll();
    await other.closeAll();
  });

  it("keeps the newer version of a source when an older one is written after it", async () => {
    const { memory, repo } = await fresh();
    const version = (text: string, updatedAt: string) =>
      issueMemory(1, text, { metadata: { updatedAt } });
    await repo.add(version("Newer", "2026-11-02T10:00:00Z"));
    await repo.add(version("Older", "2026-11-01T10:00:00.000+00:00"));
    expect((await repo.get("issue-1"))?.text).toBe("Newer");
    // In one batch too, whichever comes last; a write without a version still replaces it.
    await repo.addMany([
      version("Latest", "2026-11-03T10:00:00Z"),
      version("Old", "2026-11-01T00:00:00Z"),
    ]);
    expect(await repo.get("issue-1")).toMatchObject({
      text: "Latest",
      metadata: { updatedAt: "2026-11-03T10:00:00.000Z" },
    });
    await repo.add(issueMemory(1, "Unversioned"));
    expect((await repo.get("issue-1"))?.text).toBe("Unversioned");
    await memory.closeAll();
  });

  it("embeds only texts that changed", async () => {
    const { embedder, texts } = countingEmbedder();
    const memory = await openMemory(context.database(), embedder);
    const repo = await memory.open({ ...REF, repository: context.next() });
    await repo.add(issueMemory(1, "Crash on save"));
    await repo.add(issueMemory(1, "Crash on save", { state: "closed" }));
    expect(texts).toEqual(["Crash on save"]);
    expect(await repo.addMany([])).toEqual([]);
    // U+0000, which PostgreSQL's text cannot hold, is taken out (as on disk), in a query too.
    await repo.add(issueMemory(2, "Crash\u0000 on load"));
    expect((await repo.get("issue-2"))?.text).toBe("Crash on load");
    expect(ids(await repo.search("crash\u0000 on load", { k: 1 }))).toEqual(["issue-2"]);
    expect((await repo.get("issue-1"))?.state).toBe("closed");
    await memory.closeAll();
  });

  it("stores a batch holding a lone surrogate or an emoji cut at the text's end, and a backfill error quoting one", async () => {
    const { memory, repo } = await fresh();
    // PostgreSQL's JSON refuses a lone surrogate: the whole batch had failed, every try.
    await repo.addMany([
      issueMemory(1, "An ordinary issue about widgets"),
      issueMemory(2, "Hostile issue with a lone surrogate \ud800 in it"),
      issueMemory(3, `${"a".repeat(19_999)}😀 and more after the 20,000-character cut`),
    ]);
    expect((await repo.get("issue-1"))?.text).toBe("An ordinary issue about widgets");
    expect((await repo.get("issue-2"))?.text).toBe(
      "Hostile issue with a lone surrogate \ufffd in it",
    );
    expect((await repo.get("issue-3"))?.text).toBe("a".repeat(19_999));
    expect(ids(await repo.search("lone surrogate \udc00", { k: 1 }))).toEqual(["issue-2"]);
    await repo.saveBackfillState({
      status: "failed",
      repo: "acme/widgets",
      page: 1,
      indexed: 0,
      error: "page 1 failed once; last: 400 bad input \udc00",
      failedAt: "2026-12-07T00:00:00.000Z",
    });
    expect((await repo.readBackfillState())?.error).toBe(
      "page 1 failed once; last: 400 bad input \ufffd",
    );
    await memory.closeAll();
  });

  it("refuses a batch holding a vector that is not finite as an invalid memory, writing none of it", async () => {
    const memory = await openMemory(context.database(), overflowingEmbedder());
    const repo = await memory.open({ ...REF, repository: context.next() });
    // pgvector refused it for the whole batch with an error of its own; without pgvector it was
    // stored, and the in-RAM index could not load the repository's memory.
    await expect(
      repo.addMany([
        issueMemory(1, "App crashes when saving a widget on Windows"),
        issueMemory(2, "Numeric overflow in the exporter"),
      ]),
    ).rejects.toThrow(
      new InvalidMemoryError("the embedding of memory issue-2 holds a value that is not finite"),
    );
    expect(await repo.list()).toEqual([]);
    await repo.add(issueMemory(1, "App crashes when saving a widget on Windows"));
    expect(ids(await repo.search("widget crashes on Windows", { k: 1 }))).toEqual(["issue-1"]);
    await memory.closeAll();
  });

  it("deletes an installation's memories and refuses them afterwards", async () => {
    const memory = await openMemory(context.database());
    const installation = context.next();
    const a = { installation, repository: 1, name: "acme/a" };
    const b = { installation, repository: 2, name: "acme/b" };
    await (await memory.open(a)).add({ ...issueMemory(1, "Crash"), repo: "acme/a" });
    await (await memory.open(b)).add({ ...issueMemory(1, "Crash"), repo: "acme/b" });
    expect(await memory.deleteInstallation(installation)).toBe(true);
    await expect(memory.open(a)).rejects.toBeInstanceOf(MemoryDeletedError);
    // Every repository of it, as the local registry says, even one it never had a memory of.
    expect(await memory.isRefused({ installation, repository: 3 })).toBe(true);
    expect((await memory.list()).filter((n) => n.installation === installation)).toEqual([]);
    await memory.closeAll();
  });

  it("refuses a handle's writes once its installation is marked deleted, before its memories are", async () => {
    const memory = await openMemory(context.database());
    const ref = { ...REF, installation: context.next(), repository: 1 };
    const repo = await memory.open(ref);
    await repo.add(issueMemory(1, "Crash on save"));
    // Where an installation's deletion stops if it is interrupted between the two steps.
    await context.database().inScope({ installation: ref.installation }, (client) =>
      client.query(
        `INSERT INTO memory_namespaces (installation_id, repository_id, gone) VALUES ($1, 0, true)
         ON CONFLICT (installation_id, repository_id) DO UPDATE SET gone = true`,
        [ref.installation],
      ),
    );
    await expect(repo.add(issueMemory(2, "Another crash"))).rejects.toBeInstanceOf(
      MemoryDeletedError,
    );
    await expect(repo.remove("issue-1")).rejects.toBeInstanceOf(MemoryDeletedError);
    expect((await repo.list()).map((r) => r.id)).toEqual(["issue-1"]);
    await memory.closeAll();
  });
}

/** `database` as an instance sees it that runs without pgvector (it started before it was installed). */
function withoutVector(database: MemoryDatabase): MemoryDatabase {
  return {
    vector: false,
    inScope: (scope, work) => database.inScope(scope, work),
    asOwner: (sql) => database.asOwner(sql),
    // PGlite has no notifications; this instance alone reads here, and its own writes it reads.
    listen: async () => ({ listening: () => true, close: async () => undefined }),
  };
}

describe("memory in PGlite with pgvector: similarity search in SQL", () => {
  let pglite: Awaited<ReturnType<typeof openPgliteDatabase>>;
  let next = 1000;
  beforeAll(async () => {
    pglite = await openPgliteDatabase();
  }, 120_000);
  afterAll(() => pglite?.close());

  memoryContract(() => ({ database: () => pglite.database, next: () => next++ }));

  it("searches through the HNSW index of the embedding's dimension", async () => {
    const memory = await openMemory(pglite.database);
    expect(memory.searchesInSql).toBe(true);
    const repo = await memory.open({ ...REF, repository: next++ });
    await repo.addMany(ISSUES.map(([n, text]) => issueMemory(n, text)));
    const dimension = createLocalEmbedder().dimension;
    const indexes = await pglite.owner.query<{ indexdef: string }>(
      "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
      [`memory_records_hnsw_${dimension}`],
    );
    expect(indexes.rows[0]?.indexdef).toContain("USING hnsw");
    // The planner may use it for the search's ordering (with a seq scan ruled out).
    const unit = `[${Array.from({ length: dimension }, (_, i) => (i === 0 ? 1 : 0)).join(",")}]`;
    const plan = await pglite.owner.transaction(async (tx) => {
      await tx.exec(`SET LOCAL enable_seqscan = off; SET LOCAL search_path TO talos, public`);
      return tx.query<{ "QUERY PLAN": string }>(
        `EXPLAIN SELECT id FROM memory_records WHERE dimension = ${dimension}
          ORDER BY embedding_vector::halfvec(${dimension}) <=> $1::halfvec(${dimension}) LIMIT 5`,
        [unit],
      );
    });
    expect(plan.rows.map((row) => row["QUERY PLAN"]).join("\n")).toContain(
      `memory_records_hnsw_${dimension}`,
    );
    await memory.closeAll();
  });

  it("gives records written before pgvector was installed their vectors on first open", async () => {
    const memory = await openMemory(pglite.database);
    const ref = { ...REF, repository: next++ };
    await (await memory.open(ref)).addMany(ISSUES.map(([n, text]) => issueMemory(n, text)));
    const missing = async () =>
      (
        await pglite.owner.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM talos.memory_records
            WHERE repository_id = $1 AND embedding_vector IS NULL`,
          [ref.repository],
        )
      ).rows[0]!.n;
    // As rows written without the extension are.
    await pglite.owner.query(
      "UPDATE talos.memory_records SET embedding_vector = NULL WHERE repository_id = $1",
      [ref.repository],
    );
    expect(await missing()).toBe(5);
    const later = await openMemory(pglite.database);
    const repo = await later.open(ref);
    expect(await missing()).toBe(0);
    expect(ids(await repo.search("saving a widget crashes on windows", { k: 1 }))).toEqual([
      "issue-1",
    ]);
    await memory.closeAll();
    await later.closeAll();
  });

  it("finds by keyword the records an instance without pgvector wrote, once opened with it", async () => {
    const ref = { ...REF, repository: next++ };
    const ram = await openMemory(withoutVector(pglite.database));
    await (
      await ram.open(ref)
    ).addMany([
      issueMemory(1, "Zyxwvut frobnicator explodes"),
      issueMemory(2, "Dark mode colours are wrong in the settings page"),
    ]);
    const sql = await openMemory(pglite.database);
    const hits = await (await sql.open(ref)).search("zyxwvut", { k: 5 });
    expect(hits.filter((hit) => hit.keyword).map((hit) => hit.record.id)).toEqual(["issue-1"]);
    await ram.closeAll();
    await sql.closeAll();
  });

  it("clears the vector of a record updated without pgvector, and recomputes it at the next first open", async () => {
    const ref = { ...REF, repository: next++ };
    const sql = await openMemory(pglite.database);
    await (await sql.open(ref)).add(issueMemory(2, "Dark mode colours are wrong"));
    const ram = await openMemory(withoutVector(pglite.database));
    const stored = async () =>
      (
        await pglite.owner.query<{ v: string | null; embedding: Uint8Array }>(
          "SELECT embedding_vector::text AS v, embedding FROM talos.memory_records WHERE repository_id = $1",
          [ref.repository],
        )
      ).rows;
    await (await ram.open(ref)).add(issueMemory(2, "Export to PDF produces empty pages"));
    // Cleared rather than left as the vector of a text the record no longer has.
    expect((await stored())[0]!.v).toBeNull();
    const later = await openMemory(pglite.database);
    await later.open(ref);
    const rows = await stored();
    const vector = JSON.parse(rows[0]!.v!) as number[];
    const embedding = toFloat32(rows[0]!.embedding);
    // The new text's vector, not the old one's.
    expect(Math.max(...vector.map((x, i) => Math.abs(x - embedding[i]!)))).toBeLessThan(1e-6);
    for (const memory of [sql, ram, later]) await memory.closeAll();
  });

  it("shows a transaction only its own repository's records (row-level security)", async () => {
    const memory = await openMemory(pglite.database);
    const repository = next++;
    await (await memory.open({ ...REF, repository })).add(issueMemory(1, "Secret crash"));
    const seen = (installation: number, repo: number) =>
      pglite.database.inScope(
        { installation, repository: repo },
        async (client) => (await client.query("SELECT id FROM memory_records")).rows.length,
      );
    expect(await seen(1, repository)).toBe(1);
    expect(await seen(1, repository + 1)).toBe(0);
    expect(await seen(2, repository)).toBe(0);
    await memory.closeAll();
  });
});

describe.runIf(available)("memory in PostgreSQL without pgvector: synced indexes in RAM", () => {
  const schema = freshSchema("talos_test");
  const schemas = [schema];
  const opened: Database[] = [];
  let database: Database;
  let next = 1000;
  const open = async (inSchema = schema) => {
    const db = await Database.open({ url: TEST_DATABASE_URL, schema: inSchema, log });
    opened.push(db);
    return db;
  };
  beforeAll(async () => {
    database = await open();
  });
  afterAll(async () => {
    for (const db of opened) await db.close();
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    for (const dropped of schemas) await client.query(`DROP SCHEMA IF EXISTS "${dropped}" CASCADE`);
    await client.end();
  });

  memoryContract(() => ({ database: () => database, next: () => next++ }));

  describe("warming up at start", () => {
    const own = freshSchema("talos_test");
    schemas.push(own);
    const embedder = createLocalEmbedder();
    // Written in this order, with 1, 2 and 3 records; then a memory of another model, last.
    const refs = [1, 2, 3].map((i) => ({ ...REF, repository: 500 + i }));
    const newest = refs[2]!;
    const perRecord = embedder.dimension + RECORD_OVERHEAD_BYTES;
    beforeAll(async () => {
      const writer = await openMemory(await open(own), embedder);
      for (const [i, ref] of refs.entries())
        await (
          await writer.open(ref)
        ).addMany(ISSUES.slice(0, i + 1).map(([n, text]) => issueMemory(n, text)));
      const other = await openMemory(await open(own), { ...embedder, model: "other-model" });
      await (await other.open({ ...REF, repository: 600 })).add(issueMemory(1, "Crash on startup"));
      await writer.closeAll();
      await other.closeAll();
    });

    it("loads every memory of its model within the cap: a first search reads no records", async () => {
      const db = await open(own);
      const memory = await openMemory(db, embedder);
      expect(await memory.warm()).toBe(3);
      expect(memory.openStores().stores).toBe(3);
      const queries = recordQueries(db);
      const repo = await memory.open(newest);
      expect(ids(await repo.search("crash when saving a widget", { k: 1 }))).toEqual(["issue-1"]);
      expect(readsRecords(queries)).toBe(false);
      await memory.closeAll();
      // Without the warm-up, the same search reads the memory's records first.
      const coldDb = await open(own);
      const cold = await openMemory(coldDb, embedder);
      const coldQueries = recordQueries(coldDb);
      await (await cold.open(newest)).search("crash when saving a widget", { k: 1 });
      expect(readsRecords(coldQueries)).toBe(true);
      await cold.closeAll();
    });

    it("stops at the cap, having loaded the memory written last", async () => {
      const one = await openMemory(await open(own), embedder, 3 * perRecord);
      expect(await one.warm()).toBe(1);
      // The same bytes as that memory's index loaded by a search, and nothing else.
      const reference = await openMemory(await open(own), embedder);
      await (await reference.open(newest)).search("crash", { k: 1 });
      expect(one.openStores()).toEqual(reference.openStores());
      const none = await openMemory(await open(own), embedder, 3 * perRecord - 1);
      expect(await none.warm()).toBe(0);
      expect(none.openStores().stores).toBe(0);
      for (const memory of [one, reference, none]) await memory.closeAll();
    });
  });

  it("finds through instance B a memory added through A, told by a notification", async () => {
    const [a, b] = [await openMemory(await open()), await openMemory(await open())];
    expect(b.searchesInSql).toBe(false);
    const ref = { ...REF, repository: next++ };
    const [repoA, repoB] = [await a.open(ref), await b.open(ref)];
    await repoA.add(issueMemory(1, "Dark mode colours are wrong"));
    // B's index is loaded and current: its next searches read nothing unless told.
    expect(ids(await repoB.search("dark mode colours", { k: 3 }))).toEqual(["issue-1"]);
    expect(b.openStores().stores).toBe(1);
    await repoA.add(issueMemory(2, "App crashes when saving a widget on Windows"));
    await eventually(
      async () => ids(await repoB.search("saving a widget crashes", { k: 1 }))[0] === "issue-2",
      "B to find A's memory",
    );
    // A removal and an update travel the same way.
    await repoA.remove("issue-1");
    await repoA.add(issueMemory(2, "Export to PDF produces empty pages"));
    await eventually(async () => {
      const hits = ids(await repoB.search("dark mode colours pdf export", { k: 5 }));
      return !hits.includes("issue-1") && hits.includes("issue-2");
    }, "B to see A's removal and update");
    expect((await repoB.get("issue-2"))?.text).toBe("Export to PDF produces empty pages");
    // Deleted through A: B's index empties, and B's handle may not write.
    await a.delete(ref);
    await eventually(
      async () => (await repoB.search("pdf export", { k: 5 }).catch(() => [])).length === 0,
      "B to drop the deleted memory",
    );
    await expect(repoB.add(issueMemory(3, "Late write"))).rejects.toBeInstanceOf(
      MemoryDeletedError,
    );
    await a.closeAll();
    await b.closeAll();
  });

  it("finds through B, within seconds, a memory added through A while B's notifications went silent", async () => {
    const proxy = await startSilentProxy();
    const listening = await Database.open({ url: proxy.url, schema, log });
    opened.push(listening);
    // B's queries go straight to PostgreSQL: only its listening connection goes through the proxy.
    const direct = await open();
    const queries = recordQueries(direct);
    const [a, b] = [
      await openMemory(database),
      await openMemory({
        vector: false,
        inScope: (scope, work) => direct.inScope(scope, work),
        asOwner: (sql) => direct.asOwner(sql),
        listen: (channel, handlers) => listening.listen(channel, handlers),
      }),
    ];
    try {
      const ref = { ...REF, repository: next++ };
      const [repoA, repoB] = [await a.open(ref), await b.open(ref)];
      await repoA.add(issueMemory(1, "Dark mode colours are wrong"));
      expect(ids(await repoB.search("dark mode colours", { k: 3 }))).toEqual(["issue-1"]);
      proxy.silence(true);
      await repoA.add(issueMemory(2, "App crashes when saving a widget on Windows"));
      await eventually(
        async () => ids(await repoB.search("saving a widget crashes", { k: 1 }))[0] === "issue-2",
        "B to find A's memory though told nothing",
        8_000,
      );
      // Reconnections reach nothing while it lasts: each must give up rather than hang. Known
      // deaf, B reads before every search.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      await repoA.add(issueMemory(4, "Export to CSV loses the header row"));
      expect(ids(await repoB.search("csv export header row", { k: 1 }))).toEqual(["issue-4"]);
      // Heard again: B's searches read nothing unless told, and it is told.
      proxy.silence(false);
      await eventually(
        async () => {
          const before = queries.length;
          await repoB.search("dark mode colours", { k: 1 });
          return !readsRecords(queries.slice(before));
        },
        "B to listen again",
        10_000,
      );
      await repoA.add(issueMemory(3, "Export to PDF produces empty pages"));
      await eventually(
        async () => ids(await repoB.search("pdf export is empty", { k: 1 }))[0] === "issue-3",
        "B to be told of A's next memory",
      );
    } finally {
      proxy.silence(false);
      await a.closeAll();
      await b.closeAll();
      await proxy.close();
    }
  });

  it("deletes a memory that was being opened as its installation was deleted", async () => {
    const [dbA, dbB] = [await open(), await open()];
    const [a, b] = [await openMemory(dbA), await openMemory(dbB)];
    const installation = next++;
    const one = { installation, repository: 1, name: "acme/one" };
    const two = { installation, repository: 2, name: "acme/two" };
    await (await a.open(one)).add({ ...issueMemory(1, "Crash"), repo: one.name });
    // B's open of a new memory stops just before it commits, until A's deletion is under way.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let paused!: () => void;
    const pausedBeforeCommit = new Promise<void>((resolve) => (paused = resolve));
    afterQueries(dbB, async (sql) => {
      if (!/INSERT INTO memory_namespaces .* VALUES \(\$1, \$2\)/s.test(sql)) return;
      paused();
      await released;
    });
    const opening = b.open(two);
    await pausedBeforeCommit;
    const deleting = a.deleteInstallation(installation);
    // Long enough for the deletion to end, unless the open holds it back.
    await Promise.race([deleting, new Promise((resolve) => setTimeout(resolve, 500))]);
    release();
    const repo = await opening;
    expect(await deleting).toBe(true);
    await expect(
      repo.add({ ...issueMemory(1, "Written after the deletion"), repo: two.name }),
    ).rejects.toBeInstanceOf(MemoryDeletedError);
    expect((await a.list()).filter((n) => n.installation === installation)).toEqual([]);
    await expect(b.open(two)).rejects.toBeInstanceOf(MemoryDeletedError);
    await a.closeAll();
    await b.closeAll();
  });

  it("has a caller wait for a load under way, rather than use what it has read so far", async () => {
    const writer = await openMemory(database);
    const ref = { ...REF, repository: next++ };
    await (await writer.open(ref)).addMany(ISSUES.map(([n, text]) => issueMemory(n, text)));
    await writer.closeAll();
    const indexes = await SyncedIndexes.open({
      database: await open(),
      dimension: createLocalEmbedder().dimension,
      maxBytes: 2 ** 26,
      log,
    });
    // The first loads the index; the second arrives while it reads. Each reads the size the
    // moment it gets the index.
    const sizes = await Promise.all([
      indexes.get(ref).then((index) => index.size),
      indexes.get(ref).then((index) => index.size),
    ]);
    expect(sizes).toEqual([ISSUES.length, ISSUES.length]);
    await indexes.close();
  });

  it("shows the app's role nothing of memory without the installation setting", async () => {
    const memory = await openMemory(database);
    await (await memory.open({ ...REF, repository: next++ })).add(issueMemory(1, "Secret crash"));
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query("BEGIN");
      await client.query(`SET LOCAL ROLE ${APP_ROLE}`);
      const records = await client.query(`SELECT * FROM "${schema}".memory_records`);
      const repositories = await client.query(`SELECT * FROM "${schema}".memory_repositories`);
      await client.query("ROLLBACK");
      expect(records.rows).toEqual([]);
      expect(repositories.rows).toEqual([]);
      // As the owner, the rows are there.
      const all = await client.query(`SELECT count(*)::int AS n FROM "${schema}".memory_records`);
      expect(all.rows[0].n).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
    await memory.closeAll();
  });
});

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { backfillProgressIn } from "../../src/memory/backfill-repository.js";
import { MemoryLockedError } from "../../src/memory/directory-lock.js";
import type { Embedder } from "../../src/memory/embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { MemoryRegistry, type RepositoryRef } from "../../src/memory/memory-registry.js";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import { VectraMemoryStore } from "../../src/memory/vectra-memory-store.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { holdLockInChild } from "../helpers/hold-lock-in-child.js";
import { makeDataDir } from "../helpers/test-app.js";
import { holdingEmbedder, issueMemory, openTestStore } from "../helpers/test-memory.js";

const WIDGETS: RepositoryRef = { installation: 7, repository: 101, name: "acme/widgets" };

function registry(directory = join(makeDataDir(), "memory"), options: Partial<Registry> = {}) {
  return new MemoryRegistry({
    directory,
    embedder: createLocalEmbedder(),
    // Nothing is flushed unless closed: what a close must not lose is in the log only.
    batchSize: 10_000,
    flushMs: 600_000,
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
    ...options,
  });
}
type Registry = ConstructorParameters<typeof MemoryRegistry>[0];

const repo = (repository: number, name = `acme/repo-${repository}`): RepositoryRef => ({
  installation: 7,
  repository,
  name,
});

const memoryOf = (name: string, number: number, text: string) =>
  issueMemory(number, text, { repo: name, url: `https://github.com/${name}/issues/${number}` });

describe("memory namespaces by installation and repository id", () => {
  it("keeps a directory per installation and repository id, naming the repository in repository.json", async () => {
    const directory = join(makeDataDir(), "memory");
    const memories = registry(directory);
    const a = await memories.open(WIDGETS);
    const b = await memories.open({ ...WIDGETS, installation: 8 });
    await a.add(memoryOf("acme/widgets", 1, "A secret crash in the billing module"));

    expect(await b.search("secret crash in the billing module", { k: 5 })).toEqual([]);
    expect(await b.list()).toEqual([]);
    expect(memories.directoryOf(WIDGETS)).toBe(join(directory, "7", "101"));
    expect(
      JSON.parse(readFileSync(join(directory, "7", "101", "repository.json"), "utf8")),
    ).toEqual({ installation: 7, repository: 101, name: "acme/widgets" });
    expect(await memories.list()).toEqual([
      { installation: 7, repository: 101, name: "acme/widgets" },
      { installation: 8, repository: 101, name: "acme/widgets" },
    ]);
    await memories.closeAll();
  });

  it("refuses ids that are not positive whole numbers, and names that could leave the directory", async () => {
    const memories = registry();
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => memories.directoryOf({ installation: bad, repository: 1 })).toThrow(
        /not a memory namespace/,
      );
      expect(() => memories.directoryOf({ installation: 1, repository: bad })).toThrow(
        /not a memory namespace/,
      );
    }
    for (const name of ["../etc", "acme/..", "acme/widgets/extra", "acme", "ac me/widgets"]) {
      await expect(memories.open({ ...WIDGETS, name })).rejects.toThrow(/not a repository name/);
    }
  });

  it("refuses a record of another repository than the one the event named", async () => {
    const memories = registry();
    const memory = await memories.open(WIDGETS);
    await expect(memory.add(memoryOf("evil/elsewhere", 1, "x"))).rejects.toThrow(
      "a memory of evil/elsewhere cannot go into the memory of acme/widgets",
    );
    await memories.closeAll();
  });

  it("keeps the memory through a rename, under the new name", async () => {
    const directory = join(makeDataDir(), "memory");
    const memories = registry(directory);
    await (await memories.open(WIDGETS)).add(memoryOf("acme/widgets", 1, "Crash on save"));

    expect(await memories.rename({ ...WIDGETS, name: "acme/gizmos" })).toBe(true);
    expect((await memories.list())[0]).toMatchObject({ repository: 101, name: "acme/gizmos" });
    const renamed = await memories.open({ ...WIDGETS, name: "acme/gizmos" });
    await renamed.add(memoryOf("acme/gizmos", 2, "Dark mode"));
    expect((await renamed.list()).map((r) => [r.id, r.repo])).toEqual([
      ["issue-1", "acme/widgets"],
      ["issue-2", "acme/gizmos"],
    ]);
    // An event that shows yet another name records it too.
    await memories.open({ ...WIDGETS, name: "Acme/Gizmos-2" });
    expect((await memories.list())[0]!.name).toBe("Acme/Gizmos-2");
    // Renaming a repository without memory creates none.
    expect(await memories.rename({ ...WIDGETS, repository: 999 })).toBe(false);
    expect(existsSync(join(directory, "7", "999"))).toBe(false);
    await memories.closeAll();
  });
});

describe("deleting memory", () => {
  it("deletes a repository's memory and backfill progress; handles opened before refuse to write", async () => {
    const directory = join(makeDataDir(), "memory");
    const memories = registry(directory);
    const memory = await memories.open(WIDGETS);
    await memory.add(memoryOf("acme/widgets", 1, "Crash on save"));
    await memory.saveBackfillState({ status: "done", page: 2, indexed: 1 });
    const other = await memories.open(repo(102));
    await other.add(memoryOf("acme/repo-102", 1, "Kept"));

    expect(await memories.has(WIDGETS)).toBe(true);
    expect(await memories.has(repo(999))).toBe(false);
    expect(await memories.delete(WIDGETS)).toBe(true);

    expect(await memories.has(WIDGETS)).toBe(false);
    expect(existsSync(join(directory, "7", "101"))).toBe(false);
    expect(readdirSync(join(directory, ".trash"))).toEqual([]);
    await expect(memory.add(memoryOf("acme/widgets", 2, "Too late"))).rejects.toThrow(
      MemoryDeletedError,
    );
    await expect(
      memory.saveBackfillState({ status: "running", page: 3, indexed: 1 }),
    ).rejects.toThrow(MemoryDeletedError);
    expect(existsSync(join(directory, "7", "101"))).toBe(false);
    expect(await (await memories.open(repo(102))).get("issue-1")).toMatchObject({ text: "Kept" });
    // Removed (not deleted), a repository may come back once added again: its memory empty.
    await expect(memories.open(WIDGETS)).rejects.toThrow(MemoryDeletedError);
    expect(await memories.isRefused(WIDGETS)).toBe(true);
    expect(await memories.isRefused(repo(102))).toBe(false);
    await memories.readmit(WIDGETS);
    expect(await memories.isRefused(WIDGETS)).toBe(false);
    const again = await memories.open(WIDGETS);
    expect(await memories.has(WIDGETS)).toBe(true);
    expect(await again.list()).toEqual([]);
    expect(await again.readBackfillState()).toBeUndefined();
    await memories.closeAll();
  });

  it("refuses every later open of a deleted repository", async () => {
    const memories = registry();
    await (await memories.open(WIDGETS)).add(memoryOf("acme/widgets", 1, "x"));
    await memories.delete(WIDGETS);
    await expect(memories.open(WIDGETS)).rejects.toThrow(
      "the memory of acme/widgets (installation 7, repository 101) was deleted with its repository",
    );
    expect(await memories.list()).toEqual([]);
  });

  it("keeps refusing deleted memories after a restart, until a repository is added back", async () => {
    const directory = join(makeDataDir(), "memory");
    const before = registry(directory);
    for (const r of [1, 2])
      await (await before.open(repo(r))).add(memoryOf(`acme/repo-${r}`, 1, "x"));
    const elsewhere = { ...repo(3), installation: 8 };
    await (await before.open(elsewhere)).add(memoryOf("acme/repo-3", 1, "y"));
    await before.delete(repo(1));
    await before.deleteInstallation(8);
    await before.closeAll();

    const after = registry(directory);
    await expect(after.open(repo(1))).rejects.toThrow(/was deleted with its repository/);
    await expect(after.open(elsewhere)).rejects.toThrow(/was deleted with its installation/);
    expect(existsSync(join(directory, "7", "1"))).toBe(false);
    expect((await after.open(repo(2))).name).toBe("acme/repo-2");
    // A deleted installation never comes back (a new install has a new id): readmit is moot.
    expect(await after.isRefused(elsewhere)).toBe(true);
    await after.readmit(elsewhere);
    expect(await after.isRefused(elsewhere)).toBe(true);
    await expect(after.open(elsewhere)).rejects.toThrow(MemoryDeletedError);
    expect(await after.isRefused(repo(1))).toBe(true);
    await after.readmit(repo(1));
    await after.closeAll();

    const again = registry(directory);
    expect(await (await again.open(repo(1))).list()).toEqual([]);
    await again.closeAll();
  });

  it("waits for a call in use, then deletes; an open meanwhile is refused, never given the half-deleted one", async () => {
    const directory = join(makeDataDir(), "memory");
    const { embedder, holding, release } = holdingEmbedder("slow");
    const memories = registry(directory, { embedder });
    const memory = await memories.open(WIDGETS);
    await memory.add(memoryOf("acme/widgets", 1, "Old memory"));

    const inUse = memory.add(memoryOf("acme/widgets", 2, "A slow write"));
    await holding;
    let deleted = false;
    const deletion = memories.delete(WIDGETS).then(() => (deleted = true));
    // A job for that repository arriving at the same moment.
    const opening = memories.open(WIDGETS).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(deleted).toBe(false);
    expect(existsSync(join(directory, "7", "101", "repository.json"))).toBe(true);

    release();
    await inUse;
    await deletion;
    expect(await opening).toBeInstanceOf(MemoryDeletedError);
    await expect(memory.get("issue-1")).rejects.toThrow(MemoryDeletedError);
    expect(existsSync(join(directory, "7", "101"))).toBe(false);
    await memories.closeAll();
  });

  it("deletes an installation's memories, and only that installation's", async () => {
    const directory = join(makeDataDir(), "memory");
    const memories = registry(directory);
    await (await memories.open(repo(1))).add(memoryOf("acme/repo-1", 1, "x"));
    await (await memories.open(repo(2))).add(memoryOf("acme/repo-2", 1, "y"));
    const kept = await memories.open({ ...repo(1), installation: 8 });
    await kept.add(memoryOf("acme/repo-1", 1, "z"));

    expect(await memories.deleteInstallation(7)).toBe(true);

    expect(readdirSync(directory).sort()).toEqual([".trash", "8", "removed.json"]);
    await expect(memories.open(repo(3))).rejects.toThrow(/was deleted with its installation/);
    expect(await kept.list()).toHaveLength(1);
    await memories.closeAll();
  });

  it("deletes an installation while one of its repositories is being deleted", async () => {
    // An uninstall delivered while a repository's deletion (or removal) is handled: each moved
    // or locked what the other was moving away, and the installation's memories stayed.
    const directory = join(makeDataDir(), "memory");
    const memories = registry(directory);
    for (const r of [1, 2, 3])
      await (await memories.open(repo(r))).add(memoryOf(`acme/repo-${r}`, 1, `memory ${r}`));
    // Idle stores closed, as past the RAM cap or after a restart.
    await memories.closeAll();

    const installation = memories.deleteInstallation(7);
    const repository = memories.delete({ ...repo(2), name: "acme/repo-2" });

    expect(await installation).toBe(true);
    await expect(repository).resolves.toBeTypeOf("boolean");
    expect(readdirSync(directory).sort()).toEqual([".trash", "removed.json"]);
    expect(readdirSync(join(directory, ".trash"))).toEqual([]);
  });

  it("fails clearly, deleting nothing, while another process holds the memory", async () => {
    const directory = join(makeDataDir(), "memory");
    const memories = registry(directory);
    await (await memories.open(WIDGETS)).add(memoryOf("acme/widgets", 1, "x"));
    await memories.closeAll();
    const child = await holdLockInChild(memories.directoryOf(WIDGETS));
    try {
      await expect(memories.delete(WIDGETS)).rejects.toThrow(MemoryLockedError);
      expect(existsSync(join(directory, "7", "101", "repository.json"))).toBe(true);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("open stores bounded by their RAM", () => {
  it("leaves a memory whose repository.json is damaged out of the list, saying so, and writes the file again at its repository's next open", async () => {
    const directory = join(makeDataDir(), "memory");
    const writer = registry(directory);
    for (const r of [1, 2])
      await (await writer.open(repo(r))).add(memoryOf(`acme/repo-${r}`, 1, `Issue of ${r}`));
    await writer.closeAll();
    const file = join(directory, "7", "1", "repository.json");
    writeFileSync(file, '{"installation": 7, "repos');

    const errors: Array<{ msg: string; file?: string }> = [];
    const log = pino(
      { level: "warn" },
      { write: (line: string) => void errors.push(JSON.parse(line) as { msg: string }) },
    );
    const memories = registry(directory, { log });
    expect((await memories.list()).map((n) => n.repository)).toEqual([2]);
    // Left out of the list only to say so: it has a memory (its thread's events forget in it).
    expect(await memories.has(repo(1))).toBe(true);
    expect(errors).toContainEqual(
      expect.objectContaining({
        file,
        msg: "memory left out of the list: its repository.json is damaged; its repository's next event writes it again",
      }),
    );
    // The event names it: its records are all there, and the file is whole again.
    expect(await (await memories.open(repo(1))).get("issue-1")).toMatchObject({
      text: "Issue of 1",
    });
    expect(await memories.list()).toEqual([
      { installation: 7, repository: 1, name: "acme/repo-1" },
      { installation: 7, repository: 2, name: "acme/repo-2" },
    ]);
    await memories.closeAll();
  });

  it("estimates a store's RAM from its vectors and texts", async () => {
    const store = await openTestStore(makeDataDir());
    const empty = store.estimateBytes();
    const text = "x".repeat(10_000);
    await store.addMany(Array.from({ length: 100 }, (_, i) => issueMemory(i + 1, `${i} ${text}`)));
    // 100 vectors of 512 float32s, and 100 texts of 10,000 characters.
    expect(store.estimateBytes() - empty).toBeGreaterThanOrEqual(100 * 10_000);
    expect(store.estimateBytes()).toBeGreaterThanOrEqual(100 * 512 * 4);
    await store.close();
  });

  it("closes the least recently used idle stores past the cap, losing nothing, and never a store in use", async () => {
    const cap = 2 * 2 ** 20;
    const { embedder, holding, release } = holdingEmbedder("slow");
    let collections = 0;
    const collectGarbage = () => collections++;
    const memories = registry(undefined, { embedder, maxOpenBytes: cap, collectGarbage });
    const text = "y".repeat(20_000);

    // Repository 1 is busy for the whole test.
    const busy = await memories.open(repo(1));
    const inUse = busy.add(memoryOf("acme/repo-1", 1, "A slow write"));
    await holding;

    let most = 0;
    for (let r = 2; r <= 21; r++) {
      const memory = await memories.open(repo(r));
      await memory.addMany(
        Array.from({ length: 20 }, (_, i) =>
          memoryOf(`acme/repo-${r}`, i + 1, `${r} ${i} ${text}`),
        ),
      );
      await memories.whenSettled();
      const open = memories.openStores();
      most = Math.max(most, open.stores);
      expect(open.bytes).toBeLessThanOrEqual(cap);
      expect(open.inUse).toBe(1);
    }
    // Twenty stores of about 1 MiB each did not all stay open.
    expect(most).toBeLessThan(10);
    // One full collection for each store closed (their WebAssembly memory is freed by one).
    expect(collections).toBe(21 - memories.openStores().stores);

    release();
    expect(await inUse).toMatchObject({ id: "issue-1" });
    // Every evicted store reopens with all it held: the close flushed, or the log kept it.
    for (let r = 2; r <= 21; r++) {
      const records = await (await memories.open(repo(r))).list();
      expect(records).toHaveLength(20);
      await memories.whenSettled();
      expect(memories.openStores().bytes).toBeLessThanOrEqual(cap);
    }
    expect(await busy.get("issue-1")).toMatchObject({ text: "A slow write" });
    await memories.closeAll();
  });

  it("closes only what the cap needs, however many calls end while a store is being closed", async () => {
    const directory = join(makeDataDir(), "memory");
    const text = "text ".repeat(2000);
    const records = (r: number) =>
      Array.from({ length: 40 }, (_, i) => memoryOf(`acme/repo-${r}`, i + 1, `${r} ${i} ${text}`));
    const probe = registry(directory);
    await (await probe.open(repo(99))).addMany(records(99));
    const one = probe.openStores().bytes;
    await probe.closeAll();

    // Room for four stores and a half. Their records are not flushed: a close writes them.
    const memories = registry(directory, { maxOpenBytes: Math.floor(4.5 * one) });
    const handles = [];
    for (let r = 1; r <= 5; r++) {
      const memory = await memories.open(repo(r));
      await memory.addMany(records(r));
      handles.push(memory);
    }
    // The fifth went over the cap, so the first is being closed; calls go on meanwhile.
    for (let i = 0; i < 3; i++) await handles[4]!.get("issue-1");
    await handles[3]!.get("issue-1");
    await memories.whenSettled();

    expect(memories.openStores().stores).toBe(4);
    for (const memory of handles) expect(await memory.list()).toHaveLength(40);
    await memories.closeAll();
  });
});

describe("stores closed by the cap while adds and flushes run on them", () => {
  it("keeps every acknowledged add and never has one directory open twice", async () => {
    const directory = join(makeDataDir(), "memory");
    // Flushes all the time, in the background too (the timer), and every call that ends closes
    // every other idle store: each is opened again at its next call.
    const options = { batchSize: 2, flushMs: 1, maxOpenBytes: 1, collectGarbage: () => {} };
    let opens = 0;
    const openNow = new Map<string, number>();
    const open = VectraMemoryStore.open.bind(VectraMemoryStore);
    const counting = async (o: Parameters<typeof VectraMemoryStore.open>[0]) => {
      const store = await open(o);
      opens++;
      openNow.set(o.directory, (openNow.get(o.directory) ?? 0) + 1);
      if (openNow.get(o.directory)! > 1) throw new Error(`two open stores of ${o.directory}`);
      const close = store.close.bind(store);
      store.close = async () => {
        try {
          await close();
        } finally {
          openNow.set(o.directory, openNow.get(o.directory)! - 1);
        }
      };
      return store;
    };
    const statics = VectraMemoryStore as unknown as { open: typeof counting };
    statics.open = counting;
    try {
      const memories = registry(directory, options);
      const refs = [1, 2, 3].map((r) => repo(r));
      const handles = await Promise.all(refs.map((ref) => memories.open(ref)));
      const acked: string[][] = [[], [], []];
      await Promise.all(
        handles.map(async (memory, r) => {
          for (let i = 1; i <= 40; i++) {
            await memory.add(memoryOf(memory.name, i, `issue ${i} of repo ${r}`));
            acked[r]!.push(`issue-${i}`);
            if (i % 7 === 0) {
              await memory.remove(`issue-${i - 1}`);
              acked[r] = acked[r]!.filter((id) => id !== `issue-${i - 1}`);
            }
            if (i % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
          }
        }),
      );
      await memories.closeAll();
      expect(opens).toBeGreaterThan(6);
      const again = registry(directory, options);
      for (const [r, ref] of refs.entries()) {
        const ids = await again.look(ref, async (store) => (await store.list()).map((m) => m.id));
        expect(ids.sort()).toEqual([...acked[r]!].sort());
      }
      await again.closeAll();
    } finally {
      statics.open = open;
    }
    expect([...openNow.values()].every((n) => n === 0)).toBe(true);
  });
});

describe("a look through the memories (talos memory beside the server)", () => {
  it("closes the stores a look opened before those events use, past the cap", async () => {
    const directory = join(makeDataDir(), "memory");
    const text = "text ".repeat(2000);
    const writer = registry(directory);
    for (let r = 1; r <= 8; r++)
      await (
        await writer.open(repo(r))
      ).addMany(
        Array.from({ length: 40 }, (_, i) =>
          memoryOf(`acme/repo-${r}`, i + 1, `${r} ${i} ${text}`),
        ),
      );
    await writer.closeAll();
    // What one of them holds open once written.
    const probe = registry(directory);
    await (await probe.open(repo(8))).get("issue-1");
    const one = probe.openStores().bytes;
    await probe.closeAll();

    const closed: string[] = [];
    const log = pino(
      { level: "debug" },
      {
        write: (line: string) => {
          const entry = JSON.parse(line) as { msg: string; memory?: string };
          if (entry.msg === "idle memory closed") closed.push(entry.memory!);
        },
      },
    );
    // Room for three stores and a half: the events' three, and one looked at.
    const memories = registry(directory, { maxOpenBytes: Math.floor(3.5 * one), log });
    for (const r of [1, 2, 3]) await (await memories.open(repo(r))).get("issue-1");
    const counted: number[] = [];
    for (let r = 4; r <= 8; r++) {
      counted.push(await memories.look(repo(r), async (memory) => (await memory.stats()).records));
      await memories.whenSettled();
    }
    // A look at a store open already leaves it where it was.
    await memories.look(repo(1), (memory) => memory.stats());
    await (await memories.open(repo(4))).get("issue-1");
    await memories.whenSettled();

    expect(counted).toEqual([40, 40, 40, 40, 40]);
    // Each store looked at was closed as the next one opened, never one the events use, though
    // repository 1 was used longest ago. The last one looked at went first when an event
    // opened another.
    expect(closed).toEqual(["7/4", "7/5", "7/6", "7/7", "7/8", "7/1"]);
    await memories.closeAll();
  });
});

describe("name-keyed memory from before the upgrade", () => {
  const OLD = Date.parse("2026-10-05T00:00:00Z");

  /** `memory/7/acme/widgets/` as the old version left it: records, a finished backfill. */
  async function legacyMemory(dataDir = makeDataDir()) {
    const directory = join(dataDir, "memory", "7", "acme", "widgets");
    const store = await openTestStore(directory);
    await store.addMany([
      issueMemory(1, "Crash when saving", { createdAt: "2026-10-01T10:00:00Z" }),
      issueMemory(2, "Dark mode", { createdAt: "2026-10-02T10:00:00Z" }),
    ]);
    await store.close();
    await backfillProgressIn(directory).saveBackfillState({ status: "done", page: 2, indexed: 2 });
    // Its files were last written on 5 October.
    for (const name of readdirSync(directory)) {
      if (!name.startsWith(".")) utimesSync(join(directory, name), OLD / 1000, OLD / 1000);
    }
    return dataDir;
  }

  it("moves it aside at start, and its repository adopts it with its finished backfill", async () => {
    const dataDir = await legacyMemory();
    const memories = registry(join(dataDir, "memory"));
    await memories.migrate();
    expect(readdirSync(join(dataDir, "memory")).sort()).toEqual([".legacy", "7"]);
    expect(readdirSync(join(dataDir, "memory", "7"))).toEqual([]);
    expect(await memories.listLegacy()).toEqual([
      {
        installation: 7,
        name: "acme/widgets",
        directory: join(dataDir, "memory", ".legacy", "7", "acme", "widgets"),
      },
    ]);

    // The repository has existed since 2025: everything in the memory came after.
    const memory = await memories.open({ ...WIDGETS, createdAt: "2025-01-01T00:00:00Z" });
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-1", "issue-2"]);
    expect(await memory.readBackfillState()).toMatchObject({ status: "done" });
    expect(await memories.listLegacy()).toEqual([]);
    expect(await memories.list()).toEqual([
      { installation: 7, repository: 101, name: "acme/widgets" },
    ]);
    await memories.closeAll();
  });

  it("gives a repository deleted and created again under the same name an empty memory, and a backfill to run", async () => {
    const dataDir = await legacyMemory();
    const memories = registry(join(dataDir, "memory"));
    // Created on 20 November: the memory of that name is an earlier repository's.
    const memory = await memories.open({
      ...WIDGETS,
      repository: 555,
      createdAt: "2026-11-20T09:00:00Z",
    });

    expect(await memory.list()).toEqual([]);
    expect(await memory.readBackfillState()).toBeUndefined();
    const legacy = join(dataDir, "memory", ".legacy", "7", "acme", "widgets");
    expect(JSON.parse(readFileSync(join(legacy, "rejected.json"), "utf8"))).toMatchObject({
      repository: 555,
      reason: expect.stringContaining(
        "before the repository was created (2026-11-20T09:00:00.000Z): it is an earlier repository's of the same name",
      ),
    });
    // Turned down once, it is offered to nobody after.
    expect(await memories.listLegacy()).toEqual([]);
    await memories.closeAll();
  });

  it("tells an owner whose login is all digits from a repository id", async () => {
    const dataDir = makeDataDir();
    const directory = join(dataDir, "memory", "7", "1234", "widgets");
    const store = await openTestStore(directory, { repo: "1234/widgets" });
    await store.add(issueMemory(1, "x", { repo: "1234/widgets" }));
    await store.close();
    const memories = registry(join(dataDir, "memory"));
    await (await memories.open(WIDGETS)).add(memoryOf("acme/widgets", 1, "new layout"));

    expect((await memories.listLegacy()).map((l) => l.name)).toEqual(["1234/widgets"]);
    expect(await memories.list()).toEqual([
      { installation: 7, repository: 101, name: "acme/widgets" },
    ]);
    await memories.closeAll();
    // A second start finds nothing more to move.
    const again = registry(join(dataDir, "memory"));
    await again.migrate();
    expect(readdirSync(join(dataDir, "memory", "7"))).toEqual(["101"]);
  });

  it("is adopted by its repository's rename from the old name, before any event opened it", async () => {
    const dataDir = await legacyMemory();
    const memories = registry(join(dataDir, "memory"));
    await memories.migrate();
    const gadgets = {
      ...WIDGETS,
      name: "acme/gadgets",
      previousName: "acme/widgets",
      createdAt: "2025-01-01T00:00:00Z",
    };

    // Its next event, under the new name alone, comes at once: the two adopt it once.
    const [renamed, memory] = await Promise.all([
      memories.rename(gadgets),
      memories.open({ ...WIDGETS, name: "acme/gadgets" }),
    ]);
    expect(renamed).toBe(true);
    expect(await memories.list()).toEqual([
      { installation: 7, repository: 101, name: "acme/gadgets" },
    ]);
    expect(await memories.listLegacy()).toEqual([]);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-1", "issue-2"]);
    expect(await memory.readBackfillState()).toMatchObject({ status: "done" });
    await memories.closeAll();
  });

  it("has its notes merged into the memory an event under the new name opened before the rename's job ran", async () => {
    const dataDir = await legacyMemory();
    const legacy = join(dataDir, "memory", "7", "acme", "widgets");
    const old = await openTestStore(legacy);
    await old.add({
      ...issueMemory(900, "Maintainer note: releases are cut on Fridays", {
        createdAt: "2026-10-03T10:00:00Z",
      }),
      id: "note-900",
      kind: "note",
    });
    await old.close();
    for (const name of readdirSync(legacy))
      if (!name.startsWith(".")) utimesSync(join(legacy, name), OLD / 1000, OLD / 1000);
    const memories = registry(join(dataDir, "memory"));
    await memories.migrate();
    const gadgets = { ...WIDGETS, name: "acme/gadgets", createdAt: "2025-01-01T00:00:00Z" };
    // An issue event under the new name, whose job ran first (another thread than the rename's).
    const first = await memories.open(gadgets);
    await first.add({ ...issueMemory(3, "A new issue"), repo: "acme/gadgets" });

    expect(await memories.rename({ ...gadgets, previousName: "acme/widgets" })).toBe(true);

    const memory = await memories.open(gadgets);
    // The note, which no backfill brings back; the old issues come from the new memory's own.
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-3", "note-900"]);
    expect((await memory.get("note-900"))?.repo).toBe("acme/gadgets");
    expect(await memories.listLegacy()).toEqual([]);
    await memories.closeAll();
  });

  it("is not adopted under its old name by a repository created after it was written", async () => {
    const dataDir = await legacyMemory();
    const memories = registry(join(dataDir, "memory"));
    // Created after the memory was written: the old name's memory is not its.
    const younger = await memories.open({
      ...WIDGETS,
      repository: 555,
      name: "acme/gadgets",
      previousName: "acme/widgets",
      createdAt: "2026-11-20T09:00:00Z",
    });
    expect(await younger.list()).toEqual([]);
    const legacy = join(dataDir, "memory", ".legacy", "7", "acme", "widgets");
    expect(JSON.parse(readFileSync(join(legacy, "rejected.json"), "utf8"))).toMatchObject({
      repository: 555,
    });
    await memories.closeAll();
  });

  it("stays for its repository, renamed away, when a newer repository that took the old name is deleted", async () => {
    const dataDir = await legacyMemory();
    const memories = registry(join(dataDir, "memory"));
    // acme/widgets was renamed to acme/gadgets; another acme/widgets was created in November,
    // and deleted before any event opened its memory.
    expect(
      await memories.delete({
        installation: 7,
        repository: 303,
        name: "acme/widgets",
        createdAt: "2026-11-20T09:00:00Z",
      }),
    ).toBe(false);
    expect((await memories.listLegacy()).map((l) => l.name)).toEqual(["acme/widgets"]);

    const gadgets = { ...WIDGETS, name: "acme/gadgets", createdAt: "2025-01-01T00:00:00Z" };
    expect(await memories.rename({ ...gadgets, previousName: "acme/widgets" })).toBe(true);
    const memory = await memories.open(gadgets);
    expect((await memory.list()).map((r) => r.id).sort()).toEqual(["issue-1", "issue-2"]);
    await memories.closeAll();
  });

  it("stays when a newer repository that turned it down leaves the installation", async () => {
    const dataDir = await legacyMemory();
    const memories = registry(join(dataDir, "memory"));
    const newer = { ...WIDGETS, repository: 303, createdAt: "2026-11-20T09:00:00Z" };
    await memories.open(newer);
    // installation_repositories.removed carries no creation time: its memory recorded one.
    expect(await memories.delete({ installation: 7, repository: 303, name: "acme/widgets" })).toBe(
      true,
    );
    expect(existsSync(join(dataDir, "memory", ".legacy", "7", "acme", "widgets"))).toBe(true);
  });

  it("is deleted with its own repository, deleted before any event opened its memory", async () => {
    const dataDir = await legacyMemory();
    const memories = registry(join(dataDir, "memory"));
    await memories.delete({ ...WIDGETS, createdAt: "2025-01-01T00:00:00Z" });
    expect(await memories.listLegacy()).toEqual([]);
    expect(existsSync(join(dataDir, "memory", ".legacy", "7", "acme", "widgets"))).toBe(false);
  });

  it("moves aside the memory of a dot-named repository whose owner's login is all digits", async () => {
    const dataDir = makeDataDir();
    const directory = join(dataDir, "memory", "7", "1234", ".github");
    const store = await openTestStore(directory, { repo: "1234/.github" });
    await store.add(issueMemory(1, "x", { repo: "1234/.github" }));
    await store.close();
    // A repository id's directory that a crash left with only its lock (and a takeover's
    // claim) in it is not an owner's.
    mkdirSync(join(dataDir, "memory", "7", "55", ".lock"), { recursive: true });
    mkdirSync(join(dataDir, "memory", "7", "55", ".lock-takeover"));
    const memories = registry(join(dataDir, "memory"));

    expect((await memories.listLegacy()).map((l) => l.name)).toEqual(["1234/.github"]);
    expect(readdirSync(join(dataDir, "memory", "7"))).toEqual(["55"]);
    await memories.closeAll();
  });

  it("finishes a deletion a crash interrupted", async () => {
    const dataDir = makeDataDir();
    const trash = join(dataDir, "memory", ".trash", "a-deleted-memory");
    await openTestStore(trash).then((s) => s.close());
    writeFileSync(join(trash, "backfill.json"), "{}");
    await registry(join(dataDir, "memory")).migrate();
    expect(existsSync(trash)).toBe(false);
  });
});

describe("warming memories at start", () => {
  const REPOS = [1, 2, 3].map((n) => ({
    installation: 7,
    repository: 200 + n,
    name: `acme/r${n}`,
  }));

  /** Memories of `refs`, written oldest (the first) to newest (the last); their stores closed. */
  async function writtenMemories(refs: RepositoryRef[], texts: (ref: RepositoryRef) => string[]) {
    const directory = join(makeDataDir(), "memory");
    const writer = registry(directory);
    for (const [i, ref] of refs.entries()) {
      const memory = await writer.open(ref);
      await memory.addMany(
        texts(ref).map((text, n) => issueMemory(n + 1, text, { repo: ref.name })),
      );
      await writer.closeAll();
      writtenOn(directory, ref, i);
    }
    const vectors = readFileSync(join(writer.directoryOf(refs[0]!), "vectors.i8")).length;
    return { directory, vectors };
  }

  /** Dates the memory's last write `day` days after 1 November. */
  const writtenOn = (directory: string, ref: RepositoryRef, day: number) => {
    const at = new Date(Date.UTC(2026, 10, 1 + day));
    utimesSync(
      join(directory, String(ref.installation), String(ref.repository), "manifest.json"),
      at,
      at,
    );
  };

  /** Three memories, written oldest (r1) to newest (r3); their stores closed. */
  const threeMemories = () =>
    writtenMemories(REPOS, (ref) =>
      ["crash on save", "dark mode colours", "export to CSV"].map(
        (text) => `${text} in ${ref.name}`,
      ),
    );

  const isOpen = (directory: string, ref: RepositoryRef) =>
    existsSync(join(directory, String(ref.installation), String(ref.repository), ".lock"));

  it("opens every memory within the cap, keyword indexes built, newest first", async () => {
    const { directory } = await threeMemories();
    const warmed = registry(directory);
    expect(await warmed.warm()).toBe(3);
    expect(REPOS.every((ref) => isOpen(directory, ref))).toBe(true);
    const warmBytes = warmed.openStores().bytes;
    await warmed.closeAll();

    // The same stores opened without a search hold no keyword indexes: less RAM.
    const plain = registry(directory);
    for (const ref of REPOS) await plain.open(ref);
    expect(plain.openStores().bytes).toBeLessThan(warmBytes);
    await plain.closeAll();
  });

  it("stops at the RAM cap, having opened the memory written last", async () => {
    const { directory, vectors } = await threeMemories();
    const one = registry(directory, { maxOpenBytes: vectors });
    expect(await one.warm()).toBe(1);
    expect(REPOS.map((ref) => isOpen(directory, ref))).toEqual([false, false, true]);
    await one.closeAll();
    const none = registry(directory, { maxOpenBytes: vectors - 1 });
    expect(await none.warm()).toBe(0);
    expect(none.openStores().stores).toBe(0);
  });

  it("leaves the memories written last open, the newest the most recently used, when the last it warms goes over the cap", async () => {
    const refs = [1, 2, 3, 4, 5, 6].map((n) => repo(300 + n, `acme/s${n}`));
    const { directory } = await writtenMemories(refs, (ref) =>
      Array.from({ length: 30 }, (_, n) => `${n} issue text ${"word ".repeat(400)} in ${ref.name}`),
    );
    // What one store holds warmed: texts and keyword indexes besides its vectors.
    const probe = registry(directory);
    await (await probe.open(refs[0]!)).warm();
    const warmedBytes = probe.openStores().bytes;
    await probe.closeAll();
    writtenOn(directory, refs[0]!, 0);

    // Room for two warmed stores and a half: the third goes over once warmed.
    const warmed = registry(directory, { maxOpenBytes: Math.floor(2.5 * warmedBytes) });
    const opened = await warmed.warm();
    await warmed.whenSettled();
    expect(refs.map((ref) => isOpen(directory, ref))).toEqual([
      false,
      false,
      false,
      false,
      true,
      true,
    ]);
    expect(opened).toBe(2);
    // The first memory opened cold after closes the older of the two, not the newest.
    await (await warmed.open(refs[0]!)).list();
    await warmed.whenSettled();
    expect(refs.map((ref) => isOpen(directory, ref))).toEqual([
      true,
      false,
      false,
      false,
      false,
      true,
    ]);
    await warmed.closeAll();
  });

  it("leaves deleted a memory deleted while the warm-up runs, before it reaches it", async () => {
    const { directory } = await threeMemories();
    // A store reads its embedder's model as it opens: the first the warm-up opens (r3, the
    // newest) sets off the deletion of r2, which the warm-up has listed and not reached yet.
    const inner = createLocalEmbedder();
    let deletion: Promise<boolean> | undefined;
    const embedder: Embedder = {
      ...inner,
      get model() {
        deletion ??= memories.delete(REPOS[1]!);
        return inner.model;
      },
    };
    const memories = registry(directory, { embedder });

    expect(await memories.warm()).toBe(2);
    expect(await deletion).toBe(true);
    expect((await memories.list()).map((stored) => stored.name)).toEqual(["acme/r1", "acme/r3"]);
    expect(existsSync(memories.directoryOf(REPOS[1]!))).toBe(false);
    await memories.closeAll();
  });

  it("skips a memory it cannot open, saying so, and opens the rest", async () => {
    const { directory } = await threeMemories();
    const newest = join(directory, "7", "203");
    writeFileSync(join(newest, "manifest.json"), "{ damaged");
    const lines: string[] = [];
    const warmed = registry(directory, {
      log: pino({ level: "warn" }, { write: (line: string) => lines.push(line) }),
    });
    expect(await warmed.warm()).toBe(2);
    expect(lines.some((line) => line.includes("memory not opened ahead of its first use"))).toBe(
      true,
    );
    await warmed.closeAll();
  });
});

describe("a deletion cut short after it was recorded", () => {
  // removed.json is saved before the store is closed and its directory moved away: a crash in
  // between, or a move the lock refused, left the directory, and a repository added back had
  // opened its old memory again, records and finished backfill progress and all.
  const secret = (number: number) =>
    issueMemory(number, "Leaked token ghp_secret in the deploy logs", {
      repo: "acme/widgets",
      url: `https://github.com/acme/widgets/issues/${number}`,
    });

  it("is finished when the repository is added back, after a restart", async () => {
    const directory = join(makeDataDir(), "memory");
    const before = registry(directory);
    const memory = await before.open(WIDGETS);
    await memory.add(secret(1));
    await memory.saveBackfillState({ status: "done", page: 1, indexed: 1 });
    await before.closeAll();
    // What a crash right after removed.json was saved leaves.
    writeFileSync(join(directory, "removed.json"), `${JSON.stringify(["7/101"])}\n`);

    const after = registry(directory);
    await expect(after.open(WIDGETS)).rejects.toThrow(MemoryDeletedError);
    await after.readmit(WIDGETS);
    const again = await after.open(WIDGETS);
    expect(await again.list()).toEqual([]);
    expect(await again.readBackfillState()).toBeUndefined();
    await after.closeAll();
  });

  it("is finished when the repository is added back after the move failed, or stays refused", async () => {
    const directory = join(makeDataDir(), "memory");
    const memories = registry(directory);
    await (await memories.open(WIDGETS)).add(secret(1));
    await memories.closeAll();
    const child = await holdLockInChild(memories.directoryOf(WIDGETS));
    try {
      await expect(memories.delete(WIDGETS)).rejects.toThrow(MemoryLockedError);
      // Still held elsewhere: the repository added back is refused until its directory goes.
      const meanwhile = registry(directory);
      await expect(meanwhile.readmit(WIDGETS)).rejects.toThrow(MemoryLockedError);
      await expect(meanwhile.open(WIDGETS)).rejects.toThrow(MemoryDeletedError);
      await meanwhile.closeAll();
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((resolve) => child.once("exit", resolve));

    const after = registry(directory);
    await after.readmit(WIDGETS);
    expect(await (await after.open(WIDGETS)).list()).toEqual([]);
    await after.closeAll();
  });
});

import { cpSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { afterAll, describe, expect, it, onTestFinished, vi } from "vitest";
import {
  dropSchema,
  freshSchema,
  requirePostgres,
  TEST_DATABASE_URL,
} from "../helpers/shared-services.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { runTalos } from "../helpers/run-talos.js";
import { runCli } from "../../src/cli/main.js";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import { lockDirectory } from "../../src/memory/directory-lock.js";
import { createTestApp, makeDataDir } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";
import { requestsDirectory, sendRequest } from "../../src/server-requests.js";
import { systemClock } from "../../src/clock.js";
import {
  createTestRegistry,
  issueMemory,
  lockAsRunningServer,
  openPostgresMemory,
  openTestStore,
} from "../helpers/test-memory.js";

function talos(argv: string[], env: Record<string, string> = {}) {
  return runTalos(argv, { env });
}

function registry(memoryDir: string, batchSize = 50) {
  return createTestRegistry(memoryDir, { batchSize });
}

const WIDGETS = { repository: 101, name: "acme/widgets" };
const GADGETS = { repository: 102, name: "acme/gadgets" };

/**
 * Installation 7 has acme/widgets (3 records) and acme/gadgets (1); installation 8, acme/widgets
 * (2: it was transferred there, and installation 7 keeps what it had).
 */
async function seed(dataDir = makeDataDir()) {
  const memories = registry(join(dataDir, "memory"));
  const seven = await memories.open({ installation: 7, ...WIDGETS });
  await seven.addMany([
    issueMemory(1, "Crash when exporting invoices from the billing page\n\nStack trace follows."),
    issueMemory(2, "Dark mode colours are wrong in the settings page"),
    {
      ...issueMemory(3, "Remember: the release checklist lives in docs/release.md"),
      id: "note-99",
      kind: "note",
      number: undefined,
      url: undefined,
    },
  ]);
  const gadgets = await memories.open({ installation: 7, ...GADGETS });
  await gadgets.add(
    issueMemory(1, "Gadget firmware update stalls", {
      repo: "acme/gadgets",
      url: "https://github.com/acme/gadgets/issues/1",
    }),
  );
  const eight = await memories.open({ installation: 8, ...WIDGETS });
  await eight.addMany([
    issueMemory(1, "Secret crash when exporting invoices of installation eight"),
    issueMemory(5, "Slow start-up on older laptops"),
  ]);
  await memories.closeAll();
  return dataDir;
}

const LOCAL_MODEL = createLocalEmbedder().model;

describe("talos memory stats", () => {
  it("finds the data directory that .env in the current directory sets, as npm start does", async () => {
    const dataDir = await seed();
    const cwd = makeDataDir();
    writeFileSync(join(cwd, ".env"), `TALOS_DATA_DIR=${dataDir}\n`);
    const { code, out } = await runTalos(["memory", "stats", "--json"], { cwd });
    expect(code).toBe(0);
    expect(JSON.parse(out).namespaces).toHaveLength(3);
  });

  it("counts the records of every namespace, and in total, with --json", async () => {
    const dataDir = await seed();
    const { code, out, err } = await talos(["memory", "stats", "--data-dir", dataDir, "--json"]);
    expect(err).toBe("");
    expect(code).toBe(0);
    const stats = JSON.parse(out);
    expect(
      stats.namespaces.map((n: Record<string, unknown>) => [
        n.installation,
        n.repository,
        n.repo,
        n.records,
      ]),
    ).toEqual([
      [7, 102, "acme/gadgets", 1],
      [7, 101, "acme/widgets", 3],
      [8, 101, "acme/widgets", 2],
    ]);
    expect(stats.legacy).toEqual([]);
    expect(stats.namespaces[1]).toMatchObject({
      byKind: { issue: 2, note: 1 },
      pending: 0,
      segments: 1,
      model: LOCAL_MODEL,
      dimension: 512,
    });
    expect(stats.namespaces[1].bytesOnDisk).toBeGreaterThan(0);
    // Vectors as allocated and records: at least each record's 512 float32s (the local embedder).
    expect(stats.namespaces[1].bytesInRam).toBeGreaterThan(stats.namespaces[1].records * 512 * 4);
    expect(stats.totals).toMatchObject({
      namespaces: 3,
      records: 6,
      byKind: { issue: 5, note: 1 },
      pending: 0,
      segments: 3,
    });
    expect(stats.totals.bytesOnDisk).toBe(
      stats.namespaces.reduce((sum: number, n: { bytesOnDisk: number }) => sum + n.bytesOnDisk, 0),
    );
    expect(stats.totals.bytesInRam).toBe(
      stats.namespaces.reduce((sum: number, n: { bytesInRam: number }) => sum + n.bytesInRam, 0),
    );
  });

  it("shows each namespace's backfill: done, running, issues switched off, or unreadable", async () => {
    const dataDir = await seed();
    const progress = (installation: number, repository: number, text: string) =>
      writeFileSync(
        join(dataDir, "memory", String(installation), String(repository), "backfill.json"),
        text,
      );
    progress(7, 101, JSON.stringify({ status: "done", page: 3, indexed: 250 }));
    progress(
      7,
      102,
      JSON.stringify({
        status: "done",
        page: 1,
        indexed: 0,
        issuesDisabledAt: "2026-12-01T00:00:00.000Z",
      }),
    );
    progress(8, 101, "{ damaged");

    const table = await talos(["memory", "stats", "--data-dir", dataDir]);
    expect(table.code).toBe(0);
    const lines = table.out.trim().split("\n");
    expect(lines[0]).toMatch(/\sEMBEDDER\s+BACKFILL\s+KINDS$/);
    expect(lines[1]).toMatch(/^7\/acme\/gadgets\s.*\sissues off\s+issue 1$/);
    expect(lines[2]).toMatch(/^7\/acme\/widgets\s.*\sdone \(250\)\s+issue 2, note 1$/);
    expect(lines[3]).toMatch(/^8\/acme\/widgets\s.*\sunreadable\s+issue 2$/);

    progress(8, 101, JSON.stringify({ status: "running", page: 4, indexed: 300 }));
    const json = await talos(["memory", "stats", "--data-dir", dataDir, "--json"]);
    expect(json.code).toBe(0);
    const { namespaces } = JSON.parse(json.out);
    expect(namespaces.map((n: { backfill: unknown }) => n.backfill)).toEqual([
      { status: "done", page: 1, indexed: 0, issuesDisabledAt: "2026-12-01T00:00:00.000Z" },
      { status: "done", page: 3, indexed: 250 },
      { status: "running", page: 4, indexed: 300 },
    ]);
    const plain = await talos(["memory", "stats", "--data-dir", dataDir]);
    expect(plain.out).toMatch(/\n8\/acme\/widgets\s.*\srunning at page 4 \(300\)\s+issue 2\n/);
  });

  it("prints a table, and picks namespaces with --repo and --installation", async () => {
    const dataDir = await seed();
    const all = await talos(["memory", "stats", "--data-dir", dataDir]);
    expect(all.code).toBe(0);
    const lines = all.out.trim().split("\n");
    expect(lines[0]).toMatch(
      /^NAMESPACE\s+RECORDS\s+PENDING\s+SEGMENTS\s+ON DISK\s+IN RAM\s+EMBEDDER/,
    );
    expect(lines[2]).toMatch(/^7\/acme\/widgets\s+3\s+0\s+1\s+.*issue 2, note 1$/);
    expect(lines.at(-1)).toMatch(/^total \(3\)\s+6\s+0\s+3\s/);

    const widgets = await talos(["memory", "stats", "--repo", "Acme/Widgets", "--json"], {
      TALOS_DATA_DIR: dataDir,
    });
    expect(widgets.code).toBe(0);
    expect(
      JSON.parse(widgets.out).namespaces.map((n: { installation: number }) => n.installation),
    ).toEqual([7, 8]);
    // By repository id, too.
    const byId = await talos(["memory", "stats", "--repo", "102", "--json"], {
      TALOS_DATA_DIR: dataDir,
    });
    expect(JSON.parse(byId.out).namespaces.map((n: { repo: string }) => n.repo)).toEqual([
      "acme/gadgets",
    ]);
    const eight = await talos([
      "memory",
      "stats",
      "--data-dir",
      dataDir,
      "--installation",
      "8",
      "--json",
    ]);
    expect(JSON.parse(eight.out).totals.records).toBe(2);
  });

  it("works whatever embedder the environment configures: it never embeds", async () => {
    const dataDir = await seed();
    // nock.disableNetConnect() is in force: an embedding request would fail the command.
    const { code, out, err } = await talos(["memory", "stats", "--data-dir", dataDir, "--json"], {
      OPENAI_API_KEY: "sk-test-0123456789abcdef",
      TALOS_EMBEDDING_MODEL: "text-embedding-3-large",
    });
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(out).namespaces[0].model).toBe(LOCAL_MODEL);
  });
});

/** The seeded data directory, and a memory of 7/acme/legacy kept by name, as before the upgrade. */
async function seedWithLegacy(): Promise<string> {
  const dataDir = await seed();
  const old = await openTestStore(join(dataDir, "memory", "7", "acme", "legacy"), {
    repo: "acme/legacy",
  });
  await old.add(issueMemory(1, "old", { repo: "acme/legacy" }));
  await old.close();
  return dataDir;
}

describe("talos memory: name-keyed memory from before the upgrade", () => {
  it("moves it aside and says it waits for its repository's next event", async () => {
    const dataDir = await seedWithLegacy();

    const table = await talos(["memory", "stats", "--data-dir", dataDir]);
    expect(table.code).toBe(0);
    expect(table.out.trim().split("\n").at(-1)).toBe(
      "1 name-keyed memory from before the upgrade waits for its repository's next event: 7/acme/legacy",
    );
    const json = JSON.parse(
      (await talos(["memory", "stats", "--data-dir", dataDir, "--json"])).out,
    );
    expect(json.legacy).toEqual([{ installation: 7, repo: "acme/legacy" }]);
    expect(json.totals.namespaces).toBe(3);
  });
});

describe("talos memory search", () => {
  it("finds the record in the chosen namespace only", async () => {
    const dataDir = await seed();
    const { code, out, err } = await talos([
      "memory",
      "search",
      "crash exporting invoices billing",
      "--data-dir",
      dataDir,
      "--repo",
      "acme/widgets",
      "--installation",
      "7",
      "--json",
    ]);
    expect(err).toBe("");
    expect(code).toBe(0);
    const result = JSON.parse(out);
    expect(result).toMatchObject({ installation: 7, repository: 101, repo: "acme/widgets" });
    expect(result.hits[0]).toMatchObject({
      id: "issue-1",
      kind: "issue",
      number: 1,
      url: "https://github.com/acme/widgets/issues/1",
      firstLine: "Crash when exporting invoices from the billing page",
    });
    expect(result.hits[0].score).toBeGreaterThan(0.3);
    // Installation 8's record of the same id and similar text never shows up here.
    expect(out).not.toContain("installation eight");
    expect(result.hits.length).toBeLessThanOrEqual(3);
  });

  it("prints a table of hits, honours --k and --kind", async () => {
    const dataDir = await seed();
    const args = ["--data-dir", dataDir, "--repo", "acme/widgets", "--installation", "7"];
    const table = await talos(["memory", "search", "invoices", "crash", ...args, "--k", "1"]);
    expect(table.code).toBe(0);
    const lines = table.out.trim().split("\n");
    expect(lines[0]).toMatch(/^SCORE\s+ID\s+KIND\s+NUMBER\s+URL\s+TEXT$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(
      /^\d\.\d{3}\*?\s+issue-1\s+issue\s+#1\s+https:\/\/github\.com\/acme\/widgets\/issues\/1\s+Crash when exporting invoices from the billing page$/,
    );

    const notes = await talos([
      "memory",
      "search",
      "release checklist",
      ...args,
      "--kind",
      "note",
      "--json",
    ]);
    expect(notes.code).toBe(0);
    expect(JSON.parse(notes.out).hits.map((h: { id: string }) => h.id)).toEqual(["note-99"]);
  });

  it("needs exactly one namespace", async () => {
    const dataDir = await seed();
    const { code, err } = await talos([
      "memory",
      "search",
      "crash",
      "--data-dir",
      dataDir,
      "--repo",
      "acme/widgets",
    ]);
    expect(code).toBe(2);
    expect(err).toMatch(
      /^talos memory: search reads one memory, and 2 match \(7\/acme\/widgets, 8\/acme\/widgets\); pass --repo and --installation/,
    );
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  it("fails in one line, naming both models, when the configured embedder differs", async () => {
    const dataDir = await seed();
    const { code, err } = await talos(
      ["memory", "search", "crash", "--data-dir", dataDir, "--installation", "8"],
      { OPENAI_API_KEY: "sk-test-0123456789abcdef" },
    );
    expect(code).toBe(1);
    expect(err).toContain(`holds memories embedded with ${LOCAL_MODEL} (512 dimensions)`);
    expect(err).toContain("the configured embedder is text-embedding-3-small (1536 dimensions)");
    expect(err.trim().split("\n")).toHaveLength(1);
  });
});

// Anyone can open an issue on a public repository; its title is remembered as it was written and
// `talos memory search` prints the first line of it into the maintainer's terminal.
describe("talos memory prints remembered text into the terminal", () => {
  const OSC52 = "\u001b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\u0007"; // sets the clipboard
  const CSI = "\u001b[2J"; // clears the screen
  const C1_CSI = "\u009b31m"; // 8-bit CSI
  // Nothing a terminal acts on: ESC, BEL, C1 controls, CR (tab and line feed are the table's).
  // eslint-disable-next-line no-control-regex -- matching them is the point
  const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

  it("search prints no escape sequences or carriage returns from an issue title", async () => {
    const dataDir = makeDataDir();
    const memories = createTestRegistry(join(dataDir, "memory"));
    const store = await memories.open({ installation: 7, ...WIDGETS });
    await store.add(
      issueMemory(1, `Crash exporting invoices ${OSC52}${CSI}${C1_CSI}\rall good here\n\nbody`),
    );
    await memories.closeAll();

    const args = ["memory", "search", "crash exporting invoices", "--data-dir", dataDir];
    const { code, out, err } = await talos(args);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).not.toMatch(CONTROLS);
    // One row, the carriage return a space: nothing hidden, nothing written over.
    const lines = out.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/ issue-1 .* Crash exporting invoices \]52;c;\S+ all good h$/);
  });

  it("search cuts the text to 80 characters once clean", async () => {
    const dataDir = makeDataDir();
    const memories = createTestRegistry(join(dataDir, "memory"));
    const store = await memories.open({ installation: 7, ...WIDGETS });
    // Sixty controls and then the words: cut first, 20 characters of the words were left.
    await store.add(issueMemory(1, `${"\u0007".repeat(60)}${"crash ".repeat(20)}`));
    await memories.closeAll();

    const { code, out } = await talos(["memory", "search", "crash", "--data-dir", dataDir]);
    expect(code).toBe(0);
    expect(out.trim().split("\n")[1]).toMatch(/ {2}(crash ){13}cr$/);
  });
});

describe("talos memory export", () => {
  it("prints every record as a JSON line with its installation, without vectors", async () => {
    const dataDir = await seed();
    const { code, out, err } = await talos(["memory", "export", "--data-dir", dataDir]);
    expect(err).toBe("");
    expect(code).toBe(0);
    const lines = out
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((l) => `${l.installation}/${l.repo}#${l.id}`)).toEqual([
      "7/acme/gadgets#issue-1",
      "7/acme/widgets#issue-1",
      "7/acme/widgets#issue-2",
      "7/acme/widgets#note-99",
      "8/acme/widgets#issue-1",
      "8/acme/widgets#issue-5",
    ]);
    expect(lines[1]).toEqual({
      installation: 7,
      repository: 101,
      id: "issue-1",
      kind: "issue",
      text: "Crash when exporting invoices from the billing page\n\nStack trace follows.",
      repo: "acme/widgets",
      number: 1,
      author: "alice",
      url: "https://github.com/acme/widgets/issues/1",
      createdAt: "2026-11-01T10:00:00.000Z",
      state: "open",
    });
    expect(out).not.toContain("vector");
  });
  it("stops quietly when the reader closes the pipe (`| head`)", async () => {
    const dataDir = await seed();
    let lines = 0;
    const stdout = new Writable({
      write(_chunk, _encoding, done) {
        lines++;
        done(lines > 2 ? Object.assign(new Error("write EPIPE"), { code: "EPIPE" }) : null);
      },
    });
    const stderr = new PassThrough();
    let err = "";
    stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await runCli(["memory", "export", "--data-dir", dataDir], {
      stdin: new PassThrough(),
      stdout,
      stderr,
      env: {},
    });
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(lines).toBe(3);
  });
});

describe("talos memory compact", () => {
  it("replays what the log holds into the index files and leaves nothing pending", async () => {
    const live = makeDataDir();
    const directory = join(live, "memory", "7", "101");
    // Unlocked: the copy is what a crash leaves, not a directory a live process holds.
    const store = await openTestStore(directory, {
      batchSize: 1_000,
      lockDirectory: async () => async () => undefined,
    });
    writeFileSync(
      join(directory, "repository.json"),
      JSON.stringify({ installation: 7, repository: 101, name: "acme/widgets" }),
    );
    await store.addMany([issueMemory(1, "first"), issueMemory(2, "second")]);
    // A copy taken now is what a crash would leave: the records are only in the log.
    const dataDir = makeDataDir();
    cpSync(live, dataDir, { recursive: true });
    await store.close();
    const copy = join(dataDir, "memory", "7", "101");
    const logBytes = () =>
      readdirSync(copy)
        .filter((name) => name.startsWith("log-"))
        .reduce((sum, name) => sum + statSync(join(copy, name)).size, 0);
    expect(logBytes()).toBeGreaterThan(0);

    const { code, out, err } = await talos(["memory", "compact", "--data-dir", dataDir]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toMatch(
      /^Compacted 7\/acme\/widgets: 2 records in 1 segment\(s\), 0 pending, .* on disk \(was .*\)\.\n$/,
    );
    expect(logBytes()).toBe(0);

    const json = await talos(["memory", "compact", "--data-dir", dataDir, "--json"]);
    expect(JSON.parse(json.out).namespaces).toEqual([
      expect.objectContaining({ installation: 7, repo: "acme/widgets", records: 2, pending: 0 }),
    ]);
    const stats = JSON.parse(
      (await talos(["memory", "stats", "--data-dir", dataDir, "--json"])).out,
    );
    expect(stats.totals).toMatchObject({ records: 2, pending: 0, segments: 1 });
  });

  it("says there was nothing to compact where the data directory holds no memory", async () => {
    const dataDir = makeDataDir();
    const { code, out, err } = await talos(["memory", "compact", "--data-dir", dataDir]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toBe(`No memory in ${join(dataDir, "memory")}: nothing to compact.\n`);
    const json = await talos(["memory", "compact", "--data-dir", dataDir, "--json"]);
    expect(JSON.parse(json.out)).toEqual({ namespaces: [] });
  });
});

/** The namespaces `talos memory stats` lists. */
async function stats(dataDir: string) {
  return (
    JSON.parse((await talos(["memory", "stats", "--data-dir", dataDir, "--json"])).out) as {
      namespaces: Array<{ installation: number; repo: string }>;
    }
  ).namespaces.map((n) => `${n.installation}/${n.repo}`);
}

describe("talos memory delete", () => {
  it("deletes an installation's memories only with --yes, and they stay refused until readmitted", async () => {
    const dataDir = await seed();
    const asked = await talos(["memory", "delete", "--installation", "8", "--data-dir", dataDir]);
    expect(asked.code).toBe(2);
    expect(asked.err).toBe(
      "talos memory: this would delete the memory of 8/acme/widgets: add --yes to delete it\n",
    );
    expect(await stats(dataDir)).toEqual(["7/acme/gadgets", "7/acme/widgets", "8/acme/widgets"]);

    const { code, out, err } = await talos([
      "memory",
      "delete",
      "--installation",
      "8",
      "--yes",
      "--data-dir",
      dataDir,
    ]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toBe(
      `Deleted the memory of 8/acme/widgets (repository 101) from ${join(dataDir, "memory")}.\n`,
    );
    expect(await stats(dataDir)).toEqual(["7/acme/gadgets", "7/acme/widgets"]);
    expect(readdirSync(join(dataDir, "memory", "8"))).toEqual([]);
    // As after the repository's removal: an old job cannot write it back; added back, it opens
    // again, empty.
    const memories = registry(join(dataDir, "memory"));
    await expect(memories.open({ installation: 8, ...WIDGETS })).rejects.toThrow(
      MemoryDeletedError,
    );
    await memories.readmit({ installation: 8, repository: WIDGETS.repository });
    expect((await (await memories.open({ installation: 8, ...WIDGETS })).stats()).records).toBe(0);
    // The other installation's acme/widgets, the same repository, is untouched.
    expect((await (await memories.open({ installation: 7, ...WIDGETS })).stats()).records).toBe(3);
    await memories.closeAll();
  });

  it("deletes one repository's memory with --repo, and reports it with --json", async () => {
    const dataDir = await seed();
    const { code, out } = await talos([
      "memory",
      "delete",
      "--repo",
      "acme/widgets",
      "--installation",
      "7",
      "--yes",
      "--json",
      "--data-dir",
      dataDir,
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({
      deleted: [{ installation: 7, repository: 101, repo: "acme/widgets" }],
      legacy: [],
    });
    expect(await stats(dataDir)).toEqual(["7/acme/gadgets", "8/acme/widgets"]);
  });

  it("deletes a name-keyed memory from before the upgrade, which stats lists as waiting", async () => {
    const dataDir = await seedWithLegacy();
    const listed = async () =>
      (
        JSON.parse((await talos(["memory", "stats", "--data-dir", dataDir, "--json"])).out) as {
          legacy: unknown[];
        }
      ).legacy;
    expect(await listed()).toEqual([{ installation: 7, repo: "acme/legacy" }]);

    const argv = ["memory", "delete", "--repo", "acme/legacy", "--data-dir", dataDir];
    const asked = await talos(argv);
    expect(asked.code).toBe(2);
    expect(asked.err).toBe(
      "talos memory: this would delete the memory of 7/acme/legacy (name-keyed, from before the upgrade): add --yes to delete it\n",
    );
    const directory = join(dataDir, "memory", ".legacy", "7", "acme", "legacy");
    expect(existsSync(directory)).toBe(true);
    const { code, out, err } = await talos([...argv, "--yes"]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toBe(
      `Deleted the name-keyed memory of 7/acme/legacy (from before the upgrade) from ${directory}.\n`,
    );
    expect(existsSync(directory)).toBe(false);
    expect(await listed()).toEqual([]);
    // The id-keyed memories are untouched.
    expect(await stats(dataDir)).toEqual(["7/acme/gadgets", "7/acme/widgets", "8/acme/widgets"]);
    const again = await talos([...argv, "--yes"]);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/^talos memory: no memory of acme\/legacy in /);
  });

  it.each([
    ["the data directory, as a running server does", []],
    ["one of the memories picked, as a backfill's process does", ["memory", "7", "102"]],
  ])("deletes nothing when another process holds %s", async (_, path) => {
    const dataDir = await seed();
    const directory = join(dataDir, ...path);
    const held = lockAsRunningServer(directory);
    const { code, err } = await talos([
      "memory",
      "delete",
      "--installation",
      "7",
      "--yes",
      "--data-dir",
      dataDir,
    ]);
    expect(code).toBe(2);
    expect(err).toBe(`talos memory: ${held}\n`);
    // Not even recorded as deleted: a restart of that server keeps serving it.
    expect(existsSync(join(dataDir, "memory", "removed.json"))).toBe(false);
    rmSync(join(directory, ".lock"), { recursive: true });
    expect(await stats(dataDir)).toEqual(["7/acme/gadgets", "7/acme/widgets", "8/acme/widgets"]);
  });
});

describe("talos memory beside a running server on disk", () => {
  /** `talos memory export --repo acme/gadgets`, its lines parsed. */
  async function exportGadgets(dataDir: string) {
    const run = await talos(["memory", "export", "--repo", "acme/gadgets", "--data-dir", dataDir]);
    const records = run.out
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { id: string });
    return { ...run, records };
  }

  /** A server on `dataDir`, holding it as main.ts does, and answering the commands' requests. */
  async function startServer(dataDir: string) {
    const release = await lockDirectory(dataDir);
    onTestFinished(release);
    return createTestApp({ dataDir });
  }

  it("reads, searches, exports, compacts and deletes the memory through the server", async () => {
    const dataDir = await seed();
    const server = await startServer(dataDir);
    const { memory } = server.talos.services;
    // Written by the server and not flushed yet: the command sees the memory the server has.
    await (
      await memory.open({ installation: 7, ...WIDGETS })
    ).add(issueMemory(4, "Printing stalls on large invoices"));

    const shown = await talos(["memory", "stats", "--json", "--data-dir", dataDir]);
    expect(shown.err).toBe("");
    expect(shown.code).toBe(0);
    const rows = JSON.parse(shown.out) as {
      namespaces: Array<{ installation: number; repo: string; records: number; pending: number }>;
      totals: { records: number };
    };
    expect(rows.namespaces.map((n) => [`${n.installation}/${n.repo}`, n.records])).toEqual([
      ["7/acme/gadgets", 1],
      ["7/acme/widgets", 4],
      ["8/acme/widgets", 2],
    ]);
    expect(rows.namespaces[1]!.pending).toBeGreaterThan(0);
    expect(rows.totals.records).toBe(7);

    const found = await talos([
      "memory",
      "search",
      "printing large invoices",
      "--repo",
      "acme/widgets",
      "--installation",
      "7",
      "--json",
      "--data-dir",
      dataDir,
    ]);
    expect(found.err).toBe("");
    expect(JSON.parse(found.out).hits[0]).toMatchObject({ id: "issue-4", number: 4 });

    const exported = await exportGadgets(dataDir);
    expect(exported.code).toBe(0);
    expect(exported.records).toMatchObject([
      { installation: 7, repository: 102, id: "issue-1", text: "Gadget firmware update stalls" },
    ]);

    const compacted = await talos([
      "memory",
      "compact",
      "--installation",
      "7",
      "--data-dir",
      dataDir,
    ]);
    expect(compacted.err).toBe("");
    expect(compacted.out).toMatch(
      /^Compacted 7\/acme\/gadgets: 1 records .*\nCompacted 7\/acme\/widgets: 4 records in \d+ segment\(s\), 0 pending, /,
    );

    const deleted = await talos([
      "memory",
      "delete",
      "--installation",
      "8",
      "--yes",
      "--data-dir",
      dataDir,
    ]);
    expect(deleted.err).toBe("");
    expect(deleted.code).toBe(0);
    expect(deleted.out).toBe(
      `Deleted the memory of 8/acme/widgets (repository 101) from ${join(dataDir, "memory")}.\n`,
    );
    // The server refuses it from then on: its next event does not write it into being again.
    await expect(memory.open({ installation: 8, ...WIDGETS })).rejects.toThrow(MemoryDeletedError);
    expect(await stats(dataDir)).toEqual(["7/acme/gadgets", "7/acme/widgets"]);
    expect(readdirSync(join(dataDir, "requests"))).toEqual(["server.json"]);
  });

  it("exports a memory of several pages through the server, each record once", async () => {
    const dataDir = await seed();
    const server = await startServer(dataDir);
    // 2,500 more, unflushed: three pages of 1,000 (a segment each) with the one seeded.
    await (
      await server.talos.services.memory.open({ installation: 7, ...GADGETS })
    ).addMany(
      Array.from({ length: 2_500 }, (_, i) =>
        issueMemory(i + 2, `Gadget issue ${i + 2}`, { repo: "acme/gadgets" }),
      ),
    );
    const exported = await exportGadgets(dataDir);
    expect(exported.err).toBe("");
    expect(exported.code).toBe(0);
    const ids = exported.records.map((record) => record.id);
    expect(ids).toHaveLength(2_501);
    expect(new Set(ids).size).toBe(2_501);
    expect(ids.slice(0, 2)).toEqual(["issue-1", "issue-2"]);
    expect(ids.at(-1)).toBe("issue-2501");
  });

  it("stops starting jobs at a shutdown while it answers a request, and answers it", async () => {
    const dataDir = await seed();
    const server = await startServer(dataDir);
    const { memory } = server.talos.services;
    // The request's answer is slow (a big data directory, a slow disk) ...
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    onTestFinished(() => release());
    let listing!: () => void;
    const listed = new Promise<void>((resolve) => (listing = resolve));
    const list = memory.list.bind(memory);
    vi.spyOn(memory, "list").mockImplementation(async () => {
      listing();
      await gate;
      return list();
    });
    const answer = sendRequest({
      directory: requestsDirectory(dataDir),
      request: { kind: "memory", op: "list" },
      clock: systemClock,
    });
    await listed;
    // ... and SIGTERM comes meanwhile: from then no job starts, whatever the request's wait
    // (they waited for it, which the grace for running jobs did not count).
    const closing = server.talos.close();
    const refused = () =>
      server.logs
        .lines()
        .filter((l) => l.msg === "delivery refused: not journaled" && l.reason === "stopping");
    await expect(
      server.probot.receive({
        id: "delivery-at-shutdown",
        name: "issues",
        payload: webhookExample("issues", "opened"),
      } as never),
    ).rejects.toThrow(/delivery refused \(stopping\)/);
    expect(refused()).toHaveLength(1);
    release();
    await closing;
    // The request taken before was answered all the same.
    const { namespaces } = (await answer)!.value as {
      namespaces: Array<{ installation: number; repository: number }>;
    };
    expect(namespaces.map((n) => `${n.installation}/${n.repository}`).sort()).toEqual([
      "7/101",
      "7/102",
      "8/101",
    ]);
  });

  it("searches through the server, and leaves name-keyed memories to a stopped server", async () => {
    const dataDir = await seedWithLegacy();
    await startServer(dataDir);
    const search = await talos([
      "memory",
      "search",
      "crash",
      "--repo",
      "acme/gadgets",
      "--data-dir",
      dataDir,
    ]);
    expect(search.code).toBe(0);
    const legacy = await talos([
      "memory",
      "delete",
      "--repo",
      "acme/legacy",
      "--yes",
      "--data-dir",
      dataDir,
    ]);
    expect(legacy.code).toBe(2);
    expect(legacy.err).toBe(
      `talos memory: a running server holds ${dataDir}: stop it to delete name-keyed memories from before the upgrade\n`,
    );
    expect(existsSync(join(dataDir, "memory", ".legacy", "7", "acme", "legacy"))).toBe(true);
  });

  it("names another process holding the data directory, which does not answer, in an exit 2", async () => {
    const dataDir = await seed();
    const held = lockAsRunningServer(dataDir);
    for (const action of ["stats", "export", "compact"]) {
      const { code, err } = await talos(["memory", action, "--data-dir", dataDir]);
      expect(err).toBe(`talos memory: ${held}\n`);
      expect(code).toBe(2);
    }
  });
});

describe("talos memory: errors", () => {
  it.each([
    [
      ["memory"],
      /^talos memory: missing memory subcommand; use stats, search, export, compact, import, delete\n$/,
    ],
    [["memory", "frobnicate"], /^talos memory: unknown memory subcommand "frobnicate"/],
    [
      ["memory", "stats", "--repo", "not-a-repo"],
      /^talos memory: --repo takes owner\/repo or a repository id, not "not-a-repo"/,
    ],
    [
      ["memory", "stats", "--installation", "seven"],
      /^talos memory: --installation takes a numeric/,
    ],
    [
      ["memory", "stats", "--repo", "acme/nothing"],
      /^talos memory: no memory of acme\/nothing in .* \(found: 7\/acme\/gadgets, 7\/acme\/widgets, 8\/acme\/widgets\)/,
    ],
    [["memory", "stats", "extra"], /^talos memory: Unexpected argument 'extra'/],
    [
      ["memory", "delete", "--yes"],
      /^talos memory: delete takes --installation, --repo or both: it never deletes every memory at once\n$/,
    ],
    [
      ["memory", "delete", "--installation", "9", "--yes"],
      /^talos memory: no memory of installation 9 in /,
    ],
    [["memory", "stats", "--yes"], /^talos memory: Unknown option '--yes'/],
    [["memory", "export", "--k", "3"], /^talos memory: Unknown option '--k'/],
    [["memory", "search", "--installation", "7"], /^talos memory: search takes a query/],
    [
      ["memory", "search", "x", "--k", "0"],
      /^talos memory: --k takes a whole number of at least 1, not "0"/,
    ],
    [
      ["memory", "search", "x", "--kind", "issue,bug"],
      /^talos memory: --kind takes issue, pull_request, comment, answer, note, not "bug"/,
    ],
  ])("exits 2 with one line for bad input: %j", async (argv, message) => {
    const dataDir = await seed();
    const { code, err } = await talos(argv, { TALOS_DATA_DIR: dataDir });
    expect(err).toMatch(message);
    expect(code).toBe(2);
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  it("exits 2 when there is no memory to search", async () => {
    const dataDir = makeDataDir();
    const { code, err } = await talos(["memory", "search", "crash", "--data-dir", dataDir]);
    expect(code).toBe(2);
    expect(err).toBe(`talos memory: no memory to search in ${join(dataDir, "memory")}\n`);
  });

  it("exits 2 when the data directory does not exist", async () => {
    const missing = join(makeDataDir(), "nope");
    const { code, err } = await talos(["memory", "stats", "--data-dir", missing]);
    expect(code).toBe(2);
    expect(err).toBe(
      `talos memory: data directory ${missing} does not exist; pass --data-dir or set TALOS_DATA_DIR\n`,
    );
  });

  it("exits 2 with the lock's message when a running server holds the directory", async () => {
    const dataDir = await seed();
    const held = lockAsRunningServer(join(dataDir, "memory", "8", "101"));
    for (const action of ["stats", "export", "compact"]) {
      const { code, err } = await talos(["memory", action, "--data-dir", dataDir]);
      expect(code).toBe(2);
      expect(err).toBe(`talos memory: ${held}\n`);
    }
  });

  it("reports a damaged manifest in one line", async () => {
    const dataDir = await seed();
    const manifest = join(dataDir, "memory", "7", "102", "manifest.json");
    writeFileSync(manifest, "{ not json");
    const { code, err } = await talos(["memory", "stats", "--data-dir", dataDir]);
    expect(code).toBe(1);
    expect(err).toMatch(new RegExp(`^talos memory: ${manifest} is damaged`));
    expect(err.trim().split("\n")).toHaveLength(1);
  });
});

describe.runIf(await requirePostgres("talos memory with DATABASE_URL"))(
  "talos memory with DATABASE_URL: the memory in PostgreSQL",
  () => {
    const schema = freshSchema("talos_cli");
    const env = { DATABASE_URL: TEST_DATABASE_URL, TALOS_DATABASE_SCHEMA: schema };
    afterAll(() => dropSchema(schema));

    it("shows, searches and exports what the instances wrote there, and has nothing to compact", async () => {
      const { memory, close } = await openPostgresMemory(schema);
      await (
        await memory.open({ installation: 7, ...WIDGETS })
      ).addMany([
        issueMemory(1, "Crash when exporting invoices from the billing page"),
        issueMemory(2, "Dark mode colours are wrong in the settings page"),
      ]);
      await close();
      // No data directory is needed (nor read).
      const missing = join(makeDataDir(), "none");

      const stats = await talos(["memory", "stats", "--json", "--data-dir", missing], env);
      expect(stats.err).toBe("");
      expect(JSON.parse(stats.out).namespaces).toMatchObject([
        { installation: 7, repository: 101, repo: "acme/widgets", records: 2, model: LOCAL_MODEL },
      ]);
      const found = await talos(["memory", "search", "invoices billing crash", "--json"], env);
      expect(found.code).toBe(0);
      expect(JSON.parse(found.out).hits[0]).toMatchObject({ id: "issue-1", number: 1 });
      const exported = await talos(["memory", "export"], env);
      expect(
        exported.out
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line).id),
      ).toEqual(["issue-1", "issue-2"]);
      const compact = await talos(["memory", "compact"], env);
      expect(compact.code).toBe(0);
      expect(compact.out).toContain("Nothing to compact");
      const none = await talos(["memory", "stats", "--repo", "acme/other"], env);
      expect(none.code).toBe(2);
      expect(none.err).toContain(`no memory of acme/other in PostgreSQL (schema ${schema})`);
    });

    it("deletes an installation's memory there while an instance has it open, which then refuses it", async () => {
      const own = {
        DATABASE_URL: TEST_DATABASE_URL,
        TALOS_DATABASE_SCHEMA: freshSchema("talos_delete"),
      };
      const { memory, close } = await openPostgresMemory(own.TALOS_DATABASE_SCHEMA);
      try {
        const nine = await memory.open({ installation: 9, repository: 301, name: "octo/old" });
        const old = { repo: "octo/old", url: "https://github.com/octo/old/issues/1" };
        await nine.add(issueMemory(1, "An issue of an installation long uninstalled", old));
        await (
          await memory.open({ installation: 7, ...WIDGETS })
        ).add(issueMemory(2, "Dark mode colours are wrong in the settings page"));

        const { code, out, err } = await talos(
          ["memory", "delete", "--installation", "9", "--yes"],
          own,
        );
        expect(err).toBe("");
        expect(code).toBe(0);
        expect(out).toBe(
          `Deleted the memory of 9/octo/old (repository 301) from PostgreSQL (schema ${own.TALOS_DATABASE_SCHEMA}).\n`,
        );
        const left = await talos(["memory", "stats", "--json"], own);
        expect(JSON.parse(left.out).namespaces.map((n: { repo: string }) => n.repo)).toEqual([
          "acme/widgets",
        ]);
        // The instance's handle, opened before, writes nothing back; nor does a new open.
        await expect(
          nine.add(issueMemory(3, "A job journaled before the deletion", old)),
        ).rejects.toThrow(MemoryDeletedError);
        await expect(
          memory.open({ installation: 9, repository: 301, name: "octo/old" }),
        ).rejects.toThrow(MemoryDeletedError);
      } finally {
        await close();
        await dropSchema(own.TALOS_DATABASE_SCHEMA);
      }
    });

    it("imports the memory on disk into PostgreSQL, with backfill progress, and a second run changes nothing", async () => {
      const dataDir = await seed();
      const onDisk = registry(join(dataDir, "memory"));
      const widgets = await onDisk.open({ installation: 8, ...WIDGETS });
      await widgets.saveBackfillState({
        status: "done",
        page: 1,
        indexed: 2,
        repo: "acme/widgets",
      });
      // Issue 99 was deleted: the copy must refuse it too.
      await widgets.forgetThread(99);
      await onDisk.closeAll();
      const into = {
        DATABASE_URL: TEST_DATABASE_URL,
        TALOS_DATABASE_SCHEMA: freshSchema("talos_import"),
      };
      try {
        const exported = async (target: Record<string, string>) =>
          (await talos(["memory", "export", "--data-dir", dataDir], target)).out
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line) as Record<string, unknown>)
            .map(({ installation, repository, id, text, kind }) => ({
              installation,
              repository,
              id,
              text,
              kind,
            }));
        const first = await talos(["memory", "import", "--data-dir", dataDir], into);
        expect(first.err).toBe("");
        expect(first.code).toBe(0);
        const where = `PostgreSQL (schema ${into.TALOS_DATABASE_SCHEMA})`;
        expect(first.out.trim().split("\n")).toEqual([
          `Imported 1 records of 7/acme/gadgets into ${where}.`,
          `Imported 3 records of 7/acme/widgets into ${where}.`,
          `Imported 2 records of 8/acme/widgets into ${where}, with its backfill progress (done, 2 indexed).`,
        ]);
        const copied = await exported(into);
        expect(copied).toEqual(await exported({}));
        expect(copied).toHaveLength(6);
        // Found there by the instances' search, with the configured embedder.
        const found = await talos(
          ["memory", "search", "gadget firmware stalls", "--repo", "acme/gadgets", "--json"],
          into,
        );
        expect(JSON.parse(found.out).hits[0]).toMatchObject({ id: "issue-1" });
        const again = await talos(["memory", "import", "--data-dir", dataDir, "--json"], into);
        expect(again.code).toBe(0);
        expect(JSON.parse(again.out).namespaces.map((n: { records: number }) => n.records)).toEqual(
          [1, 3, 2],
        );
        expect(await exported(into)).toEqual(copied);
        const inDatabase = await openPostgresMemory(into.TALOS_DATABASE_SCHEMA);
        try {
          const imported = await inDatabase.memory.open({ installation: 8, ...WIDGETS });
          expect(await imported.forgottenThreads()).toEqual([99]);
          await imported.add(issueMemory(99, "Deleted, and back from a backfill page?"));
          expect(await imported.get("issue-99")).toBeUndefined();
        } finally {
          await inDatabase.close();
        }
        // Without a database there is nowhere to import into.
        const nowhere = await talos(["memory", "import", "--data-dir", dataDir]);
        expect(nowhere.code).toBe(2);
        expect(nowhere.err.trim().split("\n")).toHaveLength(1);
        expect(nowhere.err).toContain("set DATABASE_URL");
      } finally {
        await dropSchema(into.TALOS_DATABASE_SCHEMA);
      }
    });

    it("imports a renamed repository's memory, its records written under the old name", async () => {
      const dataDir = makeDataDir();
      const onDisk = registry(join(dataDir, "memory"));
      const widgets = await onDisk.open({ installation: 7, repository: 101, name: "acme/widgets" });
      await widgets.add(issueMemory(1, "Crash when exporting invoices from the billing page"));
      // Renamed: the memory is kept by id, under the new name; its record keeps the old one.
      expect(await onDisk.rename({ installation: 7, repository: 101, name: "acme/gizmos" })).toBe(
        true,
      );
      await onDisk.closeAll();
      const into = {
        DATABASE_URL: TEST_DATABASE_URL,
        TALOS_DATABASE_SCHEMA: freshSchema("talos_import_renamed"),
      };
      try {
        const result = await talos(["memory", "import", "--data-dir", dataDir, "--json"], into);
        expect(result.err).toBe("");
        expect(result.code).toBe(0);
        expect(JSON.parse(result.out).namespaces).toMatchObject([
          { installation: 7, repository: 101, repo: "acme/gizmos", records: 1 },
        ]);
        const found = await talos(
          ["memory", "search", "invoices export crash", "--repo", "acme/gizmos", "--json"],
          into,
        );
        expect(JSON.parse(found.out).hits[0]).toMatchObject({ id: "issue-1" });
      } finally {
        await dropSchema(into.TALOS_DATABASE_SCHEMA);
      }
    });
  },
);

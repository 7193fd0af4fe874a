import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { githubScope } from "../helpers/github-mocks.js";
import { runTalos } from "../helpers/run-talos.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry, issueMemory, lockAsRunningServer } from "../helpers/test-memory.js";

const TOKEN = "ghp_contractTestToken0123456789abcdefgh";

function expectBadInput(result: { code: number; err: string }, message: RegExp) {
  expect(result.err).toMatch(message);
  expect(result.err.trim().split("\n")).toHaveLength(1);
  expect(result.code).toBe(2);
}

/** A data directory with one memory: installation 7, acme/widgets. */
async function seed() {
  const dataDir = makeDataDir();
  const memories = createTestRegistry(join(dataDir, "memory"), { batchSize: 50 });
  const store = await memories.open({ installation: 7, repository: 101, name: "acme/widgets" });
  await store.addMany([issueMemory(1, "Crash when exporting invoices"), issueMemory(2, "Dark")]);
  await memories.closeAll();
  return dataDir;
}

describe("--help on every subcommand", () => {
  it.each([
    [["replay", "--help"]],
    [["chat", "--help"]],
    [["memory", "--help"]],
    [["memory", "stats", "-h"]],
    [["memory", "search", "--help"]],
    [["backfill", "--help"]],
    [["jobs", "--help"]],
  ])("prints the usage and exits 0: %j", async (argv) => {
    // No request is mocked and no variable is set: help needs neither.
    const { code, out, err } = await runTalos(argv);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toMatch(/^Usage: talos /);
    expect(out).toContain(`  ${argv[0]}`);
  });
});

describe("a pipe the reader closes early (`talos … | head -1`)", () => {
  /**
   * A stdout whose reader has gone, as `head -1` leaves it once it has its line. `unheard` says
   * whether it emitted an 'error' nobody listened to: in a process, an uncaught exception.
   */
  function closedPipe() {
    const stdout = Object.assign(
      new Writable({
        write(_chunk, _encoding, done) {
          done(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
        },
      }),
      { unheard: false },
    );
    const emit = stdout.emit.bind(stdout);
    stdout.emit = (event: string | symbol, ...args: unknown[]) => {
      if (event === "error" && stdout.listenerCount("error") === 0) {
        stdout.unheard = true;
        return false;
      }
      return emit(event, ...args);
    };
    return stdout;
  }

  it.each([
    [["replay", "fixtures/issue_comment.created.help.json"], false],
    // A data directory of no jobs (one not there is bad input, exit 2).
    [["jobs", "--json"], true],
    [["memory", "stats"], true],
    [["memory", "compact"], true],
    [["memory", "search", "crash", "--k", "2"], true],
  ])("stops quietly with exit code 0: %j", async (argv, seeded) => {
    const dataDir = seeded ? await seed() : makeDataDir();
    const stderr = new PassThrough();
    let err = "";
    stderr.on("data", (c: Buffer) => (err += c.toString()));
    const stdout = closedPipe();
    const code = await runCli([...argv, ...(seeded ? ["--data-dir", dataDir] : [])], {
      stdin: new PassThrough(),
      stdout,
      stderr,
      env: {},
      cwd: makeDataDir(),
    });
    // The stream reports a failed write on a later tick.
    await new Promise((resolve) => setImmediate(resolve));
    expect(stdout.unheard).toBe(false);
    expect(err).toBe("");
    expect(code).toBe(0);
  });
});

describe("a repository name that is not owner/repo", () => {
  it.each(["../..", "acme/..", "./widgets", "acme/."])(
    "exits 2 for backfill %s before any request",
    async (repo) => {
      // nock.disableNetConnect() is in force and nothing is mocked: a request would be exit 1.
      const scope = githubScope();
      const result = await runTalos(
        ["backfill", repo, "--installation", "7", "--data-dir", makeDataDir()],
        { env: { GITHUB_TOKEN: TOKEN, TALOS_GITHUB_MAX_RETRIES: "0" } },
      );
      expectBadInput(result, /^talos backfill: backfill takes owner\/repo, not "/);
      expect(scope.pendingMocks()).toEqual([]);
    },
  );

  it.each(["../..", "acme/.."])("exits 2 for chat --repo %s", async (repo) => {
    const result = await runTalos(["chat", "--repo", repo], {
      env: { OPENAI_API_KEY: "sk-x-0123456789abcdef" },
    });
    expectBadInput(result, /^talos chat: --repo takes owner\/repo, not "/);
  });
});

describe("an installation id that is not a positive integer", () => {
  it.each(["0", "00", "99999999999999999999"])(
    "exits 2 for backfill --installation %s before any request",
    async (installation) => {
      const result = await runTalos(
        ["backfill", "acme/widgets", "--installation", installation, "--data-dir", makeDataDir()],
        { env: { GITHUB_TOKEN: TOKEN, TALOS_GITHUB_MAX_RETRIES: "0" } },
      );
      expectBadInput(result, /^talos backfill: --installation takes a numeric installation id/);
    },
  );
});

describe("an id of memory that is not a positive integer as GitHub writes it", () => {
  // "07" had passed the check and matched nothing: "no memory of installation 07", exit 2,
  // where 7's was there (backfill refuses it outright).
  it.each([
    ["--installation", "07", /^talos memory: --installation takes a numeric installation id/],
    ["--installation", "0", /^talos memory: --installation takes a numeric installation id/],
    ["--repo", "0101", /^talos memory: --repo takes owner\/repo or a repository id/],
  ])("exits 2 for memory stats %s %s, naming what it takes", async (flag, value, error) => {
    const dataDir = await seed();
    expectBadInput(await runTalos(["memory", "stats", flag, value, "--data-dir", dataDir]), error);
  });
});

describe("a memory locked by a running server", () => {
  it("is bad input: exit code 2, in one line", async () => {
    const dataDir = await seed();
    lockAsRunningServer(join(dataDir, "memory", "7", "101"));
    expectBadInput(
      await runTalos(["memory", "stats", "--data-dir", dataDir]),
      /^talos memory: .* is in use by process \d+; stop it first/,
    );
  });
});

describe("talos replay --fixtures with recorded data of the wrong shape", () => {
  const payload = "fixtures/issue_comment.created.help.json";

  it.each([
    ["null", "null"],
    ["a list", "[1, 2]"],
    ["an entry that is not an object", '{ "GET /repos/{owner}/{repo}": null }'],
  ])("exits 2 naming the file for %s", async (_, text) => {
    const fixtures = makeDataDir();
    mkdirSync(join(fixtures, "api"));
    const file = join(fixtures, "api", "recorded.json");
    writeFileSync(file, text);
    expectBadInput(
      await runTalos(["replay", payload, "--fixtures", fixtures]),
      new RegExp(`^talos replay: ${file} does not hold recorded responses`),
    );
  });

  it("exits 2 when <dir>/api is a file", async () => {
    const fixtures = makeDataDir();
    writeFileSync(join(fixtures, "api"), "");
    expectBadInput(
      await runTalos(["replay", payload, "--fixtures", fixtures]),
      new RegExp(`^talos replay: ${join(fixtures, "api")} is not a directory`),
    );
  });
});

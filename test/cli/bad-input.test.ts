import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { githubScope, mockRepoConfig } from "../helpers/github-mocks.js";
import { runTalos } from "../helpers/run-talos.js";
import { makeDataDir, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

/** The contract: exit code 2 and one line on stderr, which matches `message`. */
function expectBadInput(result: { code: number; err: string }, message: RegExp) {
  expect(result.err).toMatch(message);
  expect(result.err.trim().split("\n")).toHaveLength(1);
  expect(result.code).toBe(2);
}

/** A file where a directory belongs. */
function makeFile() {
  const file = join(makeDataDir(), "not-a-directory");
  writeFileSync(file, "");
  return file;
}

/** The PEM lines around a body that is not a key: what a cut or hand-edited key file looks like. */
const MANGLED_KEY = TEST_PRIVATE_KEY.replace(/\n[A-Za-z0-9+/=]{64}\n/, "\nnot-base64!\n");
const EC_KEY = generateKeyPairSync("ec", {
  namedCurve: "P-256",
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;

describe("talos backfill with an app key that cannot sign", () => {
  const keyFile = join(makeDataDir(), "mangled.pem");
  writeFileSync(keyFile, MANGLED_KEY);

  it.each([
    ["a mangled PRIVATE_KEY", { PRIVATE_KEY: MANGLED_KEY }, "PRIVATE_KEY: .* cannot be read"],
    ["a mangled key file", { PRIVATE_KEY_PATH: keyFile }, "PRIVATE_KEY_PATH: .* cannot be read"],
    ["an EC key", { PRIVATE_KEY: EC_KEY }, "PRIVATE_KEY: .* is ec, not the RSA key"],
  ])("exits 2 naming the variable for %s, before any request", async (_, keyEnv, message) => {
    // nock.disableNetConnect() is in force: the JWT request would fail with exit code 1.
    const scope = githubScope();
    const result = await runTalos(["backfill", "acme/widgets", "--data-dir", makeDataDir()], {
      env: { APP_ID: "1", ...keyEnv },
    });
    expectBadInput(result, new RegExp(`^talos backfill: Invalid environment: ${message}`));
    expect(result.err).not.toContain("not-base64");
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe("a data directory that is a file", () => {
  it("exits 2 naming TALOS_DATA_DIR for talos jobs", async () => {
    const file = makeFile();
    expectBadInput(
      await runTalos(["jobs"], { env: { TALOS_DATA_DIR: file } }),
      new RegExp(`^talos jobs: Invalid environment: TALOS_DATA_DIR: ${file} is not a directory\n$`),
    );
    // A path through a file is no directory either (ENOTDIR, not ENOENT).
    expectBadInput(
      await runTalos(["jobs", "--json"], { env: { TALOS_DATA_DIR: join(file, "data") } }),
      /^talos jobs: Invalid environment: TALOS_DATA_DIR: .* is not a directory\n$/,
    );
  });

  it("exits 2 naming --data-dir when the option gave it, for jobs and backfill", async () => {
    const file = makeFile();
    expectBadInput(
      await runTalos(["jobs", "--data-dir", file]),
      new RegExp(`^talos jobs: --data-dir: ${file} is not a directory\n$`),
    );
    // Refused before GitHub is asked anything (no request is mocked).
    expectBadInput(
      await runTalos(["backfill", "acme/widgets", "--installation", "7", "--data-dir", file], {
        env: { GITHUB_TOKEN: "ghp_badInputTestToken0123456789abcdefgh" },
      }),
      new RegExp(`^talos backfill: --data-dir: ${file} is not a directory\n$`),
    );
  });

  it.each([
    ["jobs", ["jobs"]],
    ["jobs", ["jobs", "retry", "--all"]],
    ["memory", ["memory", "stats"]],
    ["backfill", ["backfill", "acme/widgets", "--installation", "7"]],
  ])(
    "exits 2 for talos %s given an empty --data-dir (an unset $DIR), not the current directory",
    async (command, argv) => {
      // The current directory holds a journal: an empty option had read it.
      const cwd = makeDataDir();
      mkdirSync(join(cwd, "jobs"));
      writeFileSync(join(cwd, "jobs", "journal.log"), "");
      expectBadInput(
        await runTalos([...argv, "--data-dir="], {
          cwd,
          env: { GITHUB_TOKEN: "ghp_badInputTestToken0123456789abcdefgh" },
        }),
        new RegExp(`^talos ${command}: --data-dir: no directory given\n$`),
      );
    },
  );

  // As `talos jobs retry` and `talos memory`: listed as empty, a directory other than the
  // server's (a mistyped one, or ./data from another directory) said no job was parked.
  it("names a data directory not made yet, rather than listing no jobs", async () => {
    const missing = join(makeDataDir(), "new");
    const result = await runTalos(["jobs", "--data-dir", missing]);
    expect(result.code).toBe(2);
    expect(result.out).toBe("");
    expect(result.err).toBe(
      `talos jobs: data directory ${missing} does not exist; pass --data-dir or set TALOS_DATA_DIR\n`,
    );
  });

  // A writer as the server is, but the server's directory is made by its first start: a mistyped
  // --data-dir, or ./data from another directory, had been made and indexed into, unread.
  it("refuses a backfill into a data directory not made yet, and makes none", async () => {
    const missing = join(makeDataDir(), "new");
    // Refused before GitHub is asked anything (no request is mocked).
    const result = await runTalos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", missing],
      { env: { GITHUB_TOKEN: "ghp_badInputTestToken0123456789abcdefgh" } },
    );
    expect(result.code).toBe(2);
    expect(result.out).toBe("");
    expect(result.err).toBe(
      `talos backfill: data directory ${missing} does not exist; pass --data-dir or set TALOS_DATA_DIR\n`,
    );
    expect(existsSync(missing)).toBe(false);
  });
});

describe("talos replay --fixtures", () => {
  const payload = "fixtures/issue_comment.created.help.json";

  it("exits 2 naming a directory that does not exist", async () => {
    const missing = join(makeDataDir(), "no-such-fixtures");
    expectBadInput(
      await runTalos(["replay", payload, "--fixtures", missing]),
      new RegExp(`^talos replay: --fixtures: ${missing} does not exist\n$`),
    );
  });

  it("exits 2 for a file given as the directory", async () => {
    const file = makeFile();
    expectBadInput(
      await runTalos(["replay", payload, "--fixtures", file]),
      new RegExp(`^talos replay: --fixtures: ${file} is not a directory\n$`),
    );
  });
});

describe("a count past what a number holds", () => {
  // 400 digits were Infinity: beside a server, sent as JSON null, they came back as its schema's
  // error (exit 1); with it stopped, the command ran unbounded.
  const huge = "9".repeat(400);
  it.each([
    ["memory", ["memory", "search", "crash", "--k", huge], "--k"],
    ["backfill", ["backfill", "acme/widgets", "--installation", "7", "--max", huge], "--max"],
    ["redeliver", ["redeliver", "--max", huge], "--max"],
  ])("exits 2 for talos %s, naming the option", async (command, argv, option) => {
    expectBadInput(
      await runTalos([...argv, "--data-dir", makeDataDir()]),
      new RegExp(
        `^talos ${command}: ${option} takes a whole number of at least 1, not "9{40}…"\n$`,
      ),
    );
  });
});

describe("the .env file", () => {
  it("exits 2 in one line when it cannot be read", async () => {
    const cwd = makeDataDir();
    mkdirSync(join(cwd, ".env"));
    expectBadInput(
      await runTalos(["jobs"], { cwd }),
      new RegExp(`^talos jobs: cannot read ${join(cwd, ".env")}: EISDIR\n$`),
    );
  });

  it.each([["help"], ["--help"], ["-h"], ["jobs", "--help"]])(
    "is not read for `talos %s`: help is what a broken setup asks for first",
    async (...argv) => {
      const cwd = makeDataDir();
      mkdirSync(join(cwd, ".env"));
      const result = await runTalos(argv, { cwd });
      expect(result.err).toBe("");
      expect(result.out).toMatch(/^Usage: talos <subcommand>/);
      expect(result.code).toBe(0);
    },
  );
});

describe("blank variables", () => {
  it("treat a blank LOG_LEVEL as unset: warnings only, not the info lines", async () => {
    const scope = githubScope();
    mockRepoConfig(scope, { owner: "acme", repo: "widgets" });
    scope.get("/repos/acme/widgets").reply(404, { message: "Not Found" });
    const { code, err } = await runTalos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", makeDataDir()],
      { env: { GITHUB_TOKEN: "ghp_badInputTestToken0123456789abcdefgh", LOG_LEVEL: " " } },
    );
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).toBe("talos backfill: there is no repository acme/widgets, or it is not visible\n");
    expect(code).toBe(2);
  });
});

describe("talos backfill with backfills switched off", () => {
  it.each([
    [
      "TALOS_BACKFILL_MAX=0 and no --max",
      [],
      /^talos backfill: backfills are off \(TALOS_BACKFILL_MAX=0\): give --max to run one\n$/,
    ],
    [
      "--max 0",
      ["--max", "0"],
      /^talos backfill: --max takes a whole number of at least 1, not "0"\n$/,
    ],
  ])("exits 2 for %s, before any request, marking nothing done", async (_, argv, message) => {
    const dataDir = makeDataDir();
    const result = await runTalos(["backfill", "acme/widgets", "--data-dir", dataDir, ...argv], {
      env: { APP_ID: "1", PRIVATE_KEY: TEST_PRIVATE_KEY, TALOS_BACKFILL_MAX: "0" },
    });
    expectBadInput(result, message);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe("talos replay with recorded headers no response can carry", () => {
  // They passed the check as strings, then failed the replay as if GitHub had (exit 1).
  const base = JSON.parse(readFileSync("fixtures/api/github.json", "utf8")) as Record<
    string,
    { headers?: Record<string, string> }
  >;

  it.each([
    ["a header name with a space", { "bad header": "x" }],
    ["a header value with a newline", { "x-note": "a\nb" }],
    ["a header value beyond Latin-1", { "x-note": "€" }],
  ])("exits 2 naming the file and the entry for %s", async (_, headers) => {
    const fixtures = makeDataDir();
    mkdirSync(join(fixtures, "api"));
    const data = structuredClone(base);
    data["GET /app"]!.headers = headers;
    writeFileSync(join(fixtures, "api", "github.json"), JSON.stringify(data));

    expectBadInput(
      await runTalos([
        "replay",
        "fixtures/issue_comment.created.help.json",
        "--fixtures",
        fixtures,
      ]),
      /^talos replay: .*github\.json: "GET \/app": headers: a header name or value no response can carry/,
    );
  });
});

describe("talos replay with a JSON object that is no payload of its event", () => {
  // Such a file ran no handler, and the replay had said "Replayed …, 0 planned write(s)".
  it.each([
    ["an empty object", {}, "missing"],
    ["an issue copied from the API", { number: 1, title: "Crash", state: "open" }, "missing"],
    [
      "an action the event does not have",
      { action: "opened" },
      '"opened", not one of issue_comment\'s',
    ],
  ])("exits 2 for %s", async (_, payload, said) => {
    const file = join(makeDataDir(), "issue_comment.created.json");
    writeFileSync(file, JSON.stringify(payload));
    const result = await runTalos(["replay", file]);
    expect(result.out).toBe("");
    expectBadInput(
      result,
      new RegExp(
        `^talos replay: ${file} does not hold a payload of issue_comment: its "action" is ${said}`,
      ),
    );
  });
});

describe("a GHE_HOST or OPENAI_BASE_URL that is not what it must be", () => {
  const token = "ghp_badInputEnvToken0123456789abcdefghij";
  // "https://ghe.example.com" is the commonest mistake (Probot wants the host alone); a blank
  // inside or a path make no URL either. Every request then failed, and the command said
  // "Invalid URL" or "getaddrinfo ENOTFOUND https", exit 1, naming nothing.
  it.each(["https://ghe.example.com", "ghe example.com", "ghe.example.com/api/v3"])(
    "exits 2 naming GHE_HOST for talos backfill (%s), before any request",
    async (host) => {
      const scope = githubScope();
      const result = await runTalos(
        ["backfill", "acme/widgets", "--installation", "7", "--data-dir", makeDataDir()],
        { env: { GITHUB_TOKEN: token, GHE_HOST: host, TALOS_GITHUB_MAX_RETRIES: "0" } },
      );
      expect(scope.pendingMocks()).toEqual([]);
      expectBadInput(result, /GHE_HOST: the host name alone/);
    },
  );

  it("exits 2 naming GHE_HOST for talos redeliver", async () => {
    const result = await runTalos(["redeliver", "--dry-run", "--data-dir", makeDataDir()], {
      env: { APP_ID: "1", PRIVATE_KEY: TEST_PRIVATE_KEY, GHE_HOST: "ghe example.com" },
    });
    expectBadInput(result, /GHE_HOST/);
  });

  it("exits 2 naming OPENAI_BASE_URL without its scheme (every model call failed with 'Connection error.')", async () => {
    const result = await runTalos(["jobs", "--data-dir", makeDataDir()], {
      env: { OPENAI_BASE_URL: "localhost:8080/v1" },
    });
    expectBadInput(result, /OPENAI_BASE_URL: use an http:\/\/ or https:\/\/ URL/);
  });
});

describe("a TALOS_PROMPTS_DIR that does not exist", () => {
  it("exits 2 naming TALOS_PROMPTS_DIR for talos backfill, before GitHub is asked", async () => {
    const scope = githubScope();
    const missing = join(makeDataDir(), "no-such-prompts");
    const result = await runTalos(
      ["backfill", "acme/widgets", "--installation", "7", "--data-dir", makeDataDir()],
      {
        env: {
          GITHUB_TOKEN: "ghp_badInputEnvToken0123456789abcdefghij",
          TALOS_PROMPTS_DIR: missing,
        },
      },
    );
    expect(scope.pendingMocks()).toEqual([]);
    expectBadInput(result, /TALOS_PROMPTS_DIR: .*no-such-prompts/);
  });
});

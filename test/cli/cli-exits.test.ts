/**
 * The command-line tool's exits and inputs, through `node bin/talos.js` where an exit code or a
 * process that does not end is what is checked: a failure half-way through opening the services
 * closes what opened, a stopped runner keeps no retry's timer, the app's key is found as Probot
 * finds it, and bad recorded data or dates are bad input (exit 2).
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "../../src/config.js";
import { runTalos } from "../helpers/run-talos.js";
import { buildDist, getFreePort, ROOT } from "../helpers/server-process.js";
import { makeDataDir, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

interface Spawned {
  code: number | null;
  /** Killed by the test because it had not exited within the time allowed. */
  timedOut: boolean;
  ms: number;
  out: string;
  err: string;
}

/** `node bin/talos.js <args>` in `cwd`, with only `env` (and PATH) set, killed after `timeoutMs`. */
function spawnTalos(
  args: string[],
  {
    env = {},
    cwd = makeDataDir(),
    timeoutMs = 15_000,
  }: {
    env?: Record<string, string>;
    cwd?: string;
    timeoutMs?: number;
  } = {},
): Promise<Spawned> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(ROOT, "bin/talos.js"), ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, ms: Date.now() - started, out, err });
    });
  });
}

/** A port nothing listens on: a PostgreSQL (or GitHub) that does not answer. */
async function closedPort(): Promise<number> {
  return getFreePort();
}

/** A tiny GitHub Enterprise stand-in answering every request with `answer(path)`. */
async function fakeGitHub(
  answer: (method: string, path: string) => { status: number; body: unknown },
): Promise<{ host: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").replace(/^\/api\/v3/, "");
    requests.push(`${req.method} ${path}`);
    const { status, body } = answer(req.method ?? "GET", path);
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** GitHub answering the app's delivery listing with none, and 404 to anything else. */
const deliveriesGitHub = () =>
  fakeGitHub((_, path) =>
    path.startsWith("/app/hook/deliveries")
      ? { status: 200, body: [] }
      : { status: 404, body: { message: "Not Found" } },
  );

/** The recorded GitHub data of `fixtures/api`, with a thread's comments answered `response`. */
function fixturesWith(response: Record<string, unknown>): string {
  const dir = makeDataDir();
  mkdirSync(join(dir, "api"));
  copyFileSync(join(ROOT, "fixtures/api/github.json"), join(dir, "api/github.json"));
  writeFileSync(
    join(dir, "api/zz-override.json"),
    JSON.stringify({ "GET /repos/{owner}/{repo}/issues/{issue_number}/comments": response }),
  );
  return dir;
}

beforeAll(() => buildDist(), 120_000);

describe("a one-line error", () => {
  it("is scrubbed as the log is: a secret it quotes is not printed", async () => {
    const secret = "sk-cli0123456789abcdefghij";
    const notADirectory = join(makeDataDir(), `data-${secret}`);
    writeFileSync(notADirectory, "");
    const result = await spawnTalos(["memory", "stats", "--data-dir", notADirectory], {
      env: { OPENAI_API_KEY: secret },
    });
    expect(result.err).toMatch(/^talos memory: .*data-\[REDACTED\] is not a directory\n$/);
    expect(result.err).not.toContain(secret);
    expect(result.code).toBe(2);
  });
});

describe.runIf(availableParallelism() > 1)(
  "a DATABASE_URL that does not answer (createServices fails half-way)",
  () => {
    it("talos backfill prints one line and exits", async () => {
      const url = `postgres://talos:s3cretPW@127.0.0.1:${await closedPort()}/test`;
      const result = await spawnTalos(
        [
          "backfill",
          "acme/widgets",
          "--installation",
          "1",
          "--max",
          "5",
          "--data-dir",
          makeDataDir(),
        ],
        { env: { DATABASE_URL: url, GITHUB_TOKEN: "ghp_testToken0123456789abcdefghijklmn" } },
      );
      expect(result.err).toMatch(/^talos backfill: DATABASE_URL: cannot prepare the database/);
      expect(result.err).not.toContain("s3cretPW");
      // Its worker threads, started before the database was asked, are closed: it exits.
      expect(result.timedOut, `still running after ${result.ms} ms`).toBe(false);
      expect(result.code).toBe(1);
    }, 30_000);

    it("talos redeliver (which reads no memory) exits 0, the database never asked", async () => {
      const url = `postgres://talos:s3cretPW@127.0.0.1:${await closedPort()}/test`;
      const github = await deliveriesGitHub();
      try {
        const result = await spawnTalos(["redeliver", "--dry-run", "--data-dir", makeDataDir()], {
          env: {
            APP_ID: "1",
            PRIVATE_KEY: TEST_PRIVATE_KEY,
            GHE_HOST: github.host,
            GHE_PROTOCOL: "http",
            DATABASE_URL: url,
          },
        });
        expect(result.timedOut, `still running after ${result.ms} ms: ${result.err}`).toBe(false);
        // It lists deliveries with the app's JWT and reads the job queue: no database involved.
        expect(result.err).toBe("");
        expect(result.code).toBe(0);
      } finally {
        await github.close();
      }
    }, 30_000);
  },
);

describe("talos replay after a recorded response that fails the job with a retryable error", () => {
  const payload = join(ROOT, "fixtures/issue_comment.created.help.json");

  it("exits once it has said so, not after the retry's wait (a recorded rate limit, Retry-After: 600)", async () => {
    const fixtures = fixturesWith({
      status: 403,
      body: { message: "You have exceeded a secondary rate limit" },
      headers: { "retry-after": "600" },
    });
    const result = await spawnTalos(["replay", payload, "--fixtures", fixtures], {
      timeoutMs: 20_000,
    });
    expect(result.err).toMatch(/^talos replay: /);
    expect(result.timedOut, `still running after ${result.ms} ms: ${result.err}`).toBe(false);
  }, 60_000);
});

describe("talos replay with recorded data of the wrong shape", () => {
  it.each([[700], [0], [199]])(
    "refuses a recorded status %s as bad input (exit 2)",
    async (status) => {
      const dir = fixturesWith({ status, body: [] });
      const result = await runTalos([
        "replay",
        join(ROOT, "fixtures/issue_comment.created.help.json"),
        "--fixtures",
        dir,
      ]);
      expect(result.err).toMatch(/zz-override\.json: "GET .*": status: .*200 to 599/);
      expect(result.code).toBe(2);
    },
    90_000,
  );
});

describe("the app's key as the one .pem file in the current directory (as Probot finds it)", () => {
  function dirWithPem(): string {
    const cwd = makeDataDir();
    writeFileSync(join(cwd, "talos.2026-01-01.private-key.pem"), TEST_PRIVATE_KEY);
    return cwd;
  }

  it("as with PRIVATE_KEY in the environment: the same commands reach GitHub", async () => {
    const github = await deliveriesGitHub();
    try {
      const env = {
        APP_ID: "1",
        PRIVATE_KEY: TEST_PRIVATE_KEY,
        GHE_HOST: github.host,
        GHE_PROTOCOL: "http",
      };
      const redeliver = await spawnTalos(["redeliver", "--dry-run", "--data-dir", makeDataDir()], {
        env,
      });
      expect(redeliver.err).toBe("");
      expect(redeliver.code).toBe(0);
      const backfill = await spawnTalos(
        ["backfill", "acme/widgets", "--max", "5", "--data-dir", makeDataDir()],
        { env },
      );
      expect(backfill.err).toBe("talos backfill: the app 1 is not installed on acme/widgets\n");
      expect(backfill.code).toBe(2);
    } finally {
      await github.close();
    }
  }, 30_000);

  it("is accepted by parseEnv (the key is checked), as Probot would load it", () => {
    expect(() => parseEnv({ APP_ID: "1" }, { cwd: dirWithPem() })).not.toThrow();
  });

  it("talos redeliver authenticates as the app with it", async () => {
    const github = await deliveriesGitHub();
    try {
      const result = await spawnTalos(["redeliver", "--dry-run", "--data-dir", makeDataDir()], {
        cwd: dirWithPem(),
        env: { APP_ID: "1", GHE_HOST: github.host, GHE_PROTOCOL: "http" },
      });
      expect(result.err).toBe("");
      expect(result.code).toBe(0);
      expect(github.requests.some((r) => r.startsWith("GET /app/hook/deliveries"))).toBe(true);
    } finally {
      await github.close();
    }
  }, 30_000);

  it("talos backfill looks the installation up with it", async () => {
    const github = await fakeGitHub(() => ({ status: 404, body: { message: "Not Found" } }));
    try {
      const result = await spawnTalos(
        ["backfill", "acme/widgets", "--max", "5", "--data-dir", makeDataDir()],
        { cwd: dirWithPem(), env: { APP_ID: "1", GHE_HOST: github.host, GHE_PROTOCOL: "http" } },
      );
      expect(result.err).toBe("talos backfill: the app 1 is not installed on acme/widgets\n");
      expect(result.code).toBe(2);
    } finally {
      await github.close();
    }
  }, 30_000);

  it("a damaged lone .pem is reported without naming a variable that is not set", () => {
    const cwd = makeDataDir();
    writeFileSync(
      join(cwd, "app.pem"),
      "-----BEGIN RSA PRIVATE KEY-----\ngarbage\n-----END RSA PRIVATE KEY-----\n",
    );
    expect(() => parseEnv({ APP_ID: "1" }, { cwd })).toThrow(
      /^Invalid environment: \S*app\.pem \(the \.pem file read when neither PRIVATE_KEY nor PRIVATE_KEY_PATH is set\): the key in it cannot be read/,
    );
  });
});

describe("talos backfill --since", () => {
  it.each(["2020-02-31", "2021-02-29", "2020-04-31T08:00:00Z"])(
    "refuses the impossible date %s (exit 2, naming --since)",
    async (since) => {
      const result = await runTalos(
        ["backfill", "acme/widgets", "--since", since, "--data-dir", makeDataDir()],
        {},
      );
      // Date.parse alone takes them as the next month's days.
      expect(result.err).toMatch(/^talos backfill: --since takes an ISO 8601 date/);
      expect(result.code).toBe(2);
    },
  );
});

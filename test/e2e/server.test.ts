import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/eventually.js";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import {
  buildDist,
  getFreePort,
  makeWorkDir,
  ROOT,
  sendWebhook,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import {
  loadFixture,
  makeDataDir,
  TEST_PRIVATE_KEY,
  TEST_WEBHOOK_SECRET,
} from "../helpers/test-app.js";

/**
 * `npm start`'s server, as a maintainer runs it: credentials in the environment, GitHub replaced
 * by a local stand-in through GHE_HOST/GHE_PROTOCOL, webhooks over real HTTP.
 */
describe("the started server", () => {
  let github: GitHubStandIn;
  let server: ServerProcess;
  let env: Record<string, string>;
  const workDir = makeWorkDir();

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    env = {
      APP_ID: "1",
      PRIVATE_KEY: TEST_PRIVATE_KEY,
      WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      PORT: String(await getFreePort()),
      GHE_HOST: github.host,
      GHE_PROTOCOL: "http",
      TALOS_DATA_DIR: makeDataDir(),
      TALOS_METRICS_PORT: String(await getFreePort()),
      LOG_FORMAT: "json",
      LOG_LEVEL: "debug",
    };
    server = await startServerProcess(env, { cwd: workDir });
  });

  afterAll(async () => {
    await server?.kill();
    await github?.close();
  });

  const help = (id: string) => ({
    id,
    event: "issue_comment",
    payload: loadFixture("issue_comment.created.help.json"),
  });
  const signed = { secret: TEST_WEBHOOK_SECRET };

  it("answers GET /healthz with its status and version, and nothing more", async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ok",
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
    const head = await fetch(`${server.url}/healthz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("application/json");
    expect(await head.text()).toBe("");
  });

  it("serves /metrics only on TALOS_METRICS_PORT, on 127.0.0.1, and not on the public port", async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    const res = await fetch(`${server.metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("# TYPE talos_github_requests_total counter");
    expect(server.output()).toContain(`"url":"${server.metricsUrl}/metrics"`);
    expect((await fetch(`${server.metricsUrl}/healthz`)).status).toBe(404);
  });

  it("rejects a bad signature and an unsigned delivery with 400, writing nothing", async () => {
    const bad = await sendWebhook(server.url, help("e2e-bad-signature"), {
      signature: "sha256=" + "0".repeat(64),
    });
    const unsigned = await sendWebhook(server.url, help("e2e-unsigned"), { signature: null });
    const wrongSecret = await sendWebhook(server.url, help("e2e-wrong-secret"), {
      secret: "not-the-secret",
    });
    expect([bad.status, unsigned.status, wrongSecret.status]).toEqual([400, 400, 400]);
    // Only the start's look for missed deliveries (redeliver-missed.ts).
    expect(github.requests.filter((r) => r.path !== "/app/hook/deliveries")).toEqual([]);
  });

  it("ignores a Bot, a NONE author, an edited comment and a command in a code block", async () => {
    const deliveries = [
      ["e2e-bot", "issue_comment.created.bot.json"],
      ["e2e-none", "issue_comment.created.not-allowed.json"],
      ["e2e-edited", "issue_comment.edited.help.json"],
      ["e2e-code", "issue_comment.created.code-block.json"],
    ] as const;
    for (const [id, fixture] of deliveries) {
      const res = await sendWebhook(
        server.url,
        { id, event: "issue_comment", payload: loadFixture(fixture) },
        signed,
      );
      expect(res.status).toBe(200);
    }
    expect(github.writes()).toEqual([]);
  });

  it("reacts once and replies once to /talos help from an OWNER, also when the delivery repeats", async () => {
    const res = await sendWebhook(server.url, help("e2e-help"), signed);
    expect(res.status).toBe(200);
    const thread = () => github.comments.get("Codertocat/Hello-World#1") ?? [];
    await eventually(() => thread().length > 0, "the reply");
    expect(github.reactions).toEqual([
      { repo: "Codertocat/Hello-World", commentId: 492700400, content: "eyes" },
    ]);
    expect(thread()).toHaveLength(1);
    expect(thread()[0]?.body).toMatch(
      /Talos commands in this repository[\s\S]*<!-- talos:reply:492700400 -->$/,
    );

    const again = await sendWebhook(server.url, help("e2e-help"), signed);
    expect(again.status).toBe(200);
    await eventually(
      () => server.output().includes("this delivery was already accepted"),
      "the skip",
    );
    expect(thread()).toHaveLength(1);
    expect(github.writes()).toHaveLength(2);
  });

  it("gives no second comment when the app restarts and the delivery comes again", async () => {
    // Its end journaled first: a job killed before that runs again at the restart (writing its
    // reaction again, later than this test looks), which the tests below would count.
    await eventually(
      () =>
        server
          .output()
          .split("\n")
          .some(
            (line) =>
              line.includes('"delivery":"e2e-help"') && line.includes('"msg":"job finished"'),
          ),
      "the first job's end",
    );
    await server.kill("SIGKILL");
    server = await startServerProcess(env, { cwd: workDir });
    const writesBefore = github.writes().length;

    const res = await sendWebhook(server.url, help("e2e-help"), signed);

    expect(res.status).toBe(200);
    await eventually(
      () => server.output().includes("this delivery was already accepted"),
      "the skip",
    );
    expect(github.writes()).toHaveLength(writesBefore);
    expect(github.comments.get("Codertocat/Hello-World#1")).toHaveLength(1);
  });

  it("refuses a second server on the same TALOS_DATA_DIR with exit code 2 and one line, and the first serves on", async () => {
    // The restart above took over the lock the killed server left.
    const second = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
      cwd: workDir,
      env: {
        PATH: process.env.PATH ?? "",
        HOST: "127.0.0.1",
        ...env,
        PORT: String(await getFreePort()),
        TALOS_METRICS_PORT: String(await getFreePort()),
      },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(second.status).toBe(2);
    const dataDir = env.TALOS_DATA_DIR!;
    expect(second.stderr.trim().split("\n")).toEqual([
      `talos: TALOS_DATA_DIR: ${dataDir} is in use by process ${server.child.pid}; stop it first (or remove ${join(dataDir, ".lock")} if it is gone); each server needs a data directory of its own`,
    ]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it("edits its reply when a new delivery of the same comment arrives after a restart", async () => {
    // A redelivery GitHub gives a new id, or a crash before the ledger recorded it: the reply
    // is found by its marker and edited.
    const writesBefore = github.writes().length;
    const res = await sendWebhook(server.url, help("e2e-help-second-id"), signed);
    expect(res.status).toBe(200);
    await eventually(
      () => github.writes().length === writesBefore + 2,
      "the reaction and the edit",
    );
    const thread = github.comments.get("Codertocat/Hello-World#1") ?? [];
    expect(thread).toHaveLength(1);
    expect(github.writes().at(-1)).toMatchObject({
      method: "PATCH",
      path: `/repos/Codertocat/Hello-World/issues/comments/${thread[0]?.id}`,
    });
  });

  it("also serves webhooks at the server root, where the setup page points the app", async () => {
    const payload = loadFixture<{ comment: { id: number; body: string } }>(
      "issue_comment.created.help.json",
    );
    payload.comment.id = 1234;
    payload.comment.body = "/talos config";
    const res = await sendWebhook(
      server.url,
      { id: "e2e-root", event: "issue_comment", payload },
      { ...signed, path: "/" },
    );
    expect(res.status).toBe(200);
    await eventually(
      () =>
        Boolean(
          github.comments
            .get("Codertocat/Hello-World#1")
            ?.at(-1)
            ?.body.includes("<!-- talos:reply:1234 -->"),
        ),
      "the reply to /talos config",
    );
  });

  it("never writes the private key, the webhook secret or the installation token to its log", () => {
    const output = server.output();
    expect(output).toContain("command answered");
    for (const secret of [
      TEST_WEBHOOK_SECRET,
      "ghs_standin2token",
      ...TEST_PRIVATE_KEY.split("\n").filter((l) => l.length > 20),
    ]) {
      expect(output).not.toContain(secret);
    }
  });
});

describe("/metrics on the public port", () => {
  it("requires TALOS_METRICS_TOKEN as a bearer token, and keeps the token out of the log", async () => {
    const token = "metrics-token-0123456789abcdef";
    const port = String(await getFreePort());
    const server = await startServerProcess(
      {
        APP_ID: "1",
        PRIVATE_KEY: TEST_PRIVATE_KEY,
        WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
        PORT: port,
        TALOS_DATA_DIR: makeDataDir(),
        TALOS_METRICS_TOKEN: token,
        LOG_FORMAT: "json",
        LOG_LEVEL: "trace",
      },
      { cwd: makeWorkDir() },
    );
    try {
      const none = await fetch(`${server.url}/metrics`);
      const wrong = await fetch(`${server.url}/metrics`, {
        headers: { authorization: "Bearer metrics-token-0123456789abcdeX" },
      });
      const right = await fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect([none.status, wrong.status, right.status]).toEqual([401, 401, 200]);
      expect(none.headers.get("www-authenticate")).toBe("Bearer");
      expect(await right.text()).toContain("# TYPE talos_github_requests_total counter");
      expect(server.output()).not.toContain(token);
    } finally {
      await server.kill();
    }
  });
});

describe("npm start with no credentials", () => {
  it("serves Probot's setup page", async () => {
    const port = String(await getFreePort());
    const server = await startServerProcess(
      { PORT: port, NO_SMEE_SETUP: "true", TALOS_DATA_DIR: makeDataDir() },
      { cwd: makeWorkDir(), readyPath: "/probot" },
    );
    try {
      const root = await fetch(`${server.url}/`, { redirect: "manual" });
      expect(root.status).toBe(302);
      expect(root.headers.get("location")).toBe("/probot");
      const page = await (await fetch(`${server.url}/probot`)).text();
      expect(page).toContain("Register GitHub App");
      // The manifest posted to GitHub is built from app.yml.
      expect(page).toContain("issue_comment");
    } finally {
      await server.kill();
    }
  });
});

describe("a bad environment", () => {
  it("stops npm start with exit code 2 and one line naming the variable", async () => {
    buildDist();
    const result = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
      cwd: makeWorkDir(),
      env: {
        PATH: process.env.PATH ?? "",
        TALOS_CONCURRENCY: "many",
        TALOS_DATA_DIR: makeDataDir(),
      },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^talos: Invalid environment: TALOS_CONCURRENCY: /),
    ]);
  });

  it("stops npm start with exit code 2 and one line when TALOS_DATA_DIR is a file", () => {
    buildDist();
    const file = join(makeDataDir(), "not-a-directory");
    writeFileSync(file, "");
    const result = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
      cwd: makeWorkDir(),
      env: { PATH: process.env.PATH ?? "", TALOS_DATA_DIR: file },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split("\n")).toEqual([
      `talos: Invalid environment: TALOS_DATA_DIR: ${file} is not a directory`,
    ]);
  });

  it("stops npm start with exit code 2 and one line for a bad APP_ID, key, webhook secret, port or host", async () => {
    buildDist();
    const taken = createNetServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const takenPort = String((taken.address() as { port: number }).port);
    const app = { APP_ID: "1", PRIVATE_KEY: TEST_PRIVATE_KEY, WEBHOOK_SECRET: "secret" };
    const cases: Array<[Record<string, string>, RegExp]> = [
      [
        { ...app, PRIVATE_KEY: "MySuperSecretGarbageKey12345" },
        /^talos: Invalid environment: PRIVATE_KEY: /,
      ],
      [{ ...app, APP_ID: "abc" }, /^talos: Invalid environment: APP_ID: /],
      // Probot would take its public default secret, "development": anyone could sign deliveries.
      [
        { ...app, WEBHOOK_SECRET: "" },
        /^talos: Invalid environment: WEBHOOK_SECRET: APP_ID is set/,
      ],
      [
        { ...app, WEBHOOK_SECRET: "  " },
        /^talos: Invalid environment: WEBHOOK_SECRET: APP_ID is set/,
      ],
      [{ ...app, WEBHOOK_SECRET: "development" }, /^talos: Invalid environment: WEBHOOK_SECRET: /],
      [{ ...app, PORT: "99999" }, /^talos: Invalid environment: PORT: /],
      [{ ...app, PORT: "abc" }, /^talos: Invalid environment: PORT: /],
      [{ ...app, PORT: takenPort }, /^talos: PORT: cannot listen: /],
      [{ ...app, TALOS_METRICS_PORT: "" }, /^talos: TALOS_METRICS_PORT: cannot listen: /],
      // TEST-NET-1 (RFC 5737) is no address of this machine: listening there fails EADDRNOTAVAIL.
      [{ ...app, HOST: "192.0.2.1" }, /^talos: HOST: cannot listen: the address is not/],
      [
        { ...app, TALOS_METRICS_PORT: "0", TALOS_METRICS_HOST: "192.0.2.1" },
        /^talos: TALOS_METRICS_HOST: cannot listen: the address is not/,
      ],
    ];
    try {
      for (const [extra, expected] of cases) {
        const port = String(await getFreePort());
        const env: Record<string, string> = { PORT: port, ...extra };
        if (extra.TALOS_METRICS_PORT === "") env.TALOS_METRICS_PORT = port;
        const result = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
          cwd: makeWorkDir(),
          env: {
            PATH: process.env.PATH ?? "",
            HOST: "127.0.0.1",
            TALOS_DATA_DIR: makeDataDir(),
            ...env,
          },
          encoding: "utf8",
          timeout: 30_000,
        });
        expect(result.status, JSON.stringify(extra)).toBe(2);
        expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(expected)]);
        expect(result.stderr).not.toContain("MySuperSecretGarbageKey12345");
      }
    } finally {
      taken.close();
    }
  });

  it("stops npm start with exit code 1 and one line naming a shared service that does not answer", async () => {
    buildDist();
    const closed = await getFreePort();
    for (const [variable, url] of [
      ["REDIS_URL", `redis://127.0.0.1:${closed}`],
      ["DATABASE_URL", `postgres://talos@127.0.0.1:${closed}/talos`],
    ]) {
      const result = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
        cwd: makeWorkDir(),
        env: {
          PATH: process.env.PATH ?? "",
          APP_ID: "1",
          PRIVATE_KEY: TEST_PRIVATE_KEY,
          WEBHOOK_SECRET: "secret",
          PORT: String(await getFreePort()),
          TALOS_DATA_DIR: makeDataDir(),
          LOG_FORMAT: "json",
          [variable!]: url!,
        },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(result.status).toBe(1);
      expect(result.stderr.trim().split("\n")).toEqual([
        expect.stringMatching(new RegExp(`^talos: ${variable}: .*ECONNREFUSED`)),
      ]);
    }
  });
});

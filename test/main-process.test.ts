import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "./helpers/github-stand-in.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "./helpers/openai-stand-in.js";
import {
  askDelivery,
  buildDist,
  makeWorkDir,
  repliesTo,
  ROOT,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "./helpers/server-process.js";
import { makeDataDir, TEST_WEBHOOK_SECRET } from "./helpers/test-app.js";

/** `npm start` (`node dist/main.js`): its start-up checks and its signal handling. */
describe("npm start", () => {
  beforeAll(() => buildDist());

  // A restart must listen within seconds: the prestart build skips the compiler when dist/ was
  // built from these very sources (the time itself is measured, not asserted: README, Restarts).
  it("does not compile again with unchanged sources: the prestart build says so and exits 0", () => {
    const result = spawnSync(process.execPath, [join(ROOT, "scripts/build.js")], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe("dist/ is up to date with src/; not compiling");
  });

  it("stops with exit code 2 and one line when .env cannot be read, as the CLI does", () => {
    const cwd = makeWorkDir();
    mkdirSync(join(cwd, ".env"));
    const result = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
      cwd,
      env: { PATH: process.env.PATH ?? "", TALOS_DATA_DIR: makeDataDir() },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.stderr.trim().split("\n")).toEqual([
      `talos: cannot read ${join(cwd, ".env")}: EISDIR`,
    ]);
    expect(result.status).toBe(2);
  });

  it("scrubs the one line it prints before the log exists, as the log is scrubbed", () => {
    const secret = "whsec-0123456789abcdef";
    const notADirectory = join(makeWorkDir(), `data-${secret}`);
    writeFileSync(notADirectory, "");
    const result = spawnSync(process.execPath, [join(ROOT, "dist/main.js")], {
      cwd: makeWorkDir(),
      env: { PATH: process.env.PATH ?? "", TALOS_DATA_DIR: notADirectory, WEBHOOK_SECRET: secret },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.stderr).toMatch(
      /^talos: Invalid environment: TALOS_DATA_DIR: .*data-\[REDACTED\] is not a directory\n$/,
    );
    expect(result.stderr).not.toContain(secret);
    expect(result.status).toBe(2);
  });

  describe("signals while running jobs get their grace", () => {
    let github: GitHubStandIn;
    let llm: OpenAIStandIn;
    const servers: ServerProcess[] = [];

    beforeAll(async () => {
      github = await startGitHubStandIn();
      llm = await startOpenAIStandIn();
      llm.fallback({ content: "Because." });
    });

    afterAll(async () => {
      llm?.release();
      for (const server of servers) {
        if (server.child.exitCode === null && server.child.signalCode === null)
          await server.kill("SIGKILL");
      }
      await github?.close();
      await llm?.close();
    });

    const logged = (server: ServerProcess, msg: string) =>
      server
        .output()
        .split("\n")
        .filter((line) => line.includes(`"msg":${JSON.stringify(msg)}`));

    /** Polls `check`; the test's own timeout bounds the wait. */
    async function until(check: () => boolean): Promise<void> {
      while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
    }

    it("SIGTERM: /healthz answers 503 stopping on a connection open before, and one a client keeps alive does not keep the process from exiting", async () => {
      const env = await standInServerEnv(github.host, {
        OPENAI_API_KEY: "sk-e2e-signals-0123456789abcdef",
        OPENAI_BASE_URL: llm.baseUrl,
        TALOS_MODEL: "local-model",
        TALOS_SHUTDOWN_GRACE_MS: "60000",
        LOG_LEVEL: "info",
      });
      const server = await startServerProcess(env, { cwd: makeWorkDir() });
      servers.push(server);
      onTestFailed(() => console.log(server.output()));
      const number = servers.length;
      const delivery = askDelivery("signals-health", 7100 + number, number);
      llm.hold();
      const arrived = llm.chatArrivals();
      const res = await sendWebhook(server.url, delivery, { secret: TEST_WEBHOOK_SECRET });
      expect(res.status).toBe(200);
      await llm.waitForChat(arrived + 1);

      // Two raw connections, each with a request under way when the signal comes (the listener
      // closes its idle ones then): a load balancer's health check, and a client that goes on
      // asking for something else on the same connection every few milliseconds.
      const { port } = new URL(server.url);
      const open = async () => {
        const socket = connect(Number(port), "127.0.0.1");
        await once(socket, "connect");
        const state = { text: "", closed: false };
        socket.on("data", (chunk: Buffer) => (state.text += chunk.toString()));
        socket.on("close", () => (state.closed = true));
        socket.on("error", () => undefined);
        return { socket, state };
      };
      const health = await open();
      const other = await open();
      health.socket.write("GET /healthz HTTP/1.1\r\nHost: talos\r\n");
      other.socket.write("GET /nothing-here HTTP/1.1\r\nHost: talos\r\n");
      // Both are read once the server answers a request sent after them (it reads every socket
      // that is ready in one turn): at the signal, neither connection is idle. Unread, one was
      // taken as idle and closed at the signal, and the test waited for its answers in vain.
      const probe = await open();
      probe.socket.write("GET /healthz HTTP/1.1\r\nHost: talos\r\nConnection: close\r\n\r\n");
      await until(() => probe.state.closed);
      expect(probe.state.text).toMatch(/^HTTP\/1\.1 200 /);

      const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
      server.child.kill("SIGTERM");
      await until(() => logged(server, "waiting for running jobs").length === 1);
      health.socket.write("\r\n");
      other.socket.write("\r\n");
      await until(() => health.state.closed);
      const asking = setInterval(() => {
        if (!other.state.closed)
          other.socket.write("GET /nothing-here HTTP/1.1\r\nHost: talos\r\n\r\n");
      }, 20);
      await until(() => (other.state.text.match(/HTTP\/1\.1 404/g)?.length ?? 0) > 2);
      llm.release();
      await exited;
      clearInterval(asking);
      other.socket.destroy();

      expect(server.child.exitCode).toBe(0);
      expect(repliesTo(github, "Codertocat/Hello-World", number, 7100 + number)).toHaveLength(1);
      const [head] = health.state.text.split("\r\n\r\n");
      expect(head).toMatch(/^HTTP\/1\.1 503 /);
      expect(head!.toLowerCase()).toContain("connection: close");
      expect(JSON.parse(/\{.*\}/.exec(health.state.text)![0])).toEqual({
        status: "stopping",
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      });
    }, 60_000);

    // Ctrl-C on `npm start` sends SIGINT twice: the terminal's to the process group, and npm's,
    // which forwards the signal it got to its child.
    for (const [first, second] of [
      ["SIGTERM", "SIGTERM"],
      ["SIGINT", "SIGINT"],
      ["SIGTERM", "SIGINT"],
    ] as const) {
      it(`${first} then ${second}: the running job still posts its reply, and the server exits 0 once`, async () => {
        const env = await standInServerEnv(github.host, {
          OPENAI_API_KEY: "sk-e2e-signals-0123456789abcdef",
          OPENAI_BASE_URL: llm.baseUrl,
          TALOS_MODEL: "local-model",
          TALOS_SHUTDOWN_GRACE_MS: "60000",
          LOG_LEVEL: "info",
        });
        const server = await startServerProcess(env, { cwd: makeWorkDir() });
        servers.push(server);
        onTestFailed(() => console.log(server.output()));
        const number = servers.length;
        const delivery = askDelivery(`signals-${first}-${second}`, 7000 + number, number);
        llm.hold();
        const arrived = llm.chatArrivals();
        const res = await sendWebhook(server.url, delivery, { secret: TEST_WEBHOOK_SECRET });
        expect(res.status).toBe(200);
        await llm.waitForChat(arrived + 1);

        const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
        server.child.kill(first);
        await until(() => logged(server, "waiting for running jobs").length === 1);
        server.child.kill(second);
        // The second signal is taken (logged), or it ended the process.
        const signalLines = () => server.output().match(/"msg":"SIG(TERM|INT): /g)?.length ?? 0;
        await until(
          () => signalLines() === 2 || server.child.exitCode !== null || !!server.child.signalCode,
        );
        llm.release();
        await exited;

        expect(server.child.signalCode).toBeNull();
        expect(server.child.exitCode).toBe(0);
        expect(repliesTo(github, "Codertocat/Hello-World", number, 7000 + number)).toHaveLength(1);
        // One shutdown: the second signal started no other.
        expect(logged(server, "waiting for running jobs")).toHaveLength(1);
        expect(logged(server, `${second}: already stopping`)).toHaveLength(1);
      }, 60_000);
    }
  });
});

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { copyFileSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually } from "./eventually.js";
import type { GitHubStandIn } from "./github-stand-in.js";
import { loadFixture, makeDataDir, TEST_PRIVATE_KEY, TEST_WEBHOOK_SECRET } from "./test-app.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The environment of the app with credentials, pointed at a GitHub stand-in (`host`), with its
 * state in a new directory and JSON logs. The stand-in has no secondary limits, so writes are
 * not spaced.
 */
export async function standInServerEnv(
  host: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    APP_ID: "1",
    PRIVATE_KEY: TEST_PRIVATE_KEY,
    WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    PORT: String(await getFreePort()),
    GHE_HOST: host,
    GHE_PROTOCOL: "http",
    TALOS_DATA_DIR: makeDataDir(),
    TALOS_GITHUB_WRITE_INTERVAL_MS: "0",
    TALOS_GITHUB_NOTIFICATION_INTERVAL_MS: "0",
    TALOS_METRICS_PORT: String(await getFreePort()),
    LOG_FORMAT: "json",
    ...extra,
  };
}

/** Builds dist/ as `npm start` does (not at all when it is current), so the tests run what a maintainer runs. */
export function buildDist(): void {
  execFileSync(process.execPath, [join(ROOT, "scripts/build.js")], {
    cwd: ROOT,
    stdio: "inherit",
    // A full tsc build takes under a minute here; a hung one must fail the test, not the run.
    timeout: 300_000,
  });
}

export async function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * A working directory like a fresh clone's: app.yml and package.json, and no `.env`, so a
 * developer's own `.env` cannot leak into the test.
 */
export function makeWorkDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "talos-e2e-"));
  copyFileSync(join(ROOT, "app.yml"), join(dir, "app.yml"));
  copyFileSync(join(ROOT, "package.json"), join(dir, "package.json"));
  return dir;
}

export interface ServerProcess {
  url: string;
  /** The metrics listener's base URL, when TALOS_METRICS_PORT is set. */
  metricsUrl: string | undefined;
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `node dist/main.js` (what `npm start` runs) and waits until `readyPath` answers. */
export async function startServerProcess(
  env: Record<string, string>,
  { cwd, readyPath = "/healthz" }: { cwd: string; readyPath?: string },
): Promise<ServerProcess> {
  const port = Number(env.PORT);
  const child = spawn(process.execPath, [join(ROOT, "dist/main.js")], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${url}${readyPath}`, { redirect: "manual" });
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    metricsUrl: env.TALOS_METRICS_PORT ? `http://127.0.0.1:${env.TALOS_METRICS_PORT}` : undefined,
    child,
    output: () => output,
    kill: (signal = "SIGTERM") =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill(signal);
      }),
  };
}

export interface Delivery {
  id: string;
  event: string;
  payload: unknown;
}

/** Sends a webhook the way GitHub does, signed with `secret` unless told otherwise. */
export async function sendWebhook(
  url: string,
  delivery: Delivery,
  {
    secret,
    signature,
    path = "/api/github/webhooks",
  }: { secret?: string; signature?: string | null; path?: string },
): Promise<Response> {
  const body = JSON.stringify(delivery.payload);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-github-event": delivery.event,
    "x-github-delivery": delivery.id,
  };
  const signed = secret
    ? `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`
    : undefined;
  const value = signature === undefined ? signed : signature;
  if (value) headers["x-hub-signature-256"] = value;
  return fetch(`${url}${path}`, { method: "POST", headers, body });
}

/**
 * Deliveries are acknowledged once journaled and run afterwards: waits until the server's job
 * runner logged the delivery's job as finished, and fails at once if it logged it failed.
 */
export async function jobFinished(server: ServerProcess, delivery: string): Promise<void> {
  const lines = () => server.output().split("\n");
  const about = (line: string) => line.includes(`"delivery":${JSON.stringify(delivery)}`);
  await eventually(() => {
    const failed = lines().find((line) => about(line) && line.includes('"msg":"job failed'));
    if (failed) throw new Error(`the job of ${delivery} failed: ${failed}`);
    return lines().some((line) => about(line) && line.includes('"msg":"job finished"'));
  }, `the job of ${delivery} to finish`);
}

/** `/talos ask` on issue `number`, from comment `commentId`, as GitHub delivers it. */
export function askDelivery(id: string, commentId: number, number: number): Delivery {
  const payload = loadFixture<{
    comment: { id: number; body: string };
    issue: { number: number };
  }>("issue_comment.created.help.json");
  payload.comment.id = commentId;
  payload.comment.body = `/talos ask why does X fail? (${id})`;
  payload.issue.number = number;
  return { id, event: "issue_comment", payload };
}

/** The stand-in's comments on `repo#number` that are replies to comment `commentId`. */
export function repliesTo(github: GitHubStandIn, repo: string, number: number, commentId: number) {
  return (github.comments.get(`${repo}#${number}`) ?? []).filter((c) =>
    c.body.endsWith(`<!-- talos:reply:${commentId} -->`),
  );
}

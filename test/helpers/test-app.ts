import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { Probot } from "probot";
import type { Logger } from "pino";
import { onTestFinished } from "vitest";
import { getSecrets, parseEnv, type Env } from "../../src/config.js";
import { createLogger } from "../../src/create-logger.js";
import type { Clock } from "../../src/clock.js";
import { createTalos, type Talos } from "../../src/index.js";
import type { Embedder } from "../../src/memory/embedder.js";
import { testMarkdownWorkers } from "./test-markdown-workers.js";

/** A throwaway RSA key: Probot signs real JWTs with it for the `GET /app` and token requests. */
export const TEST_PRIVATE_KEY = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;
export const TEST_APP_ID = 1;
export const TEST_WEBHOOK_SECRET = "test-webhook-secret-3f9a1c";

/** Captures JSON log lines in memory. */
export interface CapturedLogs {
  log: Logger;
  lines(): Array<Record<string, unknown>>;
  text(): string;
}

export async function captureLogs(
  level: "trace" | "debug" | "info" | "warn" = "debug",
  secrets: Array<string | undefined> = [],
): Promise<CapturedLogs> {
  const destination = new PassThrough();
  let text = "";
  destination.on("data", (chunk: Buffer) => (text += chunk.toString()));
  const log = await createLogger({ level, format: "json", secrets, destination });
  return {
    log,
    text: () => text,
    lines: () =>
      text
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

export function makeDataDir(): string {
  return mkdtempSync(join(tmpdir(), "talos-test-"));
}

export interface TestApp {
  probot: Probot;
  talos: Talos;
  logs: CapturedLogs;
  env: Env;
}

export interface TestAppOptions {
  dataDir?: string;
  clock?: Clock;
  logLevel?: "trace" | "debug" | "info" | "warn";
  /** Extra environment, e.g. cache settings. */
  env?: Record<string, string>;
  /** GitHub throttling and retries: off unless a test is about them. */
  octokit?: { throttle?: boolean; retry?: boolean };
  /** Where GitHub is: a stand-in's URL instead of nock's api.github.com. */
  baseUrl?: string;
  /** The chat model (a scripted fake); none by default, as with no OPENAI_API_KEY. */
  model?: BaseChatModel;
  /** The embedder; the local hashing one by default, as with no OPENAI_API_KEY. */
  embedder?: Embedder;
  /** Backfills and catch-ups on, as in production: off unless a test is about them. */
  backfills?: boolean;
}

/** A Probot instance running the real Talos app, with its state in a temporary directory. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const env = parseEnv({
    TALOS_DATA_DIR: options.dataDir ?? makeDataDir(),
    // Backfills off unless a test is about them: each repository's first event would otherwise
    // start one in the background (see BackfillRunner.opened), reading GitHub beside the test.
    ...(options.backfills ? {} : { TALOS_BACKFILL_MAX: "0" }),
    ...options.env,
  });
  // As main.ts does: the configured secrets, and the app's key and webhook secret Probot holds.
  const logs = await captureLogs(options.logLevel ?? "debug", [
    ...getSecrets(env),
    TEST_PRIVATE_KEY,
    TEST_WEBHOOK_SECRET,
  ]);
  const talos = await createTalos({
    env,
    log: logs.log,
    version: "0.0.0-test",
    octokit: options.octokit ?? { throttle: false, retry: false },
    model: options.model,
    markdown: testMarkdownWorkers(),
    ...(options.embedder ? { embedder: options.embedder } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const probot = new Probot({
    appId: TEST_APP_ID,
    privateKey: TEST_PRIVATE_KEY,
    secret: TEST_WEBHOOK_SECRET,
    log: logs.log,
    Octokit: talos.Octokit,
    ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
  });
  await probot.load(talos.app, { cwd: process.cwd(), addHandler: () => undefined });
  // A delivery is acknowledged once journaled and runs as a job afterwards; tests look at what
  // the job did, so receiving means receiving and running every job that may run now.
  const receive = probot.receive.bind(probot);
  probot.receive = async (event) => {
    await receive(event);
    await talos.services.jobs.idle();
  };
  onTestFinished(() => talos.close());
  return { probot, talos, logs, env };
}

export function loadFixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url), "utf8")) as T;
}

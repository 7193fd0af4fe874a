import { randomUUID } from "node:crypto";
import { mkdir, readdir, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { Clock } from "../clock.js";
import { readJsonFile } from "../read-json-file.js";
import { writeFileAtomically } from "../write-file-atomically.js";

/*
 * `talos jobs retry` beside a running server. The journal has one writer, the server, so the
 * command cannot append a retry itself: it leaves a request in `jobs/retry/`, which the server
 * reads each second, and the server answers with a result beside it. Files, not a port: who may
 * write the data directory already may run its jobs, and nothing listens that did not before.
 */

const SERVER = "server.json";
const REQUEST = /^([0-9a-f-]{36})\.(request|taken)\.json$/;
const resultFile = (id: string) => `${id}.result.json`;
// A request lists delivery ids (GUIDs), at most the journal's bound on jobs.
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
// A result nobody read (its command was killed while waiting) goes after this, as does a
// temporary file a writer killed mid-write left.
const RESULT_KEPT_MS = 3_600_000;

const RetryRequest = z.object({ ids: z.array(z.string().min(1).max(200)).max(100_000) });
const RetryResult = z.object({ retried: z.array(z.string()) });
const ServingServer = z.object({ pid: z.number(), host: z.string() });

/** Where requests and results go: beside the journal. */
export function retryRequestsDirectory(dataDir: string): string {
  return join(dataDir, "jobs", "retry");
}

export interface RetryRequestServer {
  /** Stops reading requests; resolves once the one being answered is. */
  stop(): Promise<void>;
}

export interface ServeRetryRequestsOptions {
  directory: string;
  /** Makes a parked job wait again; false when it is not parked (any more). */
  retryParked: (id: string) => Promise<boolean>;
  clock: Pick<Clock, "now">;
  log: Logger;
  intervalMs?: number;
}

/**
 * Answers retry requests until stopped. `server.json` names this process, so that a command
 * finding the data directory locked can tell a server that answers from another holder (a
 * `talos backfill`, or a server of an earlier version), and says so at once rather than waiting.
 */
export async function serveRetryRequests(
  options: ServeRetryRequestsOptions,
): Promise<RetryRequestServer> {
  const { directory, log } = options;
  const marker = join(directory, SERVER);
  try {
    await mkdir(directory, { recursive: true });
    await writeFileAtomically(marker, JSON.stringify({ pid: process.pid, host: hostname() }));
  } catch (error) {
    // A read-only or full data directory: the command then says the server must be stopped.
    log.warn({ err: error }, "cannot take `talos jobs retry` requests beside this server");
  }
  let answering: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (answering) return;
    answering = answerRetryRequests(options)
      .catch((error: unknown) => log.error({ err: error }, "cannot answer retry requests"))
      .finally(() => (answering = undefined));
  }, options.intervalMs ?? 1_000).unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await answering;
      // Only our own: a server started since (after a SIGKILL of this one) wrote its own.
      const serving = await readServer(directory);
      if (serving?.pid === process.pid) await unlink(marker).catch(() => undefined);
    },
  };
}

/**
 * One pass: each request taken (renamed, so the command can no longer withdraw it), answered,
 * then removed; results left unread for an hour, and temporary files as old, are removed.
 */
async function answerRetryRequests(options: ServeRetryRequestsOptions): Promise<void> {
  const { directory, log, clock } = options;
  const names = await readdir(directory).catch(() => [] as string[]);
  for (const name of names) {
    const file = join(directory, name);
    // A result, or a temporary file a writer killed mid-write left.
    if (name.endsWith(".result.json") || name.endsWith(".tmp")) {
      const age = await stat(file).then(
        (s) => clock.now() - s.mtimeMs,
        () => 0,
      );
      if (age > RESULT_KEPT_MS) await unlink(file).catch(() => undefined);
      continue;
    }
    const match = REQUEST.exec(name);
    if (!match) continue;
    const [, id, state] = match as unknown as [string, string, "request" | "taken"];
    // A taken one is left by a server that stopped while answering it: answered again.
    const taken = join(directory, `${id}.taken.json`);
    if (state === "request") {
      const withdrawn = await rename(file, taken).then(
        () => false,
        (error: NodeJS.ErrnoException) => {
          if (error.code === "ENOENT") return true;
          throw error;
        },
      );
      if (withdrawn) continue;
    }
    const ids = await readRequest(taken);
    if (!ids) {
      log.warn({ file }, "a retry request that cannot be read was removed");
      await unlink(taken).catch(() => undefined);
      continue;
    }
    const retried: string[] = [];
    for (const delivery of new Set(ids))
      if (await options.retryParked(delivery)) retried.push(delivery);
    log.info({ retried: retried.length, asked: ids.length }, "parked jobs retried on request");
    // Answered before the request goes: a crash between the two answers it again, and a job
    // retried already is not parked, so the second answer retries nothing twice.
    await writeFileAtomically(join(directory, resultFile(id)), JSON.stringify({ retried }));
    await unlink(taken).catch(() => undefined);
  }
}

/** A request's ids; undefined when it is too big, gone, or not a request. */
async function readRequest(file: string): Promise<string[] | undefined> {
  try {
    if ((await stat(file)).size > MAX_REQUEST_BYTES) return undefined;
    return (await readJsonFile(file, RetryRequest))?.ids;
  } catch {
    return undefined;
  }
}

const readServer = (directory: string) =>
  readJsonFile(join(directory, SERVER), ServingServer).catch(() => undefined);

/** Whether the process `owner` names answers retry requests in `directory`. */
export async function answersRetryRequests(
  directory: string,
  owner: { pid: number; host: string },
): Promise<boolean> {
  const serving = await readServer(directory);
  return serving?.pid === owner.pid && serving.host === owner.host;
}

export interface RequestRetriesOptions {
  directory: string;
  ids: string[];
  clock: Clock;
  /** How long to wait for the server's answer; it reads requests each second. */
  timeoutMs?: number;
}

/**
 * Asks the server to retry `ids`, and waits for its answer: the ids it retried, or undefined when
 * it did not take the request in time (it is stopping, or hung); the request is then withdrawn,
 * and nothing was retried. A request taken but not answered in time (the server died at it)
 * throws: some may have been retried.
 */
export async function requestRetries(
  options: RequestRetriesOptions,
): Promise<string[] | undefined> {
  const { directory, clock } = options;
  const id = randomUUID();
  const request = join(directory, `${id}.request.json`);
  const result = join(directory, resultFile(id));
  await mkdir(directory, { recursive: true });
  await writeFileAtomically(request, JSON.stringify({ ids: options.ids }));
  const timeoutMs = options.timeoutMs ?? 10_000;
  let deadline = clock.now() + timeoutMs;
  let taken = false;
  for (;;) {
    const answer = await readResult(result);
    if (answer) return answer;
    if (clock.now() >= deadline) {
      if (taken)
        throw new Error(
          "the server took the retry request but did not answer; `talos jobs` shows what is parked",
        );
      const withdrawn = await unlink(request).then(
        () => true,
        () => false,
      );
      if (withdrawn) return undefined;
      // Taken: the server is retrying them, and answers when it is done.
      taken = true;
      deadline = clock.now() + timeoutMs;
    }
    await clock.sleep(50);
  }
}

async function readResult(file: string): Promise<string[] | undefined> {
  const result = await readJsonFile(file, RetryResult);
  if (result) await unlink(file).catch(() => undefined);
  return result?.retried;
}

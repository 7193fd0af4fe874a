import { randomUUID } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { mkdir, readdir, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { Clock } from "./clock.js";
import { readJsonFile } from "./read-json-file.js";
import { writeFileAtomically } from "./write-file-atomically.js";

/*
 * Commands beside a running server. A server holds TALOS_DATA_DIR for its life (its lock), and
 * the journal and the memory stores have one writer: so a command the lock refuses, and that the
 * server can do for it (`talos jobs retry`, `talos memory …`, `talos backfill`), leaves a request
 * in `requests/`.
 * The server takes it (renames it, so the command can no longer withdraw it), does it, and
 * writes the answer beside it. Files, not a port: who may write the data directory already may do
 * what the requests ask, and nothing listens that did not before. The server watches the
 * directory, and reads it each second as well, since a watch misses changes on some file systems.
 */

const SERVER = "server.json";
const REQUEST = /^([0-9a-f-]{36})\.(request|taken)\.json$/;
const answerFile = (id: string) => `${id}.answer.json`;
// The biggest requests: a retry of every parked job (delivery ids, GUIDs, at most the journal's
// bound on jobs), and the statistics of every memory (about 60 bytes a namespace: some 70,000).
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
// An answer nobody read (its command was killed while waiting) goes after this, as does a
// temporary file a writer killed mid-write left.
const ANSWER_KEPT_MS = 3_600_000;

const Request = z.object({ kind: z.string().max(100) }).passthrough();
const Answer = z.union([z.object({ value: z.unknown() }), z.object({ error: z.string() })]);
const ServingServer = z.object({ pid: z.number(), host: z.string() });

/** Where requests and answers go. */
export function requestsDirectory(dataDir: string): string {
  return join(dataDir, "requests");
}

/** Does what a request of its kind asks (it checks the request's shape) and returns the answer. */
export type RequestHandler = (request: unknown) => Promise<unknown>;

export interface RequestServer {
  /** Stops reading requests; resolves once the one being answered is. */
  stop(): Promise<void>;
}

export interface ServeRequestsOptions {
  directory: string;
  /** By the request's `kind`. */
  handlers: Record<string, RequestHandler>;
  clock: Pick<Clock, "now">;
  log: Logger;
  intervalMs?: number;
}

/**
 * Answers requests until stopped. `server.json` names this process, so that a command finding the
 * data directory locked can tell a server that answers from another holder (another command, or
 * a server of an earlier version), and says so at once rather than waiting.
 */
export async function serveRequests(options: ServeRequestsOptions): Promise<RequestServer> {
  const { directory, log } = options;
  const marker = join(directory, SERVER);
  let watcher: FSWatcher | undefined;
  let answering: Promise<void> | undefined;
  let again = false;
  // Requests this process answered whose taken file it could not remove (a directory by that
  // name, say): not answered again, or each answer, waking the watch, would start another pass.
  const stuck = new Set<string>();
  const pass = () => {
    if (answering) {
      again = true;
      return;
    }
    answering = answerRequests(options, stuck)
      .catch((error: unknown) => log.error({ err: error }, "cannot answer requests"))
      .finally(() => {
        answering = undefined;
        if (again) {
          again = false;
          pass();
        }
      });
  };
  try {
    await mkdir(directory, { recursive: true });
    await writeFileAtomically(marker, JSON.stringify({ pid: process.pid, host: hostname() }));
  } catch (error) {
    // A read-only or full data directory: the commands then say the server must be stopped.
    log.warn({ err: error }, "cannot take requests of commands beside this server");
  }
  try {
    watcher = watch(directory, pass).on("error", () => watcher?.close());
    watcher.unref();
  } catch {
    // No watch (out of inotify watches, say): requests are still read each second.
  }
  const timer = setInterval(pass, options.intervalMs ?? 1_000).unref();
  return {
    stop: async () => {
      clearInterval(timer);
      watcher?.close();
      again = false;
      await answering;
      // Only our own: a server started since (after a SIGKILL of this one) wrote its own.
      const serving = await readServer(directory);
      if (serving?.pid === process.pid) await unlink(marker).catch(() => undefined);
    },
  };
}

/**
 * One pass: each request taken (renamed, so the command can no longer withdraw it), answered,
 * then removed; answers left unread for an hour, and temporary files as old, are removed.
 */
async function answerRequests(options: ServeRequestsOptions, stuck: Set<string>): Promise<void> {
  const { directory, log, clock } = options;
  const names = await readdir(directory).catch(() => [] as string[]);
  for (const name of names) {
    const file = join(directory, name);
    // An answer, or a temporary file a writer killed mid-write left.
    if (name.endsWith(".answer.json") || name.endsWith(".tmp")) {
      const age = await stat(file).then(
        (s) => clock.now() - s.mtimeMs,
        () => 0,
      );
      if (age > ANSWER_KEPT_MS) await unlink(file).catch(() => undefined);
      continue;
    }
    const match = REQUEST.exec(name);
    if (!match) continue;
    const [, id, state] = match as unknown as [string, string, "request" | "taken"];
    if (stuck.has(id)) continue;
    // A taken one is left by a server that stopped while answering it: answered again, which
    // is why every kind of request must be safe to do twice.
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
    const request = await readRequest(taken);
    if (!request) log.warn({ file }, "a request that cannot be read was answered with an error");
    const handler =
      request && Object.hasOwn(options.handlers, request.kind)
        ? options.handlers[request.kind]
        : undefined;
    const answer = !request
      ? { error: `the request is not JSON of a request, or is over ${MAX_REQUEST_BYTES} bytes` }
      : handler
        ? await handler(request).then(
            (value) => ({ value }),
            (error: unknown) => {
              log.warn({ err: error, kind: request.kind }, "a command's request failed");
              return { error: error instanceof Error ? error.message : String(error) };
            },
          )
        : { error: `this server does not answer requests of kind "${request.kind}"` };
    // Answered before the request goes: a crash between the two answers it again.
    await writeFileAtomically(join(directory, answerFile(id)), JSON.stringify(answer));
    await unlink(taken).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return;
      stuck.add(id);
      log.warn({ err: error, file: taken }, "an answered request cannot be removed");
    });
  }
}

/** A request; undefined when it is too big, gone, or not a request. */
async function readRequest(file: string): Promise<z.infer<typeof Request> | undefined> {
  try {
    if ((await stat(file)).size > MAX_REQUEST_BYTES) return undefined;
    return await readJsonFile(file, Request);
  } catch {
    return undefined;
  }
}

const readServer = (directory: string) =>
  readJsonFile(join(directory, SERVER), ServingServer).catch(() => undefined);

/** Whether the process `owner` names answers requests in `directory`. */
export async function answersRequests(
  directory: string,
  owner: { pid: number; host: string },
): Promise<boolean> {
  const serving = await readServer(directory);
  return serving?.pid === owner.pid && serving.host === owner.host;
}

/** The server answered the request with an error: what it said. */
export class RequestFailedError extends Error {
  override name = "RequestFailedError";
}

export interface SendRequestOptions {
  directory: string;
  request: { kind: string } & Record<string, unknown>;
  clock: Clock;
  /** How long the server has to take the request; it reads requests each second. 10 s. */
  timeoutMs?: number;
  /** How long it has to answer once taken: a memory's statistics may open many stores. 10 min. */
  answerTimeoutMs?: number;
  /** False once the server is known to have stopped, which ends the wait for its answer. */
  serving?: () => boolean;
}

/**
 * Sends a request and waits for the server's answer: `{ value }`, or undefined when the server did
 * not take it in time (it is stopping, or hung); the request is then withdrawn, and nothing was
 * done. An error the server answered throws a RequestFailedError; a request taken but not answered
 * (the server died at it) throws too.
 */
export async function sendRequest(
  options: SendRequestOptions,
): Promise<{ value: unknown } | undefined> {
  const { directory, clock } = options;
  const id = randomUUID();
  const request = join(directory, `${id}.request.json`);
  const answer = join(directory, answerFile(id));
  await mkdir(directory, { recursive: true });
  await writeFileAtomically(request, JSON.stringify(options.request));
  let deadline = clock.now() + (options.timeoutMs ?? 10_000);
  let taken = false;
  for (;;) {
    const answered = await readJsonFile(answer, Answer);
    if (answered) {
      await unlink(answer).catch(() => undefined);
      if ("error" in answered) throw new RequestFailedError(answered.error);
      return answered;
    }
    if (taken && options.serving && !options.serving())
      throw new Error(
        "the server took the request but stopped before answering: some of it may be done",
      );
    if (clock.now() >= deadline) {
      if (taken)
        throw new Error("the server took the request but did not answer: some of it may be done");
      const withdrawn = await unlink(request).then(
        () => true,
        () => false,
      );
      if (withdrawn) return undefined;
      // Taken: the server is doing it, and answers when it is done.
      taken = true;
      deadline = clock.now() + (options.answerTimeoutMs ?? 600_000);
    }
    await clock.sleep(20);
  }
}

import type { IncomingMessage, ServerResponse } from "node:http";
import { createNodeMiddleware, type Webhooks } from "@octokit/webhooks";
import type { Logger } from "pino";
import {
  createWebhookBodyBudget,
  type WebhookBodyBudget,
  type WebhookBodyHold,
} from "./create-webhook-body-budget.js";

/**
 * GitHub sends no webhook payload over 25 MB, so a bigger body is not GitHub's.
 * https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap
 */
export const WEBHOOK_MAX_BYTES = 25 * 1024 * 1024;

/**
 * How long a webhook body may take to come once its headers have. GitHub gives up on a delivery
 * after 10 s (and records it failed, to be redelivered), so a body still coming after this is not
 * GitHub's: the request is ended, rather than holding its part of the budget for Node's 300 s.
 * https://docs.github.com/en/webhooks/using-webhooks/handling-webhook-deliveries#respond-within-10-seconds
 */
export const WEBHOOK_RECEIVE_TIMEOUT_MS = 30_000;

/** A Node request handler as Probot's webhook middleware is one. */
export type NodeMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: () => void,
) => Promise<boolean>;

/**
 * How long a delivery's handler (its journaling) may take before the middleware answers. The
 * webhooks middleware Probot builds answers `202 still processing` after 9 s, before the journal
 * holds the delivery: were the write then to fail, or the process die, GitHub would count it
 * delivered, and nothing would ask for it again. GitHub itself gives up at 10 s and records the
 * delivery failed, so it can be redelivered (and the start's catch-up asks for it): waiting
 * longer than that is the honest answer. The bound only frees a request whose handler hangs.
 */
export const WEBHOOK_ANSWER_TIMEOUT_MS = 5 * 60_000;

/** The part of a Probot 14 instance that builds its webhook middleware. */
export interface WebhookMiddlewareFactory {
  readonly webhookPath: string;
  readonly webhooks: unknown;
  readonly log: Logger;
  getNodeMiddleware(options?: { path?: string | undefined }): Promise<NodeMiddleware>;
}

export interface BodyLimitOptions {
  /** The webhook route; other requests go to the middleware untouched. */
  path: string;
  maxBytes: number;
  /** The bytes of bodies being received, shared by every route of the process. */
  budget: WebhookBodyBudget;
  /** Where a delivery refused for the budget is told. */
  log: Pick<Logger, "warn">;
  receiveTimeoutMs?: number;
  /**
   * False while deliveries cannot be accepted (the shared job queue's Redis is away): they are
   * answered 503, before their body is read, so that GitHub shows them failed and they can be
   * redelivered.
   */
  available?: () => boolean;
  /**
   * Told when a delivery is answered with a failure of Talos's own (a 5xx: refused for the body
   * budget or an unreachable queue above, or not journaled behind): GitHub never redelivers it by
   * itself, so the server asks for it again (create-redelivery-sweeps.ts).
   */
  refused?: () => void;
}

/**
 * Puts a body limit in front of a webhook middleware, which otherwise buffers any body whole.
 * A declared `Content-Length` over the limit is answered 413 before the body is read (under it,
 * Node's parser stops at the declared length). A chunked body is read here, at most `maxBytes` of
 * it: past that, reading stops, what came is dropped and the answer is 413; under it, the body is
 * handed to the middleware as `req.body`, which Probot's reads instead of the stream.
 *
 * Bodies come unverified, so all of them together are bounded by `budget` too: a declared length
 * is held of it before the body is read, a chunked body's bytes as they come. A delivery that does
 * not fit is answered 503, before its body is read (or, chunked, once it no longer fits), which
 * GitHub records as failed, so that it can be redelivered. What a request holds is given back once
 * its body has come, or it fails or closes; a body still coming after `receiveTimeoutMs` is ended.
 */
export function createBodyLimitHandler(
  middleware: NodeMiddleware,
  {
    path,
    maxBytes,
    budget,
    log,
    receiveTimeoutMs = WEBHOOK_RECEIVE_TIMEOUT_MS,
    available = () => true,
    refused,
  }: BodyLimitOptions,
): NodeMiddleware {
  const route = normalizeTrailingSlashes(path);
  const receive: NodeMiddleware = async (req, res, next) => {
    if (!available())
      return refuse(
        req,
        res,
        503,
        "Service Unavailable: the job queue cannot be reached; redeliver later",
        { "retry-after": "60" },
      );
    const declared = req.headers["content-length"];
    // Node's parser has checked it: digits, and no more body than it says is read.
    const length = declared === undefined ? undefined : Number(declared);
    if (length !== undefined && length > maxBytes) return tooLarge(req, res, maxBytes);
    // All of it has come already (read before this route, or small enough to come with the
    // headers): there is nothing left to wait for, and no one to stall it.
    if (req.complete) return middleware(req, res, next);
    const hold = budget.hold(length ?? 0);
    if (!hold) return busy(req, res, { log, budget, bytes: length });
    const release = holdUntilReceived(req, res, hold, receiveTimeoutMs);
    if (length !== undefined) return middleware(req, res, next);
    const body = await readAtMost(req, maxBytes, hold);
    // What came of it is dropped: it is no longer held.
    if (typeof body === "string") release();
    if (body === "too large") return tooLarge(req, res, maxBytes);
    if (body === "over budget") return busy(req, res, { log, budget, bytes: undefined });
    // The client went away: there is no one to answer.
    if (body === "aborted") return true;
    (req as IncomingMessage & { body?: string }).body = body.toString("utf8");
    return middleware(req, res, next);
  };
  return async (req, res, next) => {
    if (req.method !== "POST" || pathnameOf(req.url) !== route) return middleware(req, res, next);
    const served = await receive(req, res, next);
    // Its head is written by now: a refusal's at once, the middleware's once the handler ended.
    // A body cut off (the middleware's 500) was no delivery; a whole one answered 5xx is refused,
    // even after GitHub hung up at its 10 s: GitHub recorded it failed (found by a review).
    if (res.headersSent && res.statusCode >= 500 && (res.statusCode === 503 || req.complete))
      refused?.();
    return served;
  };
}

/**
 * Makes every webhook middleware `probot` builds from now on limited: Probot's own route, which
 * its server puts in front of every handler an app adds (Probot 14's `Server.start`), and any
 * route the app builds with `getNodeMiddleware`. Call it before the app builds one.
 */
export function limitWebhookBodies(
  probot: WebhookMiddlewareFactory,
  {
    maxBytes = WEBHOOK_MAX_BYTES,
    budget = createWebhookBodyBudget(4 * maxBytes),
    receiveTimeoutMs,
    available,
    refused,
  }: WebhookLimits = {},
): void {
  const getNodeMiddleware = probot.getNodeMiddleware.bind(probot);
  probot.getNodeMiddleware = async (options = {}) => {
    const path = options.path ?? probot.webhookPath;
    // Probot's own is built for what building it sets up (its webhooks); the one used is the
    // same, with a longer timeout (WEBHOOK_ANSWER_TIMEOUT_MS).
    await getNodeMiddleware(options);
    const middleware = createNodeMiddleware(probot.webhooks as Webhooks, {
      path,
      log: probot.log,
      timeout: WEBHOOK_ANSWER_TIMEOUT_MS,
    }) as NodeMiddleware;
    return createBodyLimitHandler(middleware, {
      path,
      maxBytes,
      budget,
      log: probot.log,
      receiveTimeoutMs,
      available,
      refused,
    });
  };
}

export type WebhookLimits = Partial<
  Pick<BodyLimitOptions, "maxBytes" | "budget" | "receiveTimeoutMs" | "available" | "refused">
>;

/**
 * Setup mode (no credentials yet: `npm start` on a fresh clone) loads no app, so nothing above is
 * put in front of the webhook route Probot's server serves all the same, which read a body
 * whole (150 MB chunked: 4 GB of RSS). Its Probot instances are made inside `run`: their class
 * builds limited middleware instead, for this process, which stays in setup mode until it is
 * started again with the credentials. `before` is served ahead of it: `/healthz`, which the app
 * would add, so that a deployment's health check passes while someone registers the app.
 */
export function limitSetupWebhookBodies(
  probotClass: { prototype: Pick<WebhookMiddlewareFactory, "getNodeMiddleware"> },
  before: (req: IncomingMessage, res: ServerResponse) => boolean = () => false,
  budget: WebhookBodyBudget = createWebhookBodyBudget(4 * WEBHOOK_MAX_BYTES),
): void {
  const getNodeMiddleware = probotClass.prototype.getNodeMiddleware;
  probotClass.prototype.getNodeMiddleware = async function (
    this: WebhookMiddlewareFactory,
    options = {},
  ) {
    const middleware = await getNodeMiddleware.call(this, options);
    const path = options.path ?? this.webhookPath;
    const limited = createBodyLimitHandler(middleware, {
      path,
      maxBytes: WEBHOOK_MAX_BYTES,
      budget,
      log: this.log,
    });
    return async (req, res, next) =>
      before(req, res) || refuseLargeImport(req, res) || limited(req, res, next);
  };
}

// An imported app's id, key and secret: a few kilobytes.
const IMPORT_MAX_BYTES = 64 * 1024;

/**
 * Probot's setup page takes an existing app's credentials at `POST /probot/import`, and reads
 * that body whole, on the public port (a 100 MB chunked one was read to its end). Only one that
 * says its length, and a small one, reaches it: the page's own `fetch` sends a length.
 */
function refuseLargeImport(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== "POST" || pathnameOf(req.url) !== "/probot/import") return false;
  const length = Number(req.headers["content-length"]);
  if (req.headers["content-length"] !== undefined && length <= IMPORT_MAX_BYTES) return false;
  return refuse(req, res, 413, `an import must say its length, at most ${IMPORT_MAX_BYTES} bytes`);
}

/** An app function whose Probot instance builds only limited webhook middleware. */
export function withWebhookBodyLimit<P extends WebhookMiddlewareFactory, O>(
  app: (probot: P, options: O) => void | Promise<void>,
  options: WebhookLimits = {},
): (probot: P, options: O) => Promise<void> {
  return async (probot, appOptions) => {
    limitWebhookBodies(probot, options);
    await app(probot, appOptions);
  };
}

// How long a refused client has to read the answer before the connection is closed on it.
const LINGER_MS = 2_000;

function tooLarge(req: IncomingMessage, res: ServerResponse, maxBytes: number): true {
  return refuse(req, res, 413, `Payload Too Large: webhook bodies are at most ${maxBytes} bytes`);
}

/**
 * A delivery the budget has no room for: GitHub records it failed, and the server asks for it
 * again (`refused`). Logged without anything of its body; the delivery id, as the header says it.
 */
function busy(
  req: IncomingMessage,
  res: ServerResponse,
  { log, budget, bytes }: { log: Pick<Logger, "warn">; budget: WebhookBodyBudget; bytes?: number },
): true {
  const delivery = req.headers["x-github-delivery"];
  log.warn(
    {
      delivery: typeof delivery === "string" ? delivery.slice(0, 64) : undefined,
      bytes,
      heldBytes: budget.used(),
      budgetBytes: budget.maxBytes,
    },
    "webhook delivery refused: the webhook bodies being received fill TALOS_WEBHOOK_INFLIGHT_MB",
  );
  return refuse(
    req,
    res,
    503,
    "Service Unavailable: too many webhook bodies are being received; redeliver later",
    { "retry-after": "60" },
  );
}

/**
 * Gives `hold` back once the request's body has come (`end`), or the request fails or closes,
 * a client's abort included, or its answer is sent without the body being read (the middleware's
 * 400 for a missing header): whichever is first. A body still coming after `timeoutMs` is ended
 * with an error, which the reader of the body (the middleware, or readAtMost) gets. Returns the
 * release, for a body dropped before any of those.
 */
function holdUntilReceived(
  req: IncomingMessage,
  res: ServerResponse,
  hold: WebhookBodyHold,
  timeoutMs: number,
): () => void {
  const timer = setTimeout(
    () => req.destroy(new Error(`webhook body not received within ${timeoutMs} ms`)),
    timeoutMs,
  );
  // Not what keeps the process alive: the connection does, while it is open.
  timer.unref();
  const release = () => {
    clearTimeout(timer);
    hold.release();
  };
  req.once("end", release).once("close", release);
  res.once("close", release);
  return release;
}

/**
 * Answers `status`, and reads no more of the body. The answer is written but not ended at once:
 * ending it closes the connection, and a client still sending would then get a reset instead of
 * the answer. With the body no longer read, the client's sending stalls, it reads the answer and
 * goes; one that does not is closed on after LINGER_MS.
 */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  error: string,
  headers: Record<string, string> = {},
): true {
  req.pause();
  const body = JSON.stringify({ error });
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    connection: "close",
    ...headers,
  });
  res.write(body);
  // With `connection: close`, Node closes the socket once the answer is ended.
  const timer = setTimeout(() => res.end(), LINGER_MS);
  res.once("close", () => clearTimeout(timer));
  return true;
}

type ReadResult = Buffer | "too large" | "over budget" | "aborted";

function readAtMost(
  req: IncomingMessage,
  maxBytes: number,
  hold: WebhookBodyHold,
): Promise<ReadResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: ReadResult) => {
      req.off("data", onData).off("end", onEnd).off("error", onAbort).off("close", onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      const refused = size > maxBytes ? "too large" : !hold.add(chunk.length) && "over budget";
      if (!refused) return void chunks.push(chunk);
      chunks.length = 0;
      req.pause();
      finish(refused);
    };
    const onEnd = () => finish(Buffer.concat(chunks, size));
    const onAbort = () => finish("aborted");
    const onClose = () => {
      if (!req.complete) finish("aborted");
    };
    req.on("data", onData).on("end", onEnd).on("error", onAbort).on("close", onClose);
  });
}

/** The request's path as @octokit/webhooks compares it: no query, no trailing slashes. */
function pathnameOf(url: string | undefined): string | undefined {
  try {
    return new URL(normalizeTrailingSlashes(url ?? "/"), "http://localhost").pathname;
  } catch {
    // The middleware answers an unparseable URL itself (422).
    return undefined;
  }
}

/** As @octokit/webhooks does it; a loop, since `/\/+$/` is quadratic on a URL of many slashes. */
function normalizeTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === 47) end--;
  return end === 0 ? "/" : path.slice(0, end);
}

import type { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { ParseCommandOptions, ParsedCommand } from "../commands/parse-command.js";
import { hasCommandCandidate } from "../commands/parse-command.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { besideModule, startWorker } from "../start-worker.js";
import { toSafePlainText, type SafeMarkdownOptions } from "./to-safe-markdown.js";

/**
 * Markdown work on untrusted text, off the event loop. Once closed, both parses reject with
 * `MarkdownWorkersClosedError`, those under way included.
 */
export interface MarkdownService {
  /** `toSafeMarkdown`, or the text as inert plain text when the parse misses its deadline. */
  toSafeMarkdown(text: string, options: SafeMarkdownOptions): Promise<string>;
  /** `parseCommand`; null (no command) when the parse misses its deadline. */
  parseCommand(body: string, options: ParseCommandOptions): Promise<ParsedCommand | null>;
  /** Starts what the first parse would otherwise wait for. */
  warm(): void;
  close(): Promise<void>;
}

/**
 * A parse asked of closed workers: Talos is stopping, and no text is at fault. It fails the job,
 * which stays journaled and runs again at the next start. (A closed pool had answered as for a
 * missed deadline: the command was taken for no command, or its reply posted as escaped plain
 * text, and the job recorded done.)
 */
export class MarkdownWorkersClosedError extends Error {
  override name = "MarkdownWorkersClosedError";

  constructor() {
    super("Talos is stopping: its Markdown workers are closed");
  }
}

export type WorkerRequest =
  | { id: number; op: "safe"; text: string; options: SafeMarkdownOptions }
  | { id: number; op: "command"; body: string; options: ParseCommandOptions };

export type WorkerReply =
  | { id: number; op: "safe"; markdown: string; problems: string[] }
  | { id: number; op: "command"; command: ParsedCommand | null }
  | { id: number; op: "error"; message: string }
  | { id: -1; op: "ready" };

interface Job {
  request: WorkerRequest;
  settle(reply: WorkerReply | undefined, reason?: "deadline" | "error"): void;
  /** The pool closed before the reply came. */
  refuse(): void;
}

interface Slot {
  worker: Worker | undefined;
  ready: boolean;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
}

export interface MarkdownWorkersOptions {
  /** The longest a parse may take; past it the worker is replaced and the text is plain text. */
  deadlineMs: number;
  /** Worker threads; each parses one text at a time. */
  size?: number;
  /** How long a new worker may take to load. */
  startupMs?: number;
  metrics?: Pick<Metrics, "markdownFallbacks">;
  log: Logger;
  /** The worker's script; `markdown-worker.js` (or `.ts`, run from sources) next to this file. */
  entry?: URL;
  /** Hosts images may come from besides GitHub's: a GitHub Enterprise Server's (GHE_HOST). */
  imageHosts?: readonly string[];
}

/**
 * A small pool of worker threads that parse Markdown: a parse of hostile text can take a quarter
 * of a second or more (and, in parsers worse than markdown-it, minutes), and on the main thread
 * it would stall every installation's webhooks and `/healthz`. Each parse has a deadline: a
 * worker that misses it is terminated and replaced, and the text is treated as plain text:
 * escaped when posted, never taken as a command. Workers are unreferenced, so they keep no
 * process alive; a pending parse's deadline timer does until it settles. A closed pool refuses
 * every parse instead (MarkdownWorkersClosedError): no text is at fault then.
 */
export class MarkdownWorkers implements MarkdownService {
  readonly #options: MarkdownWorkersOptions;
  readonly #slots: Slot[];
  readonly #queue: Job[] = [];
  #nextId = 0;
  #closed = false;

  constructor(options: MarkdownWorkersOptions) {
    this.#options = options;
    this.#slots = Array.from({ length: options.size ?? 2 }, () => ({
      worker: undefined,
      ready: false,
      job: undefined,
      timer: undefined,
    }));
  }

  async toSafeMarkdown(text: string, given: SafeMarkdownOptions): Promise<string> {
    const options = { ...given, imageHosts: this.#options.imageHosts };
    const reply = await this.#run({ id: this.#nextId++, op: "safe", text, options });
    if (reply?.op === "safe" && reply.problems.length === 0) return reply.markdown;
    if (reply?.op === "safe") {
      this.#fallback("safe", "unsafe");
      this.#options.log.warn(
        { problems: reply.problems.slice(0, 5) },
        "safe Markdown failed its own check; posting the text as plain text",
      );
    }
    return toSafePlainText(text, options);
  }

  async parseCommand(body: string, options: ParseCommandOptions): Promise<ParsedCommand | null> {
    // Most comments hold no command line: they never reach a worker.
    if (!hasCommandCandidate(body, options)) return null;
    const reply = await this.#run({ id: this.#nextId++, op: "command", body, options });
    return reply?.op === "command" ? reply.command : null;
  }

  /**
   * Starts every worker now: loading the parser takes a worker about half a second, which the
   * first comment after a start would otherwise wait for.
   */
  warm(): void {
    if (this.#closed) return;
    for (const slot of this.#slots) if (!slot.worker) this.#start(slot);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.refuse();
    await Promise.all(
      this.#slots.map(async (slot) => {
        clearTimeout(slot.timer);
        slot.job?.refuse();
        slot.job = undefined;
        const worker = slot.worker;
        slot.worker = undefined;
        await worker?.terminate();
      }),
    );
  }

  /**
   * The worker's reply, or undefined when the parse missed its deadline or failed; rejected once
   * the pool is closed.
   */
  #run(request: WorkerRequest): Promise<WorkerReply | undefined> {
    if (this.#closed) return Promise.reject(new MarkdownWorkersClosedError());
    return new Promise((resolve, reject) => {
      let settled = false;
      this.#queue.push({
        request,
        settle: (reply, reason) => {
          if (settled) return;
          settled = true;
          if (reason) this.#fallback(request.op, reason);
          resolve(reply);
        },
        refuse: () => {
          if (settled) return;
          settled = true;
          reject(new MarkdownWorkersClosedError());
        },
      });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.job) continue;
      if (!slot.worker) this.#start(slot);
      if (!slot.ready) continue;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.timer = setTimeout(() => this.#missed(slot), this.#options.deadlineMs);
      slot.worker!.postMessage(job.request);
    }
  }

  #start(slot: Slot): void {
    const worker = createWorker(this.#options.entry);
    worker.unref();
    slot.worker = worker;
    slot.ready = false;
    // Loading has its own, longer deadline: a cold start is not the text's fault.
    const startup = setTimeout(() => {
      this.#options.log.error("a Markdown worker did not start in time");
      this.#replace(slot, worker, "error");
    }, this.#options.startupMs ?? 30_000);
    worker.on("message", (reply: WorkerReply) => {
      if (reply.op === "ready") {
        clearTimeout(startup);
        slot.ready = true;
        this.#dispatch();
        return;
      }
      const job = slot.job;
      if (!job || reply.id !== job.request.id) return;
      clearTimeout(slot.timer);
      slot.job = undefined;
      if (reply.op === "error") {
        this.#options.log.error({ error: reply.message }, "a Markdown parse failed");
        job.settle(undefined, "error");
      } else {
        job.settle(reply);
      }
      this.#dispatch();
    });
    worker.on("error", (error) => {
      clearTimeout(startup);
      this.#options.log.error({ err: error }, "a Markdown worker failed");
      this.#replace(slot, worker, "error");
    });
    worker.on("exit", () => {
      clearTimeout(startup);
      if (slot.worker === worker) this.#replace(slot, worker, "error");
    });
  }

  #missed(slot: Slot): void {
    const job = slot.job;
    this.#options.log.warn(
      { operation: job?.request.op, deadlineMs: this.#options.deadlineMs },
      "a Markdown parse missed its deadline; its text is treated as plain text",
    );
    if (slot.worker) this.#replace(slot, slot.worker, "deadline");
  }

  /**
   * Drops a worker that failed or ran late; its job falls back, and a fresh worker follows. A
   * worker that failed before it was ready (its file missing, say) would fail again: the queue
   * falls back instead, and the next request tries once more.
   */
  #replace(slot: Slot, worker: Worker, reason: "deadline" | "error"): void {
    if (slot.worker !== worker) return;
    clearTimeout(slot.timer);
    const started = slot.ready;
    slot.worker = undefined;
    slot.ready = false;
    const job = slot.job;
    slot.job = undefined;
    void worker.terminate();
    job?.settle(undefined, reason);
    if (!started) for (const queued of this.#queue.splice(0)) queued.settle(undefined, "error");
    if (!this.#closed) this.#dispatch();
  }

  #fallback(operation: string, reason: string): void {
    this.#options.metrics?.markdownFallbacks.inc({ operation, reason });
  }
}

/** The worker runs `markdown-worker` beside this file, or `entry` (tests). */
function createWorker(entry?: URL): Worker {
  return startWorker(entry ?? besideModule(import.meta.url, "markdown-worker"));
}

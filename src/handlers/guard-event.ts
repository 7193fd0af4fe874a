import type { EmitterWebhookEventName } from "@octokit/webhooks";
import type { Context } from "probot";
import { z } from "zod";
import { getCacheEvictions } from "../github/get-cache-evictions.js";
import type { EvictionScope, GitHubCache } from "../github/github-cache.js";
import type { JobRun, JobRunner } from "../jobs/job-runner.js";
import { isBotAuthor } from "../automations/is-bot-author.js";
import { readPayload, SenderPayload } from "./read-payload.js";

export type EventHandler<E extends EmitterWebhookEventName> = (
  context: Context<E>,
) => Promise<void>;

/** An event's work, run as a job: `run` carries what the job's earlier runs spent. */
export type JobEventHandler<E extends EmitterWebhookEventName> = (
  context: Context<E>,
  run: JobRun,
) => Promise<void>;

interface Sender {
  type?: string;
  login?: string;
}

interface EventPayload {
  action?: string;
  installation?: { id?: number };
  repository?: { id?: number; full_name?: string };
  issue?: { number?: number };
  pull_request?: { number?: number };
  sender?: Sender;
}

export interface EventPipelineDeps {
  jobs: JobRunner<Context>;
  cache: GitHubCache;
}

/**
 * Bots, Talos included, never trigger anything: bot loops and bot-driven abuse stop here. A
 * dependency bot's user account (self-hosted Renovate) is `type: "User"`, and often has write
 * access. Read before the delivery is journaled, so a field of the wrong type is no bot rather
 * than a 500.
 */
export function isBotSender(sender: Sender | null | undefined): boolean {
  const login: unknown = sender?.login;
  return sender?.type === "Bot" || (typeof login === "string" && isBotAuthor(login));
}

/**
 * @octokit/webhooks attaches the whole event (payload included, up to 25 MB) to a handler's
 * error before Probot logs it; made non-enumerable, it stays out of the log line.
 */
function hideEvent(error: object): void {
  Object.defineProperty(error, "event", { value: undefined, writable: true, enumerable: false });
}

/** An event handler failure, carrying the event's identity so the one error line names it. */
export class EventHandlerError extends Error {
  override name = "EventHandlerError";
  constructor(
    readonly eventName: string,
    readonly installation: number | undefined,
    readonly repository: string | undefined,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `${eventName} in ${repository ?? "(no repository)"} (installation ${installation ?? "none"}) failed: ${reason}`,
      { cause },
    );
    hideEvent(this);
  }
}

/**
 * The first steps of every event: a logger that carries the event name, installation and
 * repository (Probot's carries the delivery id), and eviction of the cache entries the event
 * reports as changed. Eviction comes before the bot check: a bot's change is still a change.
 */
function prepareEvent(context: Context, cache: GitHubCache): EventPayload & { eventName: string } {
  const payload = describeEvent(context);
  context.log = context.log.child({
    event: payload.eventName,
    installation: payload.installation?.id,
    repository: payload.repository?.full_name,
  });
  // Probot's request logging writes through the client's logger: make those lines carry the
  // event too. (Each event has a client of its own, except with a fixed token, as in `talos
  // replay`, which handles one event at a time.)
  context.octokit.log = context.log;
  const evictions = readCacheEvictions(context, payload);
  if (evictions.length > 0) {
    const evicted = evictions.reduce((sum, scope) => sum + cache.evict(scope), 0);
    context.log.debug({ evictions, evicted }, "cache entries evicted");
  }
  return payload;
}

/**
 * What the event made stale. A payload too malformed to tell (a list that is not one) evicts all
 * of its installation's entries instead, and goes on to be journaled: its handler parks it with
 * an error naming the field, where failing here answered every redelivery 500 with a TypeError.
 */
function readCacheEvictions(context: Context, payload: EventPayload): EvictionScope[] {
  try {
    return getCacheEvictions(context.name, payload);
  } catch (error) {
    const installation = payload.installation?.id;
    context.log.warn({ err: error }, "malformed webhook payload: cache evictions unknown");
    return installation === undefined ? [] : [{ installation: String(installation) }];
  }
}

function describeEvent(context: Context): EventPayload & { eventName: string } {
  const payload = context.payload as EventPayload;
  const eventName = payload.action ? `${context.name}.${payload.action}` : context.name;
  return { ...payload, eventName };
}

const SenderOf = z.object({ sender: SenderPayload });

/** A delivery that was not journaled (the queue is full, or the app is stopping). */
export class JobRefusedError extends Error {
  override name = "JobRefusedError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    // Refused exactly when the server is loaded or its disk full: not a 25 MB log line too.
    hideEvent(this);
  }
}

export interface AcceptOptions {
  /**
   * Bots never trigger anything, Talos included: events whose only work is to answer someone
   * ("ignore") stop here. Events that keep memory true to GitHub ("follow") are journaled for
   * bots too, and their handlers skip whatever a bot must not start.
   */
  bots: "ignore" | "follow";
  /**
   * Tells, from the payload alone, a delivery that is no work for Talos (a comment without a
   * command line, most of them): acknowledged without a journal entry, an fsync or a job.
   */
  noWork?: (payload: unknown) => { reason: string; app?: string | undefined } | undefined;
}

/**
 * What every handler shares, in one place: the event logger and cache eviction; bot senders
 * ignored where they have nothing to follow; the delivery journaled (durably, before Probot
 * acknowledges it) as a job of `kind`; and a job runner that runs it, in order with the others
 * of its thread, retrying it after a failure. A redelivery of a job already accepted is skipped.
 */
export function guardEvent<E extends EmitterWebhookEventName>(
  deps: EventPipelineDeps,
  kind: string,
  handler: JobEventHandler<E>,
  options: AcceptOptions,
): EventHandler<E> {
  deps.jobs.register(kind, async (context, run) => {
    const { eventName, installation, repository } = describeEvent(context);
    try {
      // Read before any work: a sender of the wrong type passed the bot check as a person's
      // (fail-open), and its command ran.
      readPayload(SenderOf, context.payload);
      await handler(context as Context<E>, run);
    } catch (error) {
      throw new EventHandlerError(eventName, installation?.id, repository?.full_name, error);
    }
  });
  return async (context) => {
    const payload = prepareEvent(context as Context, deps.cache);
    if (options.bots === "ignore" && isBotSender(payload.sender)) {
      context.log.debug({ sender: payload.sender?.login }, "ignored: the sender is a bot");
      return;
    }
    const none = options.noWork?.(context.payload);
    if (none) {
      context.log.debug({ app: none.app }, `ignored: ${none.reason}; not journaled`);
      return;
    }
    const result = await deps.jobs
      .submit(
        {
          id: context.id,
          kind,
          event: payload.eventName,
          thread: threadOf(payload),
          // Only as typed: a malformed payload is journaled (and parked) all the same, and what
          // `talos jobs` lists it by must not be a number or an object.
          repository:
            typeof payload.repository?.full_name === "string"
              ? payload.repository.full_name
              : undefined,
          installation:
            typeof payload.installation?.id === "number" ? payload.installation.id : undefined,
          payload: context.payload,
        },
        context as Context,
      )
      .catch((error: unknown) => {
        // Probot logs a handler's error with the event, payload and all: a 25 MB line exactly
        // when the disk is full. One short line instead, and the sender is answered 500.
        const reason = error instanceof Error ? error.message : String(error);
        context.log.warn({ reason: "error", err: error }, "delivery refused: not journaled");
        throw new JobRefusedError(`delivery not journaled (${reason}); redeliver it later`, {
          cause: error,
        });
      });
    if (result.status === "duplicate")
      context.log.info("ignored: this delivery was already accepted");
    if (result.status === "refused") {
      context.log.warn({ reason: result.reason }, "delivery refused: not journaled");
      throw new JobRefusedError(`delivery refused (${result.reason}); redeliver it later`);
    }
  };
}

/** Jobs about one issue or pull request run one at a time; so do a repository's others. */
export function threadOf(payload: EventPayload): string {
  const scope = `${payload.installation?.id ?? "-"}/${payload.repository?.id ?? "-"}`;
  const number = payload.issue?.number ?? payload.pull_request?.number;
  return number === undefined ? scope : `${scope}#${number}`;
}

/** For events Talos only listens to so that its cache follows changes on GitHub. */
export function watchEvent<E extends EmitterWebhookEventName>(
  deps: Pick<EventPipelineDeps, "cache">,
): EventHandler<E> {
  return async (context) => {
    prepareEvent(context as Context, deps.cache);
  };
}

import type { EmitterWebhookEventName } from "@octokit/webhooks";
import type { Context } from "probot";
import type { DeliveryLedger } from "../delivery-ledger.js";
import { getCacheEvictions } from "../github/get-cache-evictions.js";
import type { GitHubCache } from "../github/github-cache.js";

export type EventHandler<E extends EmitterWebhookEventName> = (
  context: Context<E>,
) => Promise<void>;

interface Sender {
  type?: string;
  login?: string;
}

interface EventPayload {
  action?: string;
  installation?: { id?: number };
  repository?: { full_name?: string };
  sender?: Sender;
}

export interface EventPipelineDeps {
  ledger: DeliveryLedger;
  cache: GitHubCache;
}

/** Bots, Talos included, never trigger anything: bot loops and bot-driven abuse stop here. */
export function isBotSender(sender: Sender | null | undefined): boolean {
  return sender?.type === "Bot" || Boolean(sender?.login?.toLowerCase().endsWith("[bot]"));
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
    // @octokit/webhooks attaches the whole event (payload included) to a handler's error before
    // Probot logs it; non-enumerable, it stays out of the log line.
    Object.defineProperty(this, "event", { value: undefined, writable: true, enumerable: false });
  }
}

/**
 * The first steps of every event: a logger that carries the event name, installation and
 * repository (Probot's carries the delivery id), and eviction of the cache entries the event
 * reports as changed. Eviction comes before the bot check: a bot's change is still a change.
 */
function prepareEvent(context: Context, cache: GitHubCache): EventPayload & { eventName: string } {
  const payload = context.payload as EventPayload;
  const eventName = payload.action ? `${context.name}.${payload.action}` : context.name;
  context.log = context.log.child({
    event: eventName,
    installation: payload.installation?.id,
    repository: payload.repository?.full_name,
  });
  // Probot's request logging writes through the client's logger: make those lines carry the
  // event too. (Each event has a client of its own, except with a fixed token, as in `talos
  // replay`, which handles one event at a time.)
  context.octokit.log = context.log;
  const evictions = getCacheEvictions(context.name, payload);
  if (evictions.length > 0) {
    const evicted = evictions.reduce((sum, scope) => sum + cache.evict(scope), 0);
    context.log.debug({ evictions, evicted }, "cache entries evicted");
  }
  return { ...payload, eventName };
}

/**
 * What every handler shares, in one place: the event logger and cache eviction; bot senders
 * ignored; a delivery already processed (a redelivery, or a resend after a restart) skipped, and
 * one that fails given back so that a redelivery runs again.
 */
export function guardEvent<E extends EmitterWebhookEventName>(
  deps: EventPipelineDeps,
  handler: EventHandler<E>,
): EventHandler<E> {
  return async (context) => {
    const { eventName, installation, repository, sender } = prepareEvent(
      context as Context,
      deps.cache,
    );
    if (isBotSender(sender)) {
      context.log.debug({ sender: sender?.login }, "ignored: the sender is a bot");
      return;
    }
    if (!deps.ledger.claim(context.id)) {
      context.log.info("ignored: this delivery was already processed or is being processed");
      return;
    }
    try {
      await handler(context);
    } catch (error) {
      deps.ledger.release(context.id);
      throw new EventHandlerError(eventName, installation?.id, repository?.full_name, error);
    }
    await deps.ledger.complete(context.id);
  };
}

/** For events Talos only listens to so that its cache follows changes on GitHub. */
export function watchEvent<E extends EmitterWebhookEventName>(
  deps: Pick<EventPipelineDeps, "cache">,
): EventHandler<E> {
  return async (context) => {
    prepareEvent(context as Context, deps.cache);
  };
}

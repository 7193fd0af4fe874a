import type { EmitterWebhookEventName } from "@octokit/webhooks";
import type { Context } from "probot";
import type { DeliveryLedger } from "../delivery-ledger.js";

export type EventHandler<E extends EmitterWebhookEventName> = (
  context: Context<E>,
) => Promise<void>;

interface Sender {
  type?: string;
  login?: string;
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
  }
}

/**
 * What every handler shares, in one place:
 * - the event logger carries the event name, installation and repository (Probot's adds the
 *   delivery id);
 * - bot senders are ignored;
 * - a delivery already processed (a redelivery, or a resend after a restart) is skipped, and one
 *   that fails is given back so that a redelivery runs again.
 */
export function guardEvent<E extends EmitterWebhookEventName>(
  ledger: DeliveryLedger,
  handler: EventHandler<E>,
): EventHandler<E> {
  return async (context) => {
    const payload = context.payload as {
      action?: string;
      installation?: { id?: number };
      repository?: { full_name?: string };
      sender?: Sender;
    };
    const eventName = payload.action ? `${context.name}.${payload.action}` : context.name;
    const installation = payload.installation?.id;
    const repository = payload.repository?.full_name;
    context.log = context.log.child({ event: eventName, installation, repository });
    // Probot's request logging writes through the client's logger: make those lines carry the
    // event too.
    context.octokit.log = context.log;

    if (isBotSender(payload.sender)) {
      context.log.debug({ sender: payload.sender?.login }, "ignored: the sender is a bot");
      return;
    }
    if (!ledger.claim(context.id)) {
      context.log.info("ignored: this delivery was already processed or is being processed");
      return;
    }
    try {
      await handler(context);
    } catch (error) {
      ledger.release(context.id);
      throw new EventHandlerError(eventName, installation, repository, error);
    }
    await ledger.complete(context.id);
  };
}

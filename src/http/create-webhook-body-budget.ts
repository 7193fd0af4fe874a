/**
 * The bytes of webhook bodies being received, all requests together. A body's signature can be
 * checked only once all of it has come, so until then it is anyone's: without a bound, whoever
 * reaches the public port could open a hundred deliveries of 24.9 MB each, never send their last
 * byte, and have the server hold 2.5 GB for Node's 300 s `requestTimeout`.
 */
export interface WebhookBodyBudget {
  readonly maxBytes: number;
  /** Bytes held now, by every request not yet released. */
  used(): number;
  /** Holds `bytes` for one request if they fit, else nothing. */
  hold(bytes: number): WebhookBodyHold | undefined;
}

/** What one request holds of the budget. */
export interface WebhookBodyHold {
  /** Holds `bytes` more (a chunk that came), if they fit; false if not. */
  add(bytes: number): boolean;
  /** Gives all of it back; only the first call does. */
  release(): void;
}

export function createWebhookBodyBudget(maxBytes: number): WebhookBodyBudget {
  let used = 0;
  return {
    maxBytes,
    used: () => used,
    hold(bytes) {
      // A full budget takes no request, not even one of no bytes yet (a chunked body).
      if (used >= maxBytes || used + bytes > maxBytes) return undefined;
      used += bytes;
      let held = bytes;
      let released = false;
      return {
        add(more) {
          if (released || used + more > maxBytes) return false;
          used += more;
          held += more;
          return true;
        },
        release() {
          if (released) return;
          released = true;
          used -= held;
        },
      };
    },
  };
}

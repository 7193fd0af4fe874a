import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { z } from "zod";
import { CACHE_KINDS, type EvictionScope, type GitHubCache } from "./github-cache.js";

export interface RedisCacheBroadcastOptions {
  /** `REDIS_URL`. */
  url: string;
  /** `TALOS_REDIS_PREFIX`: the channel is `<prefix>:cache-evictions`. */
  prefix: string;
  cache: GitHubCache;
  log: Logger;
}

// What another instance may ask this one to evict: validated, as anything read from outside is.
const Message = z.object({
  from: z.string().max(64),
  // Strict: a scope with a key it should not have is refused, not read as a wider one.
  scope: z.union([
    z.strictObject({
      installation: z.string().max(40),
      repo: z.string().max(300),
      kind: z.enum(CACHE_KINDS as [string, ...string[]]),
      subject: z.string().max(300),
    }),
    z.strictObject({
      installation: z.string().max(40),
      repo: z.string().max(300),
      kind: z.enum(CACHE_KINDS as [string, ...string[]]),
    }),
    z.strictObject({ installation: z.string().max(40), repo: z.string().max(300) }),
    z.strictObject({ installation: z.string().max(40) }),
  ]),
});

/**
 * The subscription is checked this often (a PING, which a subscribed connection may send): one
 * whose packets are silently dropped (a NAT or load balancer forgot it, a partition) raises no
 * error, and its messages just stop; the kernel's keepalive notices only after about two hours.
 * The PostgreSQL listener is checked the same way.
 */
const CHECK_MS = 2_000;
/** How long a check may go unanswered before the subscription counts as lost. */
const CHECK_TIMEOUT_MS = 2_000;

/**
 * Cache evictions shared by the instances (Redis pub/sub): a webhook that one instance receives
 * evicts the entries it makes stale in every instance's GitHub cache. Pub/sub keeps no message
 * for a subscriber that is away, so an instance whose subscription was lost (Redis restarted, a
 * dropped connection) empties its cache once it is subscribed again; and an instance that could
 * not publish evicts, once its Redis is back, the installations whose evictions it kept. A
 * subscription gone silent is found by a check every 2 s: the cache is emptied at once and the
 * connection made again.
 */
export class RedisCacheBroadcast {
  readonly #options: RedisCacheBroadcastOptions;
  readonly #instance = randomUUID();
  readonly #channel: string;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  /** Installations with an eviction not broadcast yet: sent whole when the publisher is back. */
  readonly #unsent = new Set<string>();
  #subscribed = false;
  #checkTimer: NodeJS.Timeout | undefined;

  private constructor(options: RedisCacheBroadcastOptions) {
    this.#options = options;
    this.#channel = `${options.prefix}:cache-evictions`;
    // A publish while Redis is away fails at once (and is kept for later) instead of waiting;
    // one Redis took and does not answer (a partition with no reset) fails after 2 s, and is
    // kept too: it had waited for good, never counted unsent (found by a review).
    this.#publisher = new Redis(options.url, {
      enableOfflineQueue: false,
      lazyConnect: true,
      commandTimeout: 2_000,
    });
    // Subscribed again by hand, so that the cache is emptied only once no message can be missed.
    this.#subscriber = new Redis(options.url, { lazyConnect: true, autoResubscribe: false });
    for (const client of [this.#publisher, this.#subscriber]) client.on("error", () => undefined); // the job queue logs the outage
    this.#subscriber.on("message", (_channel: string, text: string) => this.#receive(text));
    this.#subscriber.on("ready", () => {
      if (this.#subscribed) void this.#resubscribe();
    });
    this.#publisher.on("ready", () => this.#sendUnsent());
  }

  static async open(options: RedisCacheBroadcastOptions): Promise<RedisCacheBroadcast> {
    const broadcast = new RedisCacheBroadcast(options);
    await broadcast.#publisher.connect();
    await broadcast.#subscriber.connect();
    await broadcast.#subscriber.subscribe(broadcast.#channel);
    broadcast.#subscribed = true;
    broadcast.#scheduleCheck();
    return broadcast;
  }

  /** Tells the other instances to evict `scope` (this one already did). */
  publish(scope: EvictionScope): void {
    const message = JSON.stringify({ from: this.#instance, scope });
    this.#publisher.publish(this.#channel, message).catch((error: unknown) => {
      // Kept by installation: a bounded set, and one message each once Redis is back.
      this.#unsent.add(scope.installation);
      this.#options.log.warn(
        { err: error, scope },
        "cache eviction not broadcast: its installation is evicted on the other instances once Redis is back",
      );
    });
  }

  #sendUnsent(): void {
    for (const installation of [...this.#unsent]) {
      this.#unsent.delete(installation);
      this.publish({ installation });
    }
  }

  /** Subscribes again after a lost connection, then drops what may have missed an eviction. */
  async #resubscribe(): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.#channel);
    } catch (error) {
      // The connection went again: its next "ready" comes back here.
      this.#options.log.warn({ err: error }, "cache evictions not subscribed to again yet");
      return;
    }
    const evicted = this.#options.cache.evictEverything();
    this.#options.log.warn(
      { evicted },
      "GitHub cache emptied: evictions the other instances sent while Redis was away were lost",
    );
  }

  #scheduleCheck(): void {
    this.#checkTimer = setTimeout(() => void this.#check(), CHECK_MS);
    this.#checkTimer.unref();
  }

  /**
   * An unanswered PING counts as a lost subscription: evictions may have been missed since, so
   * the cache is emptied now (a partition can outlast the TTL) and the connection dropped; its
   * reconnect subscribes again and empties it once more. A connection already down is left to
   * ioredis's reconnect, which does the same.
   */
  async #check(): Promise<void> {
    if (this.#subscriber.status === "ready") {
      let timer: NodeJS.Timeout | undefined;
      const answered = await Promise.race([
        this.#subscriber.ping().then(
          () => true,
          () => false,
        ),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      if (!this.#subscribed) return; // closed meanwhile
      if (!answered && this.#subscriber.status === "ready") {
        const evicted = this.#options.cache.evictEverything();
        this.#options.log.warn(
          { evicted },
          "GitHub cache emptied: the cache-eviction subscription stopped answering; connecting again",
        );
        this.#subscriber.disconnect(true);
      }
    }
    if (this.#subscribed) this.#scheduleCheck();
  }

  async close(): Promise<void> {
    this.#subscribed = false;
    clearTimeout(this.#checkTimer);
    this.#publisher.disconnect();
    this.#subscriber.disconnect();
  }

  #receive(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.slice(0, 4_096));
    } catch {
      parsed = undefined;
    }
    const message = Message.safeParse(parsed);
    if (!message.success) {
      this.#options.log.warn("cache eviction message ignored: not one Talos sends");
      return;
    }
    if (message.data.from === this.#instance) return;
    this.#options.cache.evictFromPeer(message.data.scope as EvictionScope);
  }
}

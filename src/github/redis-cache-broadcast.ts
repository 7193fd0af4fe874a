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
 * Cache evictions shared by the instances (Redis pub/sub): a webhook that one instance receives
 * evicts the entries it makes stale in every instance's GitHub cache. A message lost while Redis
 * is away leaves another instance's entry stale for at most TALOS_CACHE_TTL_MS.
 */
export class RedisCacheBroadcast {
  readonly #options: RedisCacheBroadcastOptions;
  readonly #instance = randomUUID();
  readonly #channel: string;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;

  private constructor(options: RedisCacheBroadcastOptions) {
    this.#options = options;
    this.#channel = `${options.prefix}:cache-evictions`;
    // A publish while Redis is away fails at once (and is logged) instead of waiting.
    this.#publisher = new Redis(options.url, { enableOfflineQueue: false, lazyConnect: true });
    this.#subscriber = new Redis(options.url, { lazyConnect: true });
    for (const client of [this.#publisher, this.#subscriber]) client.on("error", () => undefined); // the job queue logs the outage
    this.#subscriber.on("message", (_channel: string, text: string) => this.#receive(text));
  }

  static async open(options: RedisCacheBroadcastOptions): Promise<RedisCacheBroadcast> {
    const broadcast = new RedisCacheBroadcast(options);
    await broadcast.#publisher.connect();
    await broadcast.#subscriber.connect();
    await broadcast.#subscriber.subscribe(broadcast.#channel);
    return broadcast;
  }

  /** Tells the other instances to evict `scope` (this one already did). */
  publish(scope: EvictionScope): void {
    const message = JSON.stringify({ from: this.#instance, scope });
    this.#publisher
      .publish(this.#channel, message)
      .catch((error: unknown) =>
        this.#options.log.warn(
          { err: error, scope },
          "cache eviction not broadcast: other instances may serve this data until it expires",
        ),
      );
  }

  async close(): Promise<void> {
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

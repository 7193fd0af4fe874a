import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { GitHubCache, type CacheEntry, type CacheScope } from "../../src/github/github-cache.js";
import { RedisCacheBroadcast } from "../../src/github/redis-cache-broadcast.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs } from "../helpers/test-app.js";
import { requireRedis, startCuttableProxy, TEST_REDIS_URL } from "../helpers/shared-services.js";

const available = await requireRedis("the cache broadcast's reconnection tests");

const labels: CacheScope = { installation: "2", repo: "acme/widgets", kind: "labels" };
const entry: CacheEntry = {
  type: "response",
  response: { status: 200, url: "https://api.github.com/x", headers: {}, data: [] },
};
// How long a reconnection may take: ioredis waits up to 2 s between attempts. A bound on waiting,
// not a measurement.
const RECONNECTED = { timeout: 20_000, interval: 50 };

describe.runIf(available)(
  "cache evictions broadcast through Redis, across a lost connection",
  () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    async function instance(prefix: string, url: string) {
      const logs = await captureLogs("warn");
      const peers: { broadcast?: RedisCacheBroadcast } = {};
      const cache = new GitHubCache({
        ttlMs: 60_000,
        max: 100,
        clock: createFakeClock(),
        onEvict: (scope) => peers.broadcast?.publish(scope),
      });
      const broadcast = await RedisCacheBroadcast.open({ url, prefix, cache, log: logs.log });
      peers.broadcast = broadcast;
      cleanups.push(() => broadcast.close());
      const loads: string[] = [];
      const read = (scope: CacheScope) =>
        cache.fetch(scope, `GET ${scope.kind}`, async () => {
          loads.push(scope.kind);
          return entry;
        });
      return { cache, read, loads, logs };
    }

    /** How many connections Redis has subscribed to the channel. */
    async function subscribers(prefix: string): Promise<number> {
      const client = new Redis(TEST_REDIS_URL);
      try {
        const [, count] = (await client.pubsub("NUMSUB", `${prefix}:cache-evictions`)) as [
          string,
          number,
        ];
        return Number(count);
      } finally {
        client.disconnect();
      }
    }

    async function proxy() {
      const target = new URL(TEST_REDIS_URL);
      const started = await startCuttableProxy({
        host: target.hostname,
        port: Number(target.port || 6379),
      });
      cleanups.push(() => started.close());
      return started;
    }

    it("drops what an instance cached when its subscription was lost: evictions sent meanwhile never arrived", async () => {
      const prefix = `talos-test-${randomUUID()}`;
      const line = await proxy();
      const a = await instance(prefix, TEST_REDIS_URL);
      const b = await instance(prefix, line.url);
      await a.read(labels);
      await b.read(labels);
      expect(await subscribers(prefix)).toBe(2);

      line.cut();
      await expect.poll(() => subscribers(prefix), RECONNECTED).toBe(1);
      // A label was deleted: the instance that heard it evicts, and tells a Redis B is not on.
      a.cache.evict({ installation: "2", repo: "acme/widgets", kind: "labels" });
      line.restore();
      await expect.poll(() => subscribers(prefix), RECONNECTED).toBe(2);

      // B must not go on serving the deleted label for the rest of the TTL.
      await expect.poll(() => b.cache.size, RECONNECTED).toBe(0);
      await b.read(labels);
      expect(b.loads).toEqual(["labels", "labels"]);
    }, 60_000);

    it("sends the evictions an instance could not broadcast once its Redis is back", async () => {
      const prefix = `talos-test-${randomUUID()}`;
      const line = await proxy();
      const a = await instance(prefix, line.url);
      const b = await instance(prefix, TEST_REDIS_URL);
      await a.read(labels);
      await b.read(labels);

      line.cut();
      await expect.poll(() => subscribers(prefix), RECONNECTED).toBe(1);
      // A hears of the change (GitHub reaches it), but cannot tell B.
      a.cache.evict({ installation: "2", repo: "acme/widgets", kind: "labels" });
      await expect
        .poll(
          () => a.logs.lines().some((l) => String(l.msg).includes("not broadcast")),
          RECONNECTED,
        )
        .toBe(true);
      line.restore();

      await expect.poll(() => b.cache.size, RECONNECTED).toBe(0);
      await b.read(labels);
      expect(b.loads).toEqual(["labels", "labels"]);
    }, 60_000);

    it("finds a subscription gone silent within seconds, empties the cache and subscribes again", async () => {
      const prefix = `talos-test-${randomUUID()}`;
      const line = await proxy();
      const a = await instance(prefix, TEST_REDIS_URL);
      const b = await instance(prefix, line.url);
      await a.read(labels);
      await b.read(labels);

      // B's connections go silent, with no reset and no error (a NAT or load balancer that forgot
      // them, a partition): Redis still counts B subscribed and sends it evictions into the void.
      line.stall();
      a.cache.evict({ installation: "2", repo: "acme/widgets", kind: "labels" });
      // Not for the rest of the TTL (it had been): the check every 2 s goes unanswered.
      await expect.poll(() => b.cache.size, RECONNECTED).toBe(0);
      expect(b.logs.lines().map((l) => l.msg)).toContain(
        "GitHub cache emptied: the cache-eviction subscription stopped answering; connecting again",
      );

      // Its new connection (the proxy forwards new ones) is subscribed: evictions arrive again.
      await expect.poll(() => subscribers(prefix), RECONNECTED).toBe(2);
      await b.read(labels);
      a.cache.evict({ installation: "2", repo: "acme/widgets", kind: "labels" });
      await expect.poll(() => b.cache.size, RECONNECTED).toBe(0);
      expect(b.loads).toEqual(["labels", "labels"]);
    }, 60_000);
  },
);

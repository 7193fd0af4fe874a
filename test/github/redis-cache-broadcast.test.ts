import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  ANY_INSTALLATION,
  GitHubCache,
  type CacheEntry,
  type CacheScope,
} from "../../src/github/github-cache.js";
import { RedisCacheBroadcast } from "../../src/github/redis-cache-broadcast.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs } from "../helpers/test-app.js";
import { requireRedis, TEST_REDIS_URL } from "../helpers/shared-services.js";

const available = await requireRedis("the cache broadcast's tests");

const labels: CacheScope = { installation: "2", repo: "acme/widgets", kind: "labels" };
const config: CacheScope = { installation: "2", repo: "acme/widgets", kind: "config" };
const entry: CacheEntry = {
  type: "response",
  response: { status: 200, url: "https://api.github.com/x", headers: {}, data: [] },
};

describe.runIf(available)("cache evictions broadcast through Redis", () => {
  const opened: RedisCacheBroadcast[] = [];
  afterAll(async () => {
    for (const broadcast of opened) await broadcast.close();
  });

  async function instance(prefix: string) {
    const logs = await captureLogs("warn");
    const peers: { broadcast?: RedisCacheBroadcast } = {};
    const cache = new GitHubCache({
      ttlMs: 60_000,
      max: 100,
      clock: createFakeClock(),
      onEvict: (scope) => peers.broadcast?.publish(scope),
    });
    const broadcast = await RedisCacheBroadcast.open({
      url: TEST_REDIS_URL,
      prefix,
      cache,
      log: logs.log,
    });
    peers.broadcast = broadcast;
    opened.push(broadcast);
    const loads: string[] = [];
    const read = (scope: CacheScope) =>
      cache.fetch(scope, `GET ${scope.kind}`, async () => {
        loads.push(scope.kind);
        return entry;
      });
    return { cache, read, loads, logs };
  }

  it("evicts the same scope in the other instances, and only that scope", async () => {
    const prefix = `talos-test-${randomUUID()}`;
    const [a, b] = [await instance(prefix), await instance(prefix)];
    for (const { read } of [a, b]) {
      await read(labels);
      await read(config);
    }
    expect(a.cache.size).toBe(2);
    expect(b.cache.size).toBe(2);
    a.cache.evict({ installation: "2", repo: "acme/widgets", kind: "labels" });
    await expect.poll(() => b.cache.size).toBe(1);
    await b.read(config);
    await b.read(labels);
    expect(b.loads).toEqual(["labels", "config", "labels"]);
    // An eviction applied from a peer is not sent back round.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(a.cache.size).toBe(1);
  });

  it("evicts a repository's kind in every installation of the other instances", async () => {
    // What a push to, or a `repository` event of, a base that others `_extends` sends.
    const prefix = `talos-test-${randomUUID()}`;
    const [a, b] = [await instance(prefix), await instance(prefix)];
    await b.read(labels);
    await b.read(config);
    await b.read({ ...config, installation: "3" });
    a.cache.evict({ installation: ANY_INSTALLATION, repo: "acme/widgets", kind: "config" });
    await expect.poll(() => b.cache.size).toBe(1);
    await b.read(labels);
    expect(b.loads).toEqual(["labels", "config", "config"]);
  });

  it("ignores a message that is not one Talos sends, and logs it", async () => {
    const prefix = `talos-test-${randomUUID()}`;
    const b = await instance(prefix);
    await b.read(labels);
    const intruder = new Redis(TEST_REDIS_URL);
    try {
      for (const message of [
        "not json",
        JSON.stringify({ from: "x", scope: { installation: 2 } }),
        JSON.stringify({
          from: "x",
          scope: { installation: "2", repo: "acme/widgets", kind: "everything" },
        }),
      ])
        await intruder.publish(`${prefix}:cache-evictions`, message);
    } finally {
      intruder.disconnect();
    }
    await expect.poll(() => b.logs.lines().length).toBe(3);
    expect(
      b.logs
        .lines()
        .every((line) => line.msg === "cache eviction message ignored: not one Talos sends"),
    ).toBe(true);
    expect(b.cache.size).toBe(1);
  });
});

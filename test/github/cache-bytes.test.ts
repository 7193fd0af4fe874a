import { describe, expect, it } from "vitest";
import { createCliOctokit } from "../../src/cli/create-cli-octokit.js";
import { createServices } from "../../src/create-services.js";
import { parseEnv } from "../../src/config.js";
import {
  estimateEntrySize,
  GitHubCache,
  type CacheEntry,
  type CacheScope,
} from "../../src/github/github-cache.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { githubScope } from "../helpers/github-mocks.js";
import { captureLogs } from "../helpers/test-app.js";

const MAX_BYTES = 200_000;

const scopeOf = (subject: string): CacheScope => ({
  installation: "2",
  repo: "acme/widgets",
  kind: "issue",
  subject,
});

const entryOf = (text: string): CacheEntry => ({
  type: "response",
  response: { status: 200, url: "https://api.github.com/x", headers: {}, data: { text } },
});

function createCache() {
  const sizes: number[] = [];
  const cache = new GitHubCache({
    ttlMs: 60_000,
    max: 10_000,
    maxBytes: MAX_BYTES,
    clock: createFakeClock(),
    onSize: (bytes) => sizes.push(bytes),
  });
  const loads: string[] = [];
  const read = (subject: string, text: string) =>
    cache.fetch(scopeOf(subject), `GET ${subject}`, async () => {
      loads.push(subject);
      return entryOf(text);
    });
  return { cache, read, loads, sizes };
}

describe("the GitHub cache's byte bound", () => {
  it("keeps small entries while huge ones pass through uncached", async () => {
    const { cache, read, loads, sizes } = createCache();
    for (let i = 0; i < 20; i++) await read(`small-${i}`, "x".repeat(1_000));
    const smallBytes = cache.bytes;
    expect(smallBytes).toBeGreaterThan(20 * 1_000);
    expect(smallBytes).toBeLessThan(20 * 1_200);

    // Bigger than the whole cache, and bigger than an eighth of it: served, never kept.
    for (const size of [5 * MAX_BYTES, MAX_BYTES, MAX_BYTES / 4]) {
      const huge = await read(`huge-${size}`, "y".repeat(size));
      expect(
        huge.type === "response" && (huge.response.data as { text: string }).text,
      ).toHaveLength(size);
      await read(`huge-${size}`, "y".repeat(size));
    }
    expect(loads.filter((l) => l.startsWith("huge-"))).toHaveLength(6);

    loads.length = 0;
    for (let i = 0; i < 20; i++) await read(`small-${i}`, "changed");
    expect(loads).toEqual([]);
    expect(cache.bytes).toBe(smallBytes);
    expect(cache.size).toBe(20);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_BYTES);
  });

  it("evicts the least recently used entries to stay within the bound", async () => {
    const { cache, read, loads } = createCache();
    // Each about a tenth of the bound: fits, but twenty of them do not.
    for (let i = 0; i < 20; i++) {
      await read(`medium-${i}`, "m".repeat(MAX_BYTES / 10 - 200));
      expect(cache.bytes).toBeLessThanOrEqual(MAX_BYTES);
    }
    expect(cache.size).toBeLessThan(11);
    expect(cache.size).toBeGreaterThanOrEqual(9);

    loads.length = 0;
    await read("medium-19", "again");
    await read("medium-0", "m".repeat(10));
    expect(loads).toEqual(["medium-0"]);
  });

  it("counts an entry by its JSON's bytes in UTF-8 and its key's", () => {
    const entry = entryOf("é".repeat(100));
    expect(estimateEntrySize(entry, "key")).toBe(JSON.stringify(entry).length + 100 + 3);
  });

  it("holds no more UTF-8 bytes than its bound, CJK text and all", async () => {
    // Counted in characters, 3-byte CJK text weighed a third: 2.4 times the bound was held.
    const { cache, read } = createCache();
    const texts = new Map<string, string>();
    for (let i = 0; i < 40; i++) {
      texts.set(`cjk-${i}`, "漢".repeat(6_000));
      await read(`cjk-${i}`, texts.get(`cjk-${i}`)!);
    }
    // What it still holds, read back without storing anything: a load that fails is not kept.
    let held = 0;
    for (const [subject, text] of texts) {
      const kept = await cache
        .fetch(scopeOf(subject), `GET ${subject}`, () => Promise.reject(new Error("not held")))
        .then(
          () => true,
          () => false,
        );
      if (kept) held += Buffer.byteLength(JSON.stringify(entryOf(text)));
    }
    expect(cache.bytes).toBeLessThanOrEqual(MAX_BYTES);
    expect(held).toBeGreaterThan(MAX_BYTES / 2);
    expect(held).toBeLessThanOrEqual(MAX_BYTES);
  });
});

describe("the talos CLI's GitHub client", () => {
  it("takes the byte bound from TALOS_CACHE_MAX_MB and reports the cache's bytes", async () => {
    const env = parseEnv({ TALOS_CACHE_MAX_MB: "0.5", GITHUB_TOKEN: "ghp_cliTokenForTests" });
    const { log } = await captureLogs("warn");
    const services = await createServices({ env, log, ephemeralJobs: true });
    const { metrics } = services;
    const octokit = createCliOctokit(services);
    const repo = { owner: "acme", repo: "widgets" };
    const big = { type: "file", size: 600_000, content: "A".repeat(800_000), name: "big.bin" };
    const scope = githubScope()
      .get("/repos/acme/widgets")
      .once()
      .reply(200, { full_name: "acme/widgets", default_branch: "main" })
      // 800 KB of JSON in a 512 KB cache: read twice, sent twice.
      .get("/repos/acme/widgets/contents/big.bin")
      .twice()
      .reply(200, big);

    await octokit.rest.repos.get(repo);
    await octokit.rest.repos.getContent({ ...repo, path: "big.bin" });
    const second = await octokit.rest.repos.getContent({ ...repo, path: "big.bin" });
    await octokit.rest.repos.get(repo);

    expect((second.data as { content: string }).content).toHaveLength(800_000);
    expect(scope.pendingMocks()).toEqual([]);
    const bytes = (await metrics.cacheBytes.get()).values[0]?.value ?? 0;
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(10_000);
    const requests = await metrics.cacheRequests.get();
    expect(
      Object.fromEntries(
        requests.values.map((v) => [`${v.labels.kind}:${v.labels.result}`, v.value]),
      ),
    ).toEqual({ "repo:miss": 1, "repo:hit": 1, "file:miss": 2 });
  });
});

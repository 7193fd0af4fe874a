import { describe, expect, it } from "vitest";
import { parseEnv } from "../src/config.js";
import { GitHubCache, type CacheEntry } from "../src/github/github-cache.js";
import { createFakeClock } from "./helpers/fake-clock.js";

describe("TALOS_CACHE_TTL_MS", () => {
  it("never makes cached reads, collaborator permissions included, fresh forever", async () => {
    const clock = createFakeClock();
    let env;
    try {
      env = parseEnv({ TALOS_CACHE_TTL_MS: "0" });
    } catch (error) {
      // Refusing it, in one line naming the variable, is as good as honouring it.
      expect(String(error)).toMatch(/^ConfigError: Invalid environment: TALOS_CACHE_TTL_MS: /);
      return;
    }
    const cache = new GitHubCache({ ttlMs: env.TALOS_CACHE_TTL_MS, max: 100, clock });
    const scope = { installation: "2", repo: "o/r", kind: "permission" as const, subject: "bob" };
    let loads = 0;
    const load = async (): Promise<CacheEntry> => ({
      type: "response",
      response: { status: 200, url: "", headers: {}, data: { permission: `admin ${++loads}` } },
    });
    await cache.fetch(scope, "GET permission", load);
    clock.advance(24 * 3_600_000);
    await cache.fetch(scope, "GET permission", load);
    expect(loads).toBe(2);
  });
});

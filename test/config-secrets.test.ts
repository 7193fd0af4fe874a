import { parseURL as parseRedisUrl } from "ioredis/built/utils/index.js";
import { parse as parsePgUrl } from "pg-connection-string";
import { describe, expect, it } from "vitest";
import { checkServerEnv, ConfigError, getSecrets, parseEnv } from "../src/config.js";
import { createSecretScrubber } from "../src/create-logger.js";
import { makeDataDir, TEST_PRIVATE_KEY } from "./helpers/test-app.js";

describe("WEBHOOK_SECRET set to blanks", () => {
  it("is refused for npm start, as an unset one is (blank counts as unset; Probot would verify signatures with ' ')", () => {
    const env = parseEnv(
      {
        APP_ID: "1",
        PRIVATE_KEY: TEST_PRIVATE_KEY,
        WEBHOOK_SECRET: "  ",
        TALOS_DATA_DIR: makeDataDir(),
      },
      { cwd: makeDataDir() },
    );
    // Probot takes `options.secret || "development"`: "  " is truthy, so deliveries are verified
    // with the HMAC key "  ", which anyone can sign with.
    expect(() => checkServerEnv(env)).toThrow(ConfigError);
    expect(() => checkServerEnv(env)).toThrow(/WEBHOOK_SECRET/);
  });
});

describe("NODE_ENV=production (the Dockerfile's) without APP_ID", () => {
  it("is refused for npm start naming APP_ID: Probot opens no setup page in production", () => {
    const env = parseEnv({ NODE_ENV: "production", TALOS_DATA_DIR: makeDataDir() });
    expect(() => checkServerEnv(env)).toThrow(
      expect.objectContaining({
        constructor: ConfigError,
        message: expect.stringMatching(/^Invalid environment: APP_ID: /),
      }),
    );
    // Outside production, no APP_ID is setup mode.
    expect(() => checkServerEnv(parseEnv({ TALOS_DATA_DIR: makeDataDir() }))).not.toThrow();
  });
});

describe("a service password given in the URL's query", () => {
  const password = "Query-Pa55word-secret";

  it("is one PostgreSQL and ioredis use (both read ?password=)", () => {
    expect(parsePgUrl(`postgres://talos@db:5432/talos?password=${password}`).password).toBe(
      password,
    );
    expect(parseRedisUrl(`redis://redis:6379/0?password=${password}`).password).toBe(password);
  });

  it.each([
    ["DATABASE_URL", `postgres://talos@db:5432/talos?password=${password}`],
    ["REDIS_URL", `redis://redis:6379/0?password=${password}`],
    ["REDIS_URL", `redis://redis:6379/0?db=1&password=${password}&tls=false`],
  ])("is counted among the secrets for %s, and scrubbed", (variable, url) => {
    const env = parseEnv({ [variable]: url, TALOS_DATA_DIR: makeDataDir() });
    const scrub = createSecretScrubber(getSecrets(env));
    // As a service's error may quote its URL (main.ts's printError says so).
    expect(scrub(`cannot connect to ${url}: timeout`)).not.toContain(password);
  });
});

describe("a service password with escaped characters", () => {
  it.each([
    ["before the host", "postgres://talos:Pa%40ss-word-secret@db:5432/talos"],
    ["in the query", "postgres://talos@db:5432/talos?password=Pa%40ss-word-secret"],
  ])("%s: is scrubbed as written in the URL and as decoded", (_, url) => {
    const scrub = createSecretScrubber(
      getSecrets(parseEnv({ DATABASE_URL: url, TALOS_DATA_DIR: makeDataDir() })),
    );
    const line = scrub(`cannot connect to ${url} as talos with Pa@ss-word-secret`);
    expect(line).not.toContain("Pa%40ss-word-secret");
    expect(line).not.toContain("Pa@ss-word-secret");
  });
});

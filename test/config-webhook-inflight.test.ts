import { describe, expect, it } from "vitest";
import { ConfigError, parseEnv } from "../src/config.js";

describe("TALOS_WEBHOOK_INFLIGHT_MB", () => {
  it("is 100 by default (4 of GitHub's 25 MB payloads), and a blank value is unset", () => {
    expect(parseEnv({}).TALOS_WEBHOOK_INFLIGHT_MB).toBe(100);
    expect(parseEnv({ TALOS_WEBHOOK_INFLIGHT_MB: " " }).TALOS_WEBHOOK_INFLIGHT_MB).toBe(100);
    expect(parseEnv({ TALOS_WEBHOOK_INFLIGHT_MB: "25" }).TALOS_WEBHOOK_INFLIGHT_MB).toBe(25);
    expect(parseEnv({ TALOS_WEBHOOK_INFLIGHT_MB: "2048" }).TALOS_WEBHOOK_INFLIGHT_MB).toBe(2048);
  });

  it("refuses less than one payload of 25 MB, or not a whole number, in one line naming it", () => {
    for (const value of ["24", "0", "-100", "50.5", "lots", "Infinity"]) {
      let error: unknown;
      try {
        parseEnv({ TALOS_WEBHOOK_INFLIGHT_MB: value });
      } catch (caught) {
        error = caught;
      }
      expect(error, value).toBeInstanceOf(ConfigError);
      expect((error as Error).message, value).toMatch(
        /^Invalid environment: TALOS_WEBHOOK_INFLIGHT_MB: [^\n]+$/,
      );
    }
    expect(() => parseEnv({ TALOS_WEBHOOK_INFLIGHT_MB: "24" })).toThrow(/at least 25/);
  });
});

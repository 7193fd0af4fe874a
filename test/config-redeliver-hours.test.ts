import { describe, expect, it } from "vitest";
import { ConfigError, parseEnv } from "../src/config.js";

describe("TALOS_REDELIVER_HOURS", () => {
  it("looks back 24 hours by default, and a blank value is unset", () => {
    expect(parseEnv({}).TALOS_REDELIVER_HOURS).toBe(24);
    expect(parseEnv({ TALOS_REDELIVER_HOURS: " " }).TALOS_REDELIVER_HOURS).toBe(24);
  });

  it("takes 0 (switched off) up to 72, GitHub's 3 days of kept deliveries", () => {
    expect(parseEnv({ TALOS_REDELIVER_HOURS: "0" }).TALOS_REDELIVER_HOURS).toBe(0);
    expect(parseEnv({ TALOS_REDELIVER_HOURS: "72" }).TALOS_REDELIVER_HOURS).toBe(72);
    expect(parseEnv({ TALOS_REDELIVER_HOURS: "1.5" }).TALOS_REDELIVER_HOURS).toBe(1.5);
  });

  it("refuses anything else in one line naming the variable", () => {
    for (const value of ["73", "-1", "a day", "Infinity"]) {
      let error: unknown;
      try {
        parseEnv({ TALOS_REDELIVER_HOURS: value });
      } catch (caught) {
        error = caught;
      }
      expect(error, value).toBeInstanceOf(ConfigError);
      expect((error as Error).message, value).toMatch(
        /^Invalid environment: TALOS_REDELIVER_HOURS: [^\n]+$/,
      );
    }
    expect(() => parseEnv({ TALOS_REDELIVER_HOURS: "73" })).toThrow(/at most 72/);
  });
});

import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { TokenBudgets } from "../src/agent/token-budgets.js";
import { createMetrics } from "../src/metrics/create-metrics.js";
import { parseRepoConfig, parseRepoConfigFiles } from "../src/parse-repo-config.js";
import { createFakeClock } from "./helpers/fake-clock.js";
import { captureLogs } from "./helpers/test-app.js";

const DAILY = 10_000;

async function remainingWith(repositoryTokens: number | undefined): Promise<number> {
  const logs = await captureLogs("warn");
  const budgets = await TokenBudgets.open({
    dailyTokens: DAILY,
    jobTokens: 1_000_000,
    clock: createFakeClock(),
    log: logs.log,
    metrics: createMetrics(),
  });
  const account = await budgets.account({ installation: 1, repository: 2, repositoryTokens });
  return account.remaining();
}

// Review: `budget.daily_tokens` in every wrong shape must never raise the repository's budget
// above TALOS_DAILY_TOKEN_BUDGET nor switch it off (NaN, Infinity, undefined).
describe("budget.daily_tokens written wrong: never above TALOS_DAILY_TOKEN_BUDGET, never off", () => {
  const cases: Array<[string, string]> = [
    ["a string", "budget:\n  daily_tokens: '1000'\n"],
    ["a number string past the env", "budget:\n  daily_tokens: '99999999'\n"],
    ["negative", "budget:\n  daily_tokens: -5\n"],
    ["zero", "budget:\n  daily_tokens: 0\n"],
    ["a float", "budget:\n  daily_tokens: 1500.5\n"],
    ["huge", "budget:\n  daily_tokens: 1e400\n"],
    ["past safe integers", "budget:\n  daily_tokens: 99999999999999999999\n"],
    [".inf", "budget:\n  daily_tokens: .inf\n"],
    [".nan", "budget:\n  daily_tokens: .nan\n"],
    ["null", "budget:\n  daily_tokens: null\n"],
    ["a list", "budget:\n  daily_tokens: [1000]\n"],
    ["a mapping", "budget:\n  daily_tokens: {max: 1000}\n"],
    ["top level", "daily_tokens: 1000\n"],
    ["top level, misspelt", "daily_token: 1000\n"],
    ["wrong section", "triage:\n  daily_tokens: 1000\n"],
    ["misspelt key in its section", "budget:\n  max_daily_tokens: 1000\n"],
    ["budget a scalar", "budget: 1000\n"],
    ["budget a list", "budget: [1000]\n"],
    ["budget null", "budget: null\n"],
    ["upper case key", "budget:\n  DAILY_TOKENS: 1000\n"],
    ["a bool", "budget:\n  daily_tokens: true\n"],
  ];
  it.each(cases)("%s never raises the budget nor switches it off", async (_name, yaml) => {
    const { config, errors } = parseRepoConfig(parse(yaml));
    const tokens = config.budget.daily_tokens;
    // Whatever was read: a whole count of tokens, or none (the installation's own budget).
    if (tokens !== undefined) {
      expect(Number.isSafeInteger(tokens)).toBe(true);
      expect(tokens).toBeGreaterThanOrEqual(0);
    }
    const remaining = await remainingWith(tokens);
    expect(Number.isFinite(remaining)).toBe(true);
    expect(remaining).toBeLessThanOrEqual(DAILY);
    // A mistake (anything but a valid value or a null that sets nothing) turns the model off.
    if (errors.length > 0) expect(remaining).toBe(0);
  });

  it("an _extends base's lower budget is not raised by the repository's file", async () => {
    const { config } = parseRepoConfigFiles([
      { budget: { daily_tokens: 5_000 } },
      { budget: { daily_tokens: 1_000 } },
    ]);
    // The nearer file wins (documented): it may raise the base's, never the env's.
    expect(await remainingWith(config.budget.daily_tokens)).toBeLessThanOrEqual(DAILY);
  });
});

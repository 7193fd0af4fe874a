import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { failFastRedisOptions } from "../fail-fast-redis-options.js";
import { HOUR_MS, type AutomationBudget, type AutomationScope } from "./automation-budget.js";

// One sorted set of runs (scored by the time they were taken) per installation and per
// repository. Runs an hour old or older leave both; then both counts are checked and the run is
// added to both or neither. The time is the caller's clock (ARGV), not Redis's, so that every
// instance and the tests' clocks agree with the in-memory budget. A set expires an hour after
// its last run, when it would be empty anyway. A run already in the repository's set (a job's
// retry) is allowed and added to neither.
// KEYS: installation, repository. ARGV: now, window, installation's cap, repository's cap, run.
const TAKE = `
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZSCORE', KEYS[2], ARGV[5]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3])
  or redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return 0
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[5])
  redis.call('PEXPIRE', key, window)
end
return 1
`;

interface BudgetRedis extends Redis {
  talosTakeAutomationRun(...args: Array<string | number>): Promise<number>;
}

export interface RedisAutomationBudgetOptions {
  /** `REDIS_URL`. */
  url: string;
  /** `TALOS_REDIS_PREFIX`: instances with the same prefix share the budgets. */
  prefix: string;
  clock: Clock;
  maxPerInstallationPerHour: number;
  log: Logger;
}

/**
 * A take Redis did not answer (away, or not answering in time). Not "spent": the job fails and
 * its retry takes again, by the same run name, so it neither pays twice nor loses its work.
 */
export class AutomationBudgetUnavailableError extends Error {
  constructor(cause: unknown) {
    super("the automation budget cannot be read: Redis did not answer", { cause });
    this.name = "AutomationBudgetUnavailableError";
  }
}

/**
 * The hourly automation budgets in Redis (with REDIS_URL), shared by every instance: each take
 * is one atomic script, so instances taking at the same moment never pass the cap together.
 * While Redis is away, a take rejects (AutomationBudgetUnavailableError): nothing automatic
 * runs unbudgeted, and the jobs are retried. The outage is logged once.
 */
export class RedisAutomationBudget implements AutomationBudget {
  readonly #redis: BudgetRedis;
  readonly #options: RedisAutomationBudgetOptions;
  #outage = false;

  private constructor(options: RedisAutomationBudgetOptions) {
    this.#options = options;
    // A take fails at once while Redis is away, rather than waiting in an offline queue.
    this.#redis = new Redis(options.url, failFastRedisOptions()) as BudgetRedis;
    this.#redis.defineCommand("talosTakeAutomationRun", { numberOfKeys: 2, lua: TAKE });
    this.#redis.on("error", () => undefined); // a failed take logs the outage
  }

  static async open(options: RedisAutomationBudgetOptions): Promise<RedisAutomationBudget> {
    const budget = new RedisAutomationBudget(options);
    await budget.#redis.connect();
    return budget;
  }

  async take(scope: AutomationScope, maxPerRepoPerHour: number, run: string): Promise<boolean> {
    const { clock, prefix, maxPerInstallationPerHour, log } = this.#options;
    const now = clock.now();
    // The installation's id as a hash tag keeps both keys in one slot of a Redis Cluster.
    const base = `${prefix}:automation:{${scope.installation}}`;
    let taken: number;
    try {
      taken = await this.#redis.talosTakeAutomationRun(
        `${base}:installation`,
        `${base}:repository:${scope.repository}`,
        now,
        HOUR_MS,
        maxPerInstallationPerHour,
        maxPerRepoPerHour,
        run,
      );
    } catch (error) {
      if (!this.#outage)
        log.warn(
          { err: error },
          "automation budget: Redis unreachable, automatic work is retried once it answers",
        );
      this.#outage = true;
      throw new AutomationBudgetUnavailableError(error);
    }
    if (this.#outage) log.info("automation budget: Redis answers again");
    this.#outage = false;
    return taken === 1;
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}

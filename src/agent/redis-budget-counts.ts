import { Redis } from "ioredis";
import { failFastRedisOptions } from "../fail-fast-redis-options.js";
import type { BudgetCounts, SharedBudgetCounts } from "./token-budgets.js";

// A day's counts outlive it a little, so that a job that began before midnight still finds them.
const KEEP_SECONDS = 2 * 24 * 3_600;

/**
 * KEYS: the charge's id, the installation's count, the repository's; ARGV: tokens, seconds kept.
 * One script, so that the id and the counts change together or not at all.
 */
const CHARGE_ONCE = `
if redis.call("SET", KEYS[1], "1", "NX", "EX", ARGV[2]) then
  for i = 2, 3 do
    redis.call("INCRBY", KEYS[i], ARGV[1])
    redis.call("EXPIRE", KEYS[i], ARGV[2])
  end
end
return 1`;

interface ChargingRedis extends Redis {
  talosChargeOnce(...args: Array<string | number>): Promise<number>;
}

/**
 * The daily token counts in Redis (with REDIS_URL), shared by every instance: one atomic counter
 * per installation and per repository and UTC day, one key per charge counted (its id), and one
 * key per over-budget notice. Kept across restarts as Redis keeps them (compose.yaml runs it with
 * an append-only file).
 */
export class RedisBudgetCounts implements SharedBudgetCounts {
  // One connection: a charge sent before a read is in the counts it reads.
  readonly ordered = true;
  readonly #redis: ChargingRedis;
  readonly #prefix: string;

  private constructor(url: string, prefix: string) {
    this.#redis = new Redis(url, failFastRedisOptions()) as ChargingRedis;
    // Sent once, then run by its hash: a charge follows every model call.
    this.#redis.defineCommand("talosChargeOnce", { numberOfKeys: 3, lua: CHARGE_ONCE });
    this.#redis.on("error", () => undefined); // the job queue logs the outage
    this.#prefix = `${prefix}:budget`;
  }

  static async open(url: string, prefix: string): Promise<RedisBudgetCounts> {
    const counts = new RedisBudgetCounts(url, prefix);
    await counts.#redis.connect();
    return counts;
  }

  async spent(day: string, installation: string, repository: string): Promise<BudgetCounts> {
    const [inst, repo] = await this.#redis.mget(
      this.#key(day, "installation", installation),
      this.#key(day, "repository", repository),
    );
    return { installation: Number(inst ?? 0), repository: Number(repo ?? 0) };
  }

  async charge(day: string, installation: string, repository: string, tokens: number, id: string) {
    await this.#redis.talosChargeOnce(
      this.#key(day, "charge", `${repository}#${id}`),
      this.#key(day, "installation", installation),
      this.#key(day, "repository", repository),
      Math.ceil(tokens),
      KEEP_SECONDS,
    );
  }

  async takeNotice(day: string, key: string, claimant?: string): Promise<boolean> {
    const notice = this.#key(day, "notice", key);
    // The value is who took it: a retried job whose post failed may still post its own.
    const taken = await this.#redis.set(notice, `@${claimant ?? ""}`, "EX", KEEP_SECONDS, "NX");
    if (taken === "OK") return true;
    return claimant !== undefined && (await this.#redis.get(notice)) === `@${claimant}`;
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }

  #key(day: string, kind: string, name: string): string {
    return `${this.#prefix}:${day}:${kind}:${name}`;
  }
}

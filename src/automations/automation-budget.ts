import type { Clock } from "../clock.js";

export const HOUR_MS = 3_600_000;

/** Whose runs are counted: the installation's, and its repository's, by id. */
export interface AutomationScope {
  installation: number;
  repository: number;
}

/**
 * Caps automatic language-model work, which any issue author can set off: per repository (its
 * config decides) and per installation (the operator decides), over a sliding hour. Keyed by
 * ids, as memory and token budgets are: a renamed or transferred repository keeps its hour, and
 * a new repository under an old name does not inherit it. In memory on one instance; in Redis,
 * shared by every instance, with REDIS_URL (only `create-services.ts` knows which).
 */
export interface AutomationBudget {
  /**
   * Takes one run from both budgets, or none (and returns false) when either is spent. When the
   * counts cannot be read it rejects, never allows: the job fails and is retried. `run` names it
   * (its job's id and what it runs): a run taken in the last hour is allowed again and takes
   * nothing more, so a job's retry after a crash or an outage (a take Redis ran but whose answer
   * was lost included) does not pay twice, nor find the budget spent by its own first try.
   */
  take(scope: AutomationScope, maxPerRepoPerHour: number, run: string): Promise<boolean>;
}

/**
 * The budget in process memory. A restart resets it, which at worst allows one more hour's
 * worth. Budgets whose runs are all over an hour old are dropped (looked for once an hour), so
 * it holds only the repositories that ran something in the last two hours.
 */
export class MemoryAutomationBudget implements AutomationBudget {
  readonly #clock: Clock;
  readonly #perInstallation: number;
  /** Per budget: when each run was taken, by its name. */
  readonly #runs = new Map<string, Map<string, number>>();
  #sweptAt = Number.NEGATIVE_INFINITY;

  constructor(options: { clock: Clock; maxPerInstallationPerHour: number }) {
    this.#clock = options.clock;
    this.#perInstallation = options.maxPerInstallationPerHour;
  }

  /** How many budgets (installations and repositories) it holds runs for. */
  get size(): number {
    return this.#runs.size;
  }

  async take(scope: AutomationScope, maxPerRepoPerHour: number, run: string): Promise<boolean> {
    const now = this.#clock.now();
    this.#sweep(now);
    const installationKey = `installation:${scope.installation}`;
    const repoKey = `repo:${scope.installation}:${scope.repository}`;
    const installationRuns = this.#recent(installationKey, now);
    const repoRuns = this.#recent(repoKey, now);
    if (repoRuns.has(run)) return true;
    if (installationRuns.size >= this.#perInstallation || repoRuns.size >= maxPerRepoPerHour)
      return false;
    this.#runs.set(installationKey, installationRuns.set(run, now));
    this.#runs.set(repoKey, repoRuns.set(run, now));
    return true;
  }

  /** The budget's runs of the last hour; a budget left with none is dropped. */
  #recent(key: string, now: number): Map<string, number> {
    const runs = this.#runs.get(key) ?? new Map<string, number>();
    for (const [run, at] of runs) if (now - at >= HOUR_MS) runs.delete(run);
    if (runs.size === 0) this.#runs.delete(key);
    return runs;
  }

  /** Drops the budgets no run of the last hour is left in: at most once an hour, one pass. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < HOUR_MS) return;
    this.#sweptAt = now;
    for (const [key, runs] of this.#runs)
      if (![...runs.values()].some((at) => now - at < HOUR_MS)) this.#runs.delete(key);
  }
}

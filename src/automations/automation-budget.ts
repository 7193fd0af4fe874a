import type { Clock } from "../clock.js";

const HOUR_MS = 3_600_000;

/**
 * Caps automatic language-model work, which any issue author can set off: per repository (its
 * config decides) and per installation (the operator decides), over a sliding hour. Kept in
 * memory: a restart resets it, which at worst allows one more hour's worth. Keyed by ids, as
 * memory and token budgets are: a renamed or transferred repository keeps its hour, and a new
 * repository under an old name does not inherit it.
 */
export class AutomationBudget {
  readonly #clock: Clock;
  readonly #perInstallation: number;
  readonly #runs = new Map<string, number[]>();

  constructor(options: { clock: Clock; maxPerInstallationPerHour: number }) {
    this.#clock = options.clock;
    this.#perInstallation = options.maxPerInstallationPerHour;
  }

  /** Takes one run from both budgets, or none (and returns false) when either is spent. */
  take(scope: { installation: number; repository: number }, maxPerRepoPerHour: number): boolean {
    const now = this.#clock.now();
    const installationRuns = this.#recent(`installation:${scope.installation}`, now);
    const repoRuns = this.#recent(`repo:${scope.installation}:${scope.repository}`, now);
    if (installationRuns.length >= this.#perInstallation || repoRuns.length >= maxPerRepoPerHour)
      return false;
    installationRuns.push(now);
    repoRuns.push(now);
    return true;
  }

  #recent(key: string, now: number): number[] {
    const runs = (this.#runs.get(key) ?? []).filter((at) => now - at < HOUR_MS);
    this.#runs.set(key, runs);
    return runs;
  }
}

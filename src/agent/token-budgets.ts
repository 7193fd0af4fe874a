import { randomUUID } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import type { Clock } from "../clock.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { writeFileAtomically } from "../write-file-atomically.js";

/** A model call refused because a budget is spent; no call was made. */
export class BudgetExceededError extends Error {
  override name = "BudgetExceededError";
  constructor(
    readonly scope: "installation" | "repository" | "job",
    message = `the ${scope}'s model token budget is spent`,
  ) {
    super(message);
  }
}

/** What one job may spend, charged as it goes. */
export interface TokenAccount {
  installation: string;
  /** Tokens left: the least of the job's cap, the repository's and the installation's day. */
  remaining(): number;
  /** Throws BudgetExceededError, naming the budget, when less than `needed` (1) is left. */
  check(needed?: number): void;
  /**
   * A model call that needs `needed` tokens is not made: counts the refusal under the budget that
   * is short (the job's when none of the account's is: the run's own cap) and returns its error.
   */
  refuse(needed: number): BudgetExceededError;
  charge(tokens: number): void;
  /**
   * Holds `tokens` of the installation's and the repository's day for a model call under way,
   * until the returned release: the call is charged only once it returns, and every other job of
   * the installation checked the same room meanwhile, each making its call (two jobs together
   * spent past the day's budget; found by a review). Held in this process only.
   */
  hold(tokens: number): () => void;
  /**
   * True the first time this UTC day it is asked for `thread`: one over-budget notice each. Also
   * true when asked again by the `claimant` that took it (the command's comment): a retried job
   * whose notice was never posted posts it then, and the reply, found by its marker, is edited
   * rather than doubled; in the shared counts too, which keep who took it.
   */
  takeNotice(thread: string, claimant?: string): Promise<boolean>;
}

/**
 * The day's counts kept where every instance sees them (Redis, with REDIS_URL): the budgets are
 * then the cluster's, not each instance's.
 */
export interface SharedBudgetCounts {
  /**
   * Whether commands run in the order they are sent (one connection, as Redis): a charge sent
   * before a read is in what the read returns, and one sent after it is not.
   */
  readonly ordered?: boolean;
  spent(day: string, installation: string, repository: string): Promise<BudgetCounts>;
  /**
   * Adds `tokens` to the day's counts once per `id`: a charge sent again after its answer was lost
   * (a query timeout, a dropped connection) may have been counted already.
   */
  charge(
    day: string,
    installation: string,
    repository: string,
    tokens: number,
    id: string,
  ): Promise<void>;
  /** True when taken now, or taken before by `claimant` (see `TokenAccount.takeNotice`). */
  takeNotice(day: string, key: string, claimant?: string): Promise<boolean>;
}

/**
 * What a job's earlier runs spent, and where this run's spending is recorded: the job's cap
 * (`TALOS_AGENT_MAX_TOKENS`) is for all its runs together, not for each retry. The job queue
 * keeps the count with the job (see `JobQueue.spend`), so a retry on another instance has it.
 */
export interface JobSpending {
  readonly spentTokens: number;
  spend(tokens: number): void;
}

export interface BudgetCounts {
  installation: number;
  repository: number;
}

export interface TokenBudgetsOptions {
  /** `$TALOS_DATA_DIR/budgets.json`; none keeps the counts in memory (`talos replay`). */
  file?: string | undefined;
  /** Per installation and UTC day (`TALOS_DAILY_TOKEN_BUDGET`). */
  dailyTokens: number;
  /** Per job, all its model calls together (`TALOS_AGENT_MAX_TOKENS`). */
  jobTokens: number;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** With REDIS_URL: the counts every instance shares (the file is then not used). */
  shared?: SharedBudgetCounts | undefined;
}

const State = z.object({
  day: z.string(),
  installations: z.record(z.string(), z.number()),
  repositories: z.record(z.string(), z.number()),
  /** `<installation>/<repository>#<thread>`, then `@<claimant>` when one took it. */
  notices: z.array(z.string()),
  /**
   * The day's counts were lost (a damaged file): the day counts as spent. Saved, so that the
   * next save, which writes valid counts of zero, cannot reopen the day after a restart.
   */
  lost: z.boolean().optional(),
});
type State = z.infer<typeof State>;

/**
 * Notices kept a day: at most this many of one installation (its oldest give way to its newest),
 * and this many in all (a new one is then refused). One list for every installation had let one
 * installation's flood of over-budget threads push out another's notices, whose threads were
 * then told twice (found by a review).
 */
const MAX_NOTICES_PER_INSTALLATION = 1_000;
const MAX_NOTICES = 10_000;
const SAVE_DELAY_MS = 1_000;
const DAY_MS = 86_400_000;

/** A charge of this instance the shared counts may not hold yet. */
interface UnstoredCharge {
  /** Sent with it each time, so that the shared counts add it once. */
  id: string;
  installation: string;
  repository: string;
  tokens: number;
  /** The shared counts refused it: it is sent again. */
  refused: boolean;
}

const sumOf = (charges: UnstoredCharge[], of: (charge: UnstoredCharge) => boolean) =>
  charges.reduce((sum, charge) => sum + (of(charge) ? charge.tokens : 0), 0);

/**
 * Daily token budgets per installation and per repository (by id), kept in a small file so they
 * survive restarts. Counts reset at midnight UTC. Commands and automations draw on the same
 * budgets; the model's reported usage is charged after each call.
 */
export class TokenBudgets {
  readonly #options: TokenBudgetsOptions;
  #state: State;
  /**
   * The day the counts moved on from, while the clock has moved past it: if the clock turns out
   * to have jumped (a VM resumed with a wrong clock) and is corrected, its spending and notices
   * are still that day's (see #today). In this process only.
   */
  #left: State | undefined;
  #saving: Promise<void> = Promise.resolve();
  readonly #charging = new Set<Promise<unknown>>();
  /**
   * Shared mode: this instance's charges the shared counts do not hold yet (on their way, or
   * refused: a Redis blip, a query timeout), added to each snapshot of them. A refused one is
   * sent again before the next snapshot. Without this, the next account() replaced the counts
   * with the shared store's and the spending was forgotten everywhere.
   */
  #unstored: { day: string; charges: UnstoredCharge[] } = { day: "", charges: [] };
  /** Each shared read under way collects the charges made while it waits. */
  readonly #reading = new Set<Set<UnstoredCharge>>();
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  /** Tokens held by model calls under way (see `TokenAccount.hold`), by installation and repository. */
  readonly #held = new Map<string, number>();

  private constructor(options: TokenBudgetsOptions, state: State) {
    this.#options = options;
    this.#state = state;
  }

  static async open(options: TokenBudgetsOptions): Promise<TokenBudgets> {
    const empty = () => ({ day: "", installations: {}, repositories: {}, notices: [] });
    if (!options.file) return new TokenBudgets(options, empty());
    await mkdir(dirname(options.file), { recursive: true });
    try {
      return new TokenBudgets(
        options,
        State.parse(JSON.parse(await readFile(options.file, "utf8"))),
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        return new TokenBudgets(options, empty());
      // Counted as spent rather than as unused: a damaged file must not reopen the budget.
      options.log.error(
        { err: error, file: options.file },
        "token budgets unreadable; today's budgets count as spent",
      );
      const budgets = new TokenBudgets(options, {
        ...empty(),
        day: utcDay(options.clock.now()),
        lost: true,
      });
      // Saved at once, not with the day's first charge or notice: with none (only automations,
      // which take no notice, ran that day), a restart on any later day found the damaged file
      // again and refused that day too (found by a review).
      budgets.#save();
      await budgets.#saving;
      return budgets;
    }
  }

  /**
   * The account of one job. `repositoryTokens` is `budget.daily_tokens` from the repository's
   * config: it can only lower the installation's budget. `job` is what the job's earlier runs
   * spent, and records this run's charges with the job; without it the cap starts afresh.
   */
  async account(
    scope: {
      installation: number;
      repository: number;
      repositoryTokens?: number | undefined;
    },
    job?: JobSpending,
  ): Promise<TokenAccount> {
    const installation = String(scope.installation);
    const repository = `${scope.installation}/${scope.repository}`;
    const { dailyTokens, jobTokens, metrics, shared, log } = this.#options;
    if (shared) {
      // The cluster's counts as the job starts, and what this instance spent that they may not
      // hold yet; its own charges are added as it goes. Jobs running at once elsewhere can each
      // spend up to their cap past what this one saw.
      const state = this.#today();
      await this.#storeRefused(shared, state.day);
      // A charge stored while the counts are read can be in neither the counts nor the
      // unstored list after the read: so the charges made meanwhile are added too. Missed, the
      // instance forgot its own spending (found by a review: 8,000 of 10,000 spent left 10,000).
      // Where commands run in the order sent (Redis), a charge unstored as the read starts is in
      // what it reads; elsewhere (PostgreSQL's pool stores it on another connection) it may not
      // be, and is added: one the read's snapshot holds is then counted twice until the next
      // job's account, which errs toward refusing.
      const unstored = new Set(shared.ordered ? [] : this.#unstoredOf(state.day));
      const meanwhile = new Set<UnstoredCharge>();
      this.#reading.add(meanwhile);
      let counts: BudgetCounts;
      try {
        counts = await shared.spent(state.day, installation, repository);
      } finally {
        this.#reading.delete(meanwhile);
      }
      for (const charge of [...meanwhile, ...this.#unstoredOf(state.day)]) unstored.add(charge);
      const added = [...unstored];
      state.installations[installation] =
        counts.installation + sumOf(added, (c) => c.installation === installation);
      state.repositories[repository] =
        counts.repository + sumOf(added, (c) => c.repository === repository);
    }
    const repositoryLimit = Math.min(dailyTokens, scope.repositoryTokens ?? Infinity);
    let spent = job?.spentTokens ?? 0;
    if (spent > 0)
      log.debug({ spent, cap: jobTokens }, "the job's earlier runs spent tokens of its cap");
    const held = (key: string) => this.#held.get(key) ?? 0;
    const left = () => {
      const state = this.#today();
      const lost = state.lost ? Infinity : 0;
      return {
        installation:
          dailyTokens - (state.installations[installation] ?? 0) - held(installation) - lost,
        repository:
          repositoryLimit - (state.repositories[repository] ?? 0) - held(repository) - lost,
        job: jobTokens - spent,
      };
    };
    // Installations' keys are their ids, repositories' `<installation>/<repository>`: one map.
    const addHeld = (tokens: number) => {
      for (const key of [installation, repository]) {
        const total = held(key) + tokens;
        if (total > 0) this.#held.set(key, total);
        else this.#held.delete(key);
      }
    };
    const shortOf = (needed: number) => {
      const budgets = left();
      return (["installation", "repository", "job"] as const).find(
        (name) => budgets[name] < needed,
      );
    };
    const refuse = (needed: number) => {
      const scope = shortOf(needed) ?? "job";
      metrics.budgetRefusals.inc({ scope });
      return new BudgetExceededError(scope);
    };
    return {
      installation,
      remaining: () => Math.max(0, Math.min(...Object.values(left()))),
      check: (needed = 1) => {
        if (shortOf(needed)) throw refuse(needed);
      },
      refuse,
      charge: (tokens) => {
        // A negative charge would give spent tokens back, and NaN would end every check.
        if (!Number.isFinite(tokens) || tokens < 0)
          throw new RangeError(`a charge must be a count of tokens, not ${tokens}`);
        const state = this.#today();
        spent += tokens;
        job?.spend(tokens);
        state.installations[installation] = (state.installations[installation] ?? 0) + tokens;
        state.repositories[repository] = (state.repositories[repository] ?? 0) + tokens;
        if (!shared) return this.#saveSoon();
        const charge: UnstoredCharge = {
          id: randomUUID(),
          installation,
          repository,
          tokens,
          refused: false,
        };
        this.#unstoredOf(state.day).push(charge);
        for (const meanwhile of this.#reading) meanwhile.add(charge);
        const charged = this.#store(shared, state.day, charge).finally(() =>
          this.#charging.delete(charged),
        );
        this.#charging.add(charged);
      },
      hold: (tokens) => {
        if (!Number.isFinite(tokens) || tokens <= 0) return () => undefined;
        addHeld(tokens);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          addHeld(-tokens);
        };
      },
      takeNotice: async (thread, claimant) => {
        const state = this.#today();
        // Per repository: issue numbers repeat across repositories.
        const key = `${repository}#${thread}`;
        if (shared) return shared.takeNotice(state.day, key, claimant);
        const mine = claimant === undefined ? key : `${key}@${claimant}`;
        // An entry without a claimant (taken without one, or saved before claimants) is no one's.
        const taken = state.notices.find(
          (notice) => notice === key || notice.startsWith(`${key}@`),
        );
        if (taken !== undefined) return claimant !== undefined && taken === mine;
        const own = `${installation}/`;
        const owned = state.notices.filter((notice) => notice.startsWith(own)).length;
        if (owned >= MAX_NOTICES_PER_INSTALLATION)
          state.notices.splice(
            state.notices.findIndex((notice) => notice.startsWith(own)),
            1,
          );
        else if (state.notices.length >= MAX_NOTICES) {
          log.warn({ thread: key }, "over-budget notice not posted: today's notices are full");
          return false;
        }
        state.notices.push(mine);
        this.#save();
        return true;
      },
    };
  }

  /** Sends `charge` to the shared counts; once they hold it, it is no longer added to them. */
  async #store(shared: SharedBudgetCounts, day: string, charge: UnstoredCharge): Promise<boolean> {
    try {
      await shared.charge(day, charge.installation, charge.repository, charge.tokens, charge.id);
      const charges = this.#unstoredOf(day);
      // Gone already when two resends sent it at once (the counts add it once): splicing at -1
      // would drop another charge, never to be sent again.
      const at = charges.indexOf(charge);
      if (at !== -1) charges.splice(at, 1);
      return true;
    } catch (error) {
      charge.refused = true;
      this.#options.log.error(
        { err: error, installation: charge.installation, tokens: charge.tokens },
        "tokens spent not counted in the shared budgets yet; they are sent again at the next job",
      );
      return false;
    }
  }

  /** Sends again the day's charges the shared counts refused, until one is refused again. */
  async #storeRefused(shared: SharedBudgetCounts, day: string): Promise<void> {
    for (const charge of this.#unstoredOf(day).filter((c) => c.refused)) {
      // Taken meanwhile by another resend (two jobs starting at once).
      if (!charge.refused) continue;
      charge.refused = false;
      if (!(await this.#store(shared, day, charge))) return;
    }
  }

  /** This instance's charges of `day` the shared counts may not hold; earlier days' are dropped. */
  #unstoredOf(day: string): UnstoredCharge[] {
    const kept = this.#unstored.day;
    // A later day as the counts move to it, or the clock's own when a far day is dropped.
    if (day !== kept && (day > kept || this.#dayNow(kept) === day))
      this.#unstored = { day, charges: [] };
    return day === this.#unstored.day ? this.#unstored.charges : [];
  }

  /** Resolves once every charge so far is on disk. */
  async flush(): Promise<void> {
    if (this.#timer) this.#save();
    await this.#saving;
    // Charges on their way to the shared counts: a shutdown waits for them, and sends those
    // refused once more.
    await Promise.all(this.#charging);
    const { shared } = this.#options;
    if (shared) await this.#storeRefused(shared, this.#unstored.day);
  }

  /**
   * Charges are saved within SAVE_DELAY_MS, together: a file rewrite per model call cost more
   * than the call's bookkeeping is worth. A crash loses at most that much of the counts; a
   * shutdown flushes them.
   */
  #saveSoon(): void {
    if (!this.#options.file || this.#timer) return;
    this.#timer = setTimeout(() => this.#save(), SAVE_DELAY_MS);
    this.#timer.unref();
  }

  /**
   * The day's counts. Days only move forward (ISO dates compare as strings): a clock stepped back
   * across midnight (an NTP correction) keeps charging the later day, whose spending it would
   * otherwise have wiped, and the file with it. But only a day ahead at most: a clock stepped
   * far forward once (a VM resumed with a wrong clock) and then corrected had frozen the budgets
   * on that far day, the file too, refusing every model call until the calendar caught up
   * (found by a review). What was spent on such a day counts as today's here, added to what
   * today had spent before the jump (which had been dropped: the day's budget paid twice, and its
   * notices given again; found by a review); in shared counts (Redis, PostgreSQL) it stays the
   * far day's.
   */
  #today(): State {
    const day = this.#dayNow(this.#state.day);
    if (day === this.#state.day) return this.#state;
    if (this.#state.day > day) {
      const left = this.#left?.day === day ? this.#left : undefined;
      this.#state = left ? mergeDays(left, this.#state) : { ...this.#state, day };
      this.#left = undefined;
    } else {
      this.#left = this.#state;
      this.#state = { day, installations: {}, repositories: {}, notices: [] };
    }
    return this.#state;
  }

  /** The clock's day, or `kept` when that is at most a day later (see #today). */
  #dayNow(kept: string): string {
    const now = this.#options.clock.now();
    const day = utcDay(now);
    if (kept > day && kept <= utcDay(now + DAY_MS)) return kept;
    if (kept > day)
      this.#options.log.warn({ kept, day }, "token budgets: a day ahead of the clock is dropped");
    return day;
  }

  /** Writes coalesce: one write in flight, and one more after it with whatever changed since. */
  #save(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const file = this.#options.file;
    if (!file || this.#dirty) return;
    this.#dirty = true;
    this.#saving = this.#saving.then(async () => {
      this.#dirty = false;
      try {
        await writeFileAtomically(file, JSON.stringify(this.#state));
      } catch (error) {
        this.#options.log.error({ err: error, file }, "cannot save token budgets");
      }
    });
  }
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** What a day spent before the clock jumped, and what was spent on the far day meanwhile. */
function mergeDays(day: State, far: State): State {
  const add = (a: Record<string, number>, b: Record<string, number>) => {
    const sum = { ...a };
    for (const [key, tokens] of Object.entries(b)) sum[key] = (sum[key] ?? 0) + tokens;
    return sum;
  };
  return {
    day: day.day,
    installations: add(day.installations, far.installations),
    repositories: add(day.repositories, far.repositories),
    notices: [...new Set([...day.notices, ...far.notices])].slice(-MAX_NOTICES),
    ...(day.lost || far.lost ? { lost: true } : {}),
  };
}

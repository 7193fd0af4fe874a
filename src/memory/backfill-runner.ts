import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { loadRepoConfigOf } from "../github/load-repo-config.js";
import type { Octokit } from "../github/octokit.js";
import { backfillRepository, readBackfillState } from "./backfill-repository.js";
import type { MemoryNamespace, MemoryRegistry } from "./memory-registry.js";

export interface BackfillRunnerOptions {
  memory: MemoryRegistry;
  /** The client of an installation (Probot's `app.auth`). */
  auth: (installation: number) => Promise<Octokit>;
  max: number;
  clock: Clock;
  log: Logger;
}

/**
 * Runs backfills one at a time in the background, so a new installation with many repositories
 * neither delays webhooks nor spends the rate limit all at once. A backfill that a restart
 * interrupted is resumed by `resume()`.
 */
export class BackfillRunner {
  readonly #options: BackfillRunnerOptions;
  readonly #queued = new Set<string>();
  readonly #stop = new AbortController();
  #chain: Promise<void> = Promise.resolve();

  constructor(options: BackfillRunnerOptions) {
    this.#options = options;
  }

  /** `repo` as GitHub spells it; the memory namespace is its lower-case form. */
  enqueue(namespace: MemoryNamespace): void {
    const key = `${namespace.installation}/${namespace.repo}`.toLowerCase();
    if (this.#queued.has(key) || this.#stop.signal.aborted) return;
    this.#queued.add(key);
    this.#chain = this.#chain
      .then(() => this.#run(namespace))
      .catch((error: unknown) =>
        this.#options.log.error({ err: error, memory: key }, "backfill failed"),
      )
      .finally(() => this.#queued.delete(key));
  }

  /** Queues the backfills a restart interrupted. */
  async resume(): Promise<void> {
    for (const namespace of await this.#options.memory.list()) {
      const state = await readBackfillState(this.#options.memory.directoryOf(namespace));
      if (state?.status === "running")
        this.enqueue({ ...namespace, repo: state.repo ?? namespace.repo });
    }
  }

  /** Resolves when the queue is empty. */
  async idle(): Promise<void> {
    while (this.#queued.size > 0) await this.#chain;
  }

  /** Stops after the page in hand (progress is saved, so the next start resumes) and waits. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.idle();
  }

  async #run(namespace: MemoryNamespace): Promise<void> {
    if (this.#stop.signal.aborted) return;
    const { memory, max, clock } = this.#options;
    const [owner = "", repo = ""] = namespace.repo.split("/");
    const log = this.#options.log.child({
      repository: namespace.repo,
      installation: namespace.installation,
    });
    const directory = memory.directoryOf(namespace);
    const previous = await readBackfillState(directory);
    if (previous?.status === "done")
      return log.info({ indexed: previous.indexed }, "backfill already done");
    const octokit = await this.#options.auth(Number(namespace.installation));
    const { config } = await loadRepoConfigOf(octokit, { owner, repo }, log);
    if (!config.memory.enabled)
      return log.info("backfill skipped: memory is off in this repository");
    log.info({ max }, "backfill started");
    const state = await backfillRepository({
      octokit,
      repo: { owner, repo },
      memory: await memory.open(namespace),
      directory,
      max,
      clock,
      log,
      signal: this.#stop.signal,
    });
    log.info({ indexed: state.indexed, status: state.status }, "backfill stopped");
  }
}

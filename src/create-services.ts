import { randomUUID } from "node:crypto";
import { availableParallelism, hostname } from "node:os";
import Bottleneck from "bottleneck";
import { Redis } from "ioredis";
import { join } from "node:path";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { Context, ProbotOctokit } from "probot";
import type { Logger } from "pino";
import type { Assistant } from "./agent/assistant.js";
import { createAssistant } from "./agent/create-assistant.js";
import { createChatModel } from "./agent/create-chat-model.js";
import { createTokenCounter, type TokenCounter } from "./agent/count-tokens.js";
import { RedisBudgetCounts } from "./agent/redis-budget-counts.js";
import { Database } from "./database/database.js";
import { PostgresAliveMarks } from "./database/postgres-alive-marks.js";
import { moveFileMarks, PostgresSuspensionMarks } from "./database/postgres-suspension-marks.js";
import { PostgresBudgetCounts } from "./database/postgres-budget-counts.js";
import { TokenBudgets } from "./agent/token-budgets.js";
import { MemoryAutomationBudget, type AutomationBudget } from "./automations/automation-budget.js";
import { RedisAutomationBudget } from "./automations/redis-automation-budget.js";
import { systemClock, type Clock } from "./clock.js";
import { getSecrets, type Env } from "./config.js";
import { createSecretScrubber } from "./create-logger.js";
import { createOctokitClass, type GitHubLimits } from "./github/create-octokit.js";
import { RateLimitTracker } from "./metrics/rate-limit-plugin.js";
import { GitHubCache } from "./github/github-cache.js";
import { RedisCacheBroadcast } from "./github/redis-cache-broadcast.js";
import { JobJournal } from "./jobs/job-journal.js";
import type { JobQueue } from "./jobs/job-queue.js";
import { JobRunner } from "./jobs/job-runner.js";
import { RedisJobQueue } from "./jobs/redis-job-queue.js";
import { MarkdownWorkers, type MarkdownService } from "./markdown/markdown-workers.js";
import { createEmbedder } from "./memory/create-embedder.js";
import type { Embedder } from "./memory/embedder.js";
import { MemoryRegistry } from "./memory/memory-registry.js";
import type { MemoryService } from "./memory/memory-service.js";
import { PostgresMemory } from "./database/postgres-memory.js";
import {
  ALIVE_FILE,
  CLOCK_SKEW_MS,
  FileAliveMarks,
  readOwnAliveMark,
  type AliveMarks,
} from "./memory/outage-catch-up.js";
import { ScanHelper } from "./memory/scan-helper.js";
import { FileSuspensionMarks, type SuspensionMarks } from "./memory/suspension-marks.js";
import { WordsWorker, type WordsCounter } from "./memory/words-counter.js";
import { createMetrics, type Metrics } from "./metrics/create-metrics.js";

export interface ServicesOptions {
  env: Env;
  log: Logger;
  clock?: Clock;
  /** Tests switch GitHub throttling and retries off; the benchmark, the cache. */
  octokit?: { throttle?: boolean; retry?: boolean; cache?: boolean };
  /** The embedder; by default OpenAI's with a key, the local one without. */
  embedder?: Embedder;
  /** The chat model; by default `ChatOpenAI` from the environment, or none without a key. */
  model?: BaseChatModel | undefined;
  /** Markdown parsing off the event loop; by default worker threads of these services' own. */
  markdown?: MarkdownService;
  /**
   * Keep the job journal and budgets in memory only (`talos replay`), not in `TALOS_DATA_DIR`
   * nor in Redis or PostgreSQL. Memory is where the server keeps it.
   */
  ephemeralJobs?: boolean;
}

/** Talos's dependencies, made once from the environment, for the server and every CLI command. */
export interface Services {
  env: Env;
  log: Logger;
  clock: Clock;
  metrics: Metrics;
  cache: GitHubCache;
  limits: GitHubLimits;
  /** The GitHub client class: cache, metrics, throttling and retries. */
  rateLimits: RateLimitTracker;
  Octokit: typeof ProbotOctokit;
  jobs: JobRunner<Context>;
  /** The journal under TALOS_DATA_DIR, or with REDIS_URL the queue the instances share. */
  queue: JobQueue;
  /** The embedded journal, when the queue is one (no REDIS_URL). */
  journal: JobJournal | undefined;
  memory: MemoryService;
  /** Undefined without a language model. */
  assistant: Assistant | undefined;
  /** The hourly automation budgets: in memory, or with REDIS_URL the ones the instances share. */
  automationBudget: AutomationBudget;
  /** Daily model-token budgets per installation and repository, kept across restarts. */
  budgets: TokenBudgets;
  markdown: MarkdownService;
  /** Counts what is sent to the models; one per process (its encoder is large). */
  tokenCounter: TokenCounter;
  /** When Talos last ran: `alive.json`, or with DATABASE_URL the instances' shared mark. */
  aliveMarks: AliveMarks;
  /** When suspended installations were suspended, to catch up from (openSuspensionMarks). */
  suspensions: SuspensionMarks;
  /** Flushes memory and releases what the services hold open (memory, journal, workers). */
  close(): Promise<void>;
}

export async function createServices(options: ServicesOptions): Promise<Services> {
  const closers = new Closers();
  try {
    return await openServices(options, closers);
  } catch (error) {
    // What opened before the failure is closed: a worker thread or a connection left open kept
    // a CLI command running for ever after its one-line error.
    await closers
      .closeAll()
      .catch((closeError: unknown) =>
        options.log.warn({ err: closeError }, "cannot close what the services opened"),
      );
    throw error;
  }
}

/**
 * What the services opened, each with how it is closed, closed in the reverse order: each one
 * after those that use it (memory before its database, the budgets' last charges before their
 * Redis or database, the job queue before the Markdown workers that jobs past the shutdown
 * grace still use). A failure to close one does not keep the others open.
 */
class Closers {
  readonly #closers: Array<() => unknown> = [];

  /** `resource`, to be closed with the others (none when undefined). */
  add<T>(resource: T, close: (resource: NonNullable<T>) => unknown): T {
    if (resource !== undefined && resource !== null) this.#closers.push(() => close(resource));
    return resource;
  }

  async closeAll(): Promise<void> {
    let failure: unknown;
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

async function openServices(options: ServicesOptions, closers: Closers): Promise<Services> {
  const { env, log } = options;
  const clock = options.clock ?? systemClock;
  const metrics = createMetrics();
  // Workers these services made are closed with them; ones handed in belong to their maker.
  // Made first, so closed last, after the job queue: a job still running past the shutdown grace
  // parses its command and renders its reply while memory's close waits (seconds, or minutes on a
  // hung embedding call). Closed first, the pool had answered it "no command" (or plain text)
  // while the journal was open to record it done; now the job either finishes properly, or finds
  // the pool closed once the journal is too, fails, and stays journaled for the next start.
  const markdown =
    options.markdown ??
    closers.add(
      new MarkdownWorkers({
        deadlineMs: env.TALOS_MARKDOWN_DEADLINE_MS,
        metrics,
        log,
        // A GitHub Enterprise Server serves what people attach from its own host.
        imageHosts: gheImageHosts(env.GHE_HOST),
      }),
      (workers) => workers.close(),
    );
  // With REDIS_URL, the evictions webhooks cause here are told to the other instances.
  let broadcast: RedisCacheBroadcast | undefined;
  const cache = new GitHubCache({
    ttlMs: env.TALOS_CACHE_TTL_MS,
    max: env.TALOS_CACHE_MAX,
    maxBytes: env.TALOS_CACHE_MAX_MB * 1024 * 1024,
    clock,
    onResult: (kind, result) => metrics.cacheRequests.inc({ kind, result }),
    onSize: (bytes) => metrics.cacheBytes.set(bytes),
    onEvict: (scope) => broadcast?.publish(scope),
  });
  const limits: GitHubLimits = {
    maxRetries: env.TALOS_GITHUB_MAX_RETRIES,
    maxRetryWaitSeconds: env.TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS,
    writeIntervalMs: env.TALOS_GITHUB_WRITE_INTERVAL_MS,
    notificationIntervalMs: env.TALOS_GITHUB_NOTIFICATION_INTERVAL_MS,
  };
  const { cache: useCache = true, ...throttling } = options.octokit ?? {};
  const shared = env.REDIS_URL !== undefined && !options.ephemeralJobs;
  // With REDIS_URL, an installation's writes are spaced across every instance.
  const writeQueues = closers.add(
    shared ? new Bottleneck.IORedisConnection({ client: new Redis(env.REDIS_URL!) }) : undefined,
    (connection) => connection.disconnect(),
  );
  writeQueues?.on("error", (error: Error) =>
    log.warn({ err: error }, "GitHub write queues: Redis error"),
  );
  const rateLimits = new RateLimitTracker(metrics);
  const Octokit = createOctokitClass({
    cache: useCache ? cache : undefined,
    metrics,
    rateLimits,
    limits,
    clock,
    ...throttling,
    cluster: writeQueues && { connection: writeQueues, prefix: env.TALOS_REDIS_PREFIX },
  });
  // GitHub keeps deliveries for redelivery for 3 days; a redelivery within that is skipped.
  const retentionMs = env.TALOS_LEDGER_RETENTION_HOURS * 3_600_000;
  const journal = shared
    ? undefined
    : await JobJournal.open({
        file: options.ephemeralJobs ? undefined : join(env.TALOS_DATA_DIR, "jobs", "journal.log"),
        maxQueued: env.TALOS_JOB_QUEUE_MAX,
        maxQueuedBytes: env.TALOS_JOB_QUEUE_MAX_MB * 1024 * 1024,
        installationShare: env.TALOS_JOB_QUEUE_INSTALLATION_SHARE,
        retentionMs,
        maxFinished: env.TALOS_LEDGER_MAX_ENTRIES,
        clock,
        log,
      });
  const queue: JobQueue = closers.add(
    journal ??
      (await RedisJobQueue.open({
        url: env.REDIS_URL!,
        prefix: env.TALOS_REDIS_PREFIX,
        maxQueued: env.TALOS_JOB_QUEUE_MAX,
        installationShare: env.TALOS_JOB_QUEUE_INSTALLATION_SHARE,
        retentionMs,
        leaseMs: env.TALOS_JOB_LEASE_MS,
        clock,
        log,
      })),
    (opened) => opened.close(),
  );
  if (shared)
    broadcast = closers.add(
      await RedisCacheBroadcast.open({
        url: env.REDIS_URL!,
        prefix: env.TALOS_REDIS_PREFIX,
        cache,
        log,
      }),
      (opened) => opened.close(),
    );
  // The CLI's commands too: `talos backfill` fills the memory the instances search.
  const database = closers.add(
    env.DATABASE_URL
      ? await Database.open({ url: env.DATABASE_URL, schema: env.TALOS_DATABASE_SCHEMA, log })
      : undefined,
    (opened) => opened.close(),
  );
  const suspensions = await openSuspensionMarks(env, database, log);
  const jobs = new JobRunner<Context>({
    queue,
    concurrency: env.TALOS_CONCURRENCY,
    maxAttempts: env.TALOS_JOB_MAX_ATTEMPTS,
    clock,
    log,
    metrics,
    scrub: createSecretScrubber(getSecrets(env)),
    // Marked from when it was accepted, a clock difference earlier: its event is caught up.
    suspended: async (job) => {
      if (job.installation === undefined) return;
      const at = new Date(job.acceptedAt - CLOCK_SKEW_MS).toISOString();
      await suspensions.record(job.installation, at);
    },
  });
  const model = "model" in options ? options.model : createChatModel(env);
  // One tokenizer for the process: its encoder takes 50 MB and half a second to build.
  const tokenCounter = createTokenCounter();
  const assistant = await createAssistant({ env, model, metrics, clock, log, tokenCounter });
  // The memory scan's second thread, and the thread that counts full segments' words, where
  // there is a second core.
  const cores = availableParallelism();
  const scanHelper = closers.add(cores > 1 ? new ScanHelper() : undefined, (h) => h.close());
  const wordsCounter = closers.add(cores > 1 ? new WordsWorker() : undefined, (w) => w.close());
  const embedder = options.embedder ?? createEmbedder(env, { tokenCounter });
  // With DATABASE_URL, memory is the cluster's, in PostgreSQL; without it, on local disk.
  const memory: MemoryService = closers.add(
    database
      ? await PostgresMemory.open({
          database,
          schema: env.TALOS_DATABASE_SCHEMA,
          embedder,
          log,
          metrics,
          maxOpenBytes: env.TALOS_MEMORY_MAX_OPEN_MB * 1024 * 1024,
          scanHelper,
        })
      : createMemoryRegistry(env, { embedder, clock, log, metrics, scanHelper, wordsCounter }),
    (opened) => opened.closeAll(),
  );
  // With DATABASE_URL the day's counts are kept there, else with REDIS_URL in Redis: either way
  // they are the cluster's.
  const redisBudgets = closers.add(
    shared && !database
      ? await RedisBudgetCounts.open(env.REDIS_URL!, env.TALOS_REDIS_PREFIX)
      : undefined,
    (opened) => opened.close(),
  );
  const sharedBudgets =
    database && !options.ephemeralJobs ? new PostgresBudgetCounts(database) : redisBudgets;
  const budgets = closers.add(
    await TokenBudgets.open({
      shared: sharedBudgets,
      file:
        options.ephemeralJobs || sharedBudgets
          ? undefined
          : join(env.TALOS_DATA_DIR, "budgets.json"),
      dailyTokens: env.TALOS_DAILY_TOKEN_BUDGET,
      jobTokens: env.TALOS_AGENT_MAX_TOKENS,
      clock,
      log,
      metrics,
    }),
    // Its last charges, before the Redis or database that keeps them closes.
    (opened) => opened.flush(),
  );
  // With REDIS_URL the hourly automation budgets are the cluster's too; each instance counting
  // its own would allow the configured runs once per instance.
  const redisAutomationBudget = closers.add(
    shared
      ? await RedisAutomationBudget.open({
          url: env.REDIS_URL!,
          prefix: env.TALOS_REDIS_PREFIX,
          clock,
          maxPerInstallationPerHour: env.TALOS_AUTOMATION_MAX_PER_HOUR,
          log,
        })
      : undefined,
    (opened) => opened.close(),
  );
  const automationBudget: AutomationBudget =
    redisAutomationBudget ??
    new MemoryAutomationBudget({
      clock,
      maxPerInstallationPerHour: env.TALOS_AUTOMATION_MAX_PER_HOUR,
    });
  const aliveMarks: AliveMarks = database
    ? new PostgresAliveMarks(database, {
        instance: `${hostname()}:${process.pid}:${randomUUID()}`,
        before: () => readOwnAliveMark(join(env.TALOS_DATA_DIR, ALIVE_FILE), log),
      })
    : new FileAliveMarks(env.TALOS_DATA_DIR, log);
  return {
    env,
    log,
    clock,
    metrics,
    cache,
    limits,
    rateLimits,
    Octokit,
    jobs,
    queue,
    journal,
    memory,
    assistant,
    automationBudget,
    budgets,
    aliveMarks,
    suspensions,
    tokenCounter,
    markdown,
    close: () => closers.closeAll(),
  };
}

/** The memory of every repository as the environment configures it, with a given embedder. */
export function createMemoryRegistry(
  env: Env,
  deps: {
    embedder: Embedder;
    clock: Clock;
    log: Logger;
    metrics: Metrics;
    scanHelper?: ScanHelper;
    wordsCounter?: WordsCounter;
  },
): MemoryRegistry {
  return new MemoryRegistry({
    directory: join(env.TALOS_DATA_DIR, "memory"),
    batchSize: env.TALOS_MEMORY_BATCH_SIZE,
    flushMs: env.TALOS_MEMORY_FLUSH_MS,
    maxOpenBytes: env.TALOS_MEMORY_MAX_OPEN_MB * 1024 * 1024,
    ...deps,
  });
}

/**
 * The suspension marks: in `suspensions.json`, or with DATABASE_URL in PostgreSQL, which every
 * instance shares; a file's marks, from before DATABASE_URL was set, are moved there at start.
 */
async function openSuspensionMarks(
  env: Env,
  database: Database | undefined,
  log: Logger,
): Promise<SuspensionMarks> {
  const file = join(env.TALOS_DATA_DIR, "suspensions.json");
  if (!database) return new FileSuspensionMarks(file, log);
  const shared = new PostgresSuspensionMarks(database);
  await moveFileMarks(file, shared, log);
  return shared;
}

/** GHE_HOST's host name (without a port), or none when it is unset or unreadable. */
function gheImageHosts(gheHost: string | undefined): string[] {
  if (!gheHost) return [];
  try {
    return [new URL(`https://${gheHost}`).hostname];
  } catch {
    return [];
  }
}

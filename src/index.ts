import { join } from "node:path";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { createAssistant } from "./agent/create-assistant.js";
import { createChatModel } from "./agent/create-chat-model.js";
import { AutomationBudget } from "./automations/automation-budget.js";
import type { ApplicationFunction, ProbotOctokit } from "probot";
import type { Logger } from "pino";
import { systemClock, type Clock } from "./clock.js";
import { ALL_COMMANDS } from "./commands/all-commands.js";
import { createCommandRegistry } from "./commands/command-registry.js";
import type { Env } from "./config.js";
import { openDeliveryLedger, type DeliveryLedger } from "./delivery-ledger.js";
import { createAppIdentityLoader } from "./github/app-identity.js";
import type { Octokit } from "./github/octokit.js";
import { BackfillRunner } from "./memory/backfill-runner.js";
import { createEmbedder } from "./memory/create-embedder.js";
import type { Embedder } from "./memory/embedder.js";
import { MemoryRegistry } from "./memory/memory-registry.js";
import { createOctokitClass, type GitHubLimits } from "./github/create-octokit.js";
import { GitHubCache } from "./github/github-cache.js";
import { registerHandlers } from "./handlers/index.js";
import { createHealthRoute } from "./http/create-health-route.js";
import { createMetrics, type Metrics } from "./metrics/create-metrics.js";
import { createMetricsRoute } from "./metrics/create-metrics-route.js";
import { MarkdownWorkers, type MarkdownService } from "./markdown/markdown-workers.js";

export interface TalosOptions {
  env: Env;
  version: string;
  log: Logger;
  clock?: Clock;
  /** Defaults to the durable ledger under `TALOS_DATA_DIR`. */
  ledger?: DeliveryLedger;
  /** Tests switch GitHub throttling and retries off; the benchmark, the cache. */
  octokit?: { throttle?: boolean; retry?: boolean; cache?: boolean };
  /** The embedder; by default OpenAI's with a key, the local one without. */
  embedder?: Embedder;
  /** The chat model; by default `ChatOpenAI` from the environment, or none without a key. */
  model?: BaseChatModel | undefined;
  /** Markdown parsing off the event loop; by default worker threads of this instance's own. */
  markdown?: MarkdownService;
}

export interface Talos {
  /** The Probot app function. */
  app: ApplicationFunction;
  /** The GitHub client class to give Probot: cache, metrics, throttling and retries. */
  Octokit: typeof ProbotOctokit;
  metrics: Metrics;
  cache: GitHubCache;
  memory: MemoryRegistry;
  backfill: BackfillRunner;
  /** Flushes memory and releases what the app holds open (memory and ledger files). */
  close(): Promise<void>;
}

/** Builds Talos's dependencies once and wires them into a Probot app function. */
export async function createTalos(options: TalosOptions): Promise<Talos> {
  const { env, log } = options;
  const clock = options.clock ?? systemClock;
  const metrics = createMetrics();
  const cache = new GitHubCache({
    ttlMs: env.TALOS_CACHE_TTL_MS,
    max: env.TALOS_CACHE_MAX,
    clock,
    onResult: (kind, result) => metrics.cacheRequests.inc({ kind, result }),
  });
  const limits: GitHubLimits = {
    maxRetries: env.TALOS_GITHUB_MAX_RETRIES,
    maxRetryWaitSeconds: env.TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS,
    writeIntervalMs: env.TALOS_GITHUB_WRITE_INTERVAL_MS,
    notificationIntervalMs: env.TALOS_GITHUB_NOTIFICATION_INTERVAL_MS,
  };
  const { cache: useCache = true, ...throttling } = options.octokit ?? {};
  const Octokit = createOctokitClass({
    cache: useCache ? cache : undefined,
    metrics,
    limits,
    ...throttling,
  });
  const ledger =
    options.ledger ??
    (await openDeliveryLedger({
      file: join(env.TALOS_DATA_DIR, "deliveries.log"),
      retentionMs: env.TALOS_LEDGER_RETENTION_HOURS * 3_600_000,
      maxEntries: env.TALOS_LEDGER_MAX_ENTRIES,
      clock,
      log,
    }));
  const model = "model" in options ? options.model : createChatModel(env);
  const assistant = await createAssistant({ env, model, metrics, clock, log });
  const budget = new AutomationBudget({
    clock,
    maxPerInstallationPerHour: env.TALOS_AUTOMATION_MAX_PER_HOUR,
  });
  const memory = new MemoryRegistry({
    directory: join(env.TALOS_DATA_DIR, "memory"),
    embedder: options.embedder ?? createEmbedder(env),
    batchSize: env.TALOS_MEMORY_BATCH_SIZE,
    flushMs: env.TALOS_MEMORY_FLUSH_MS,
    clock,
    log,
    metrics,
  });
  // Backfills need the installation clients Probot makes; they exist once the app is loaded.
  let authenticate: ((installation: number) => Promise<Octokit>) | undefined;
  const backfill = new BackfillRunner({
    memory,
    auth: (installation) => {
      if (!authenticate) throw new Error("backfill before the app was loaded");
      return authenticate(installation);
    },
    max: env.TALOS_BACKFILL_MAX,
    clock,
    log,
  });
  const commands = createCommandRegistry(ALL_COMMANDS);
  const markdown =
    options.markdown ??
    new MarkdownWorkers({ deadlineMs: env.TALOS_MARKDOWN_DEADLINE_MS, metrics, log });

  const app: ApplicationFunction = async (probot, { addHandler }) => {
    registerHandlers(probot, {
      ledger,
      cache,
      commands,
      limits,
      clock,
      assistant,
      budget,
      memory,
      backfill,
      markdown,
      identity: createAppIdentityLoader(probot),
    });
    authenticate = (installation) => probot.auth(installation);
    void backfill
      .resume()
      .catch((error: unknown) => log.error({ err: error }, "cannot resume backfills"));
    addHandler(createHealthRoute({ version: options.version }));
    // On the public port only behind a token; otherwise on TALOS_METRICS_PORT (see main.ts).
    if (env.TALOS_METRICS_TOKEN)
      addHandler(createMetricsRoute(metrics.registry, { token: env.TALOS_METRICS_TOKEN }));
    // Probot's setup page registers the app with its webhook URL at the server root, so serve
    // webhooks there as well as at /api/github/webhooks.
    const rootWebhooks = await probot.getNodeMiddleware({ path: "/" });
    addHandler((req, res) => (req.method === "POST" ? rootWebhooks(req, res) : false));
  };
  const close = async () => {
    try {
      await backfill.close();
      await memory.closeAll();
    } finally {
      await ledger.close();
      // Workers this instance made; one handed in belongs to its maker.
      if (!options.markdown) await markdown.close();
    }
  };
  return { app, Octokit, metrics, cache, memory, backfill, close };
}

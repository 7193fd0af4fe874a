import { join } from "node:path";
import { Context, type ApplicationFunction, type ProbotOctokit } from "probot";
import { ALL_COMMANDS } from "./commands/all-commands.js";
import { createCommandRegistry } from "./commands/command-registry.js";
import { createServices, type Services, type ServicesOptions } from "./create-services.js";
import { createAppIdentityLoader } from "./github/app-identity.js";
import { fenceWrites } from "./github/create-octokit.js";
import { holdsRepository } from "./github/holds-repository.js";
import { listInstalledRepositories } from "./github/list-installed-repositories.js";
import type { Octokit } from "./github/octokit.js";
import { redeliveryWindowHours } from "./github/redeliver-missed.js";
import { registerHandlers } from "./handlers/index.js";
import { createHealthRoute } from "./http/create-health-route.js";
import type { GitHubCache } from "./github/github-cache.js";
import { BackfillQueueFile } from "./memory/backfill-queue-file.js";
import { BackfillRunner } from "./memory/backfill-runner.js";
import { requestsDirectory, serveRequests, type RequestServer } from "./server-requests.js";
import { retryRequestHandler } from "./jobs/retry-request.js";
import { memoryRequestHandler } from "./memory/memory-request.js";
import { backfillRequestHandler } from "./memory/backfill-request.js";
import { startOutageCatchUp, type OutageCatchUp } from "./memory/outage-catch-up.js";
import type { MemoryService } from "./memory/memory-service.js";
import type { Metrics } from "./metrics/create-metrics.js";
import { createMetricsRoute } from "./metrics/create-metrics-route.js";

export interface TalosOptions extends ServicesOptions {
  version: string;
}

export interface Talos {
  /** The Probot app function. */
  app: ApplicationFunction;
  /** The GitHub client class to give Probot: cache, metrics, throttling and retries. */
  Octokit: typeof ProbotOctokit;
  services: Services;
  metrics: Metrics;
  cache: GitHubCache;
  memory: MemoryService;
  backfill: BackfillRunner;
  /** The start's catch-up of memory after a long outage, once the app is loaded. */
  outage(): OutageCatchUp | undefined;
  /**
   * Stops: no new job starts, running ones get `TALOS_SHUTDOWN_GRACE_MS` to finish (the rest
   * stay journaled for the next start), then memory is flushed and files are released.
   */
  close(): Promise<void>;
}

/** Builds Talos's services once and wires them into a Probot app function. */
export async function createTalos(options: TalosOptions): Promise<Talos> {
  const services = await createServices(options);
  const { env, log, clock, memory, jobs } = services;
  // Name-keyed memories of earlier versions move aside now, so that a problem shows at start.
  await memory.migrate();
  // Backfills need the installation clients Probot makes; they exist once the app is loaded.
  let authenticate: ((installation: number) => Promise<Octokit>) | undefined;
  let authenticateApp: (() => Promise<Octokit>) | undefined;
  const backfill = new BackfillRunner({
    memory,
    auth: (installation) => {
      if (!authenticate) throw new Error("backfill before the app was loaded");
      return authenticate(installation);
    },
    max: env.TALOS_BACKFILL_MAX,
    clock,
    log,
    // A server's only: replay's backfills are of recorded data, and not to resume.
    queue: options.ephemeralJobs
      ? undefined
      : new BackfillQueueFile(join(env.TALOS_DATA_DIR, "backfill-queue.json"), log),
    // A replay's throwaway memory was never backfilled; its event is all it replays.
    backfillOnEvent: !options.ephemeralJobs,
    suspensions: services.suspensions,
    installed: async () => {
      if (!authenticate || !authenticateApp) throw new Error("listing before the app was loaded");
      return listInstalledRepositories(await authenticateApp(), authenticate, log);
    },
  });
  const commands = createCommandRegistry(ALL_COMMANDS);
  let stopping = false;
  let outage: OutageCatchUp | undefined;
  let requests: RequestServer | undefined;

  const app: ApplicationFunction = async (probot, { addHandler }) => {
    registerHandlers(probot, {
      jobs,
      cache: services.cache,
      commands,
      limits: services.limits,
      clock,
      assistant: services.assistant,
      budget: services.automationBudget,
      budgets: services.budgets,
      memory,
      readmission: {
        holds: async (installation, repository) =>
          holdsRepository(
            await probot.auth(),
            { id: installation, client: () => probot.auth(installation) },
            repository,
          ),
        readmitted: (ref) => backfill.enqueue(ref),
        log,
      },
      backfill,
      suspensions: services.suspensions,
      rateLimits: services.rateLimits,
      markdown: services.markdown,
      identity: createAppIdentityLoader(probot),
    });
    authenticate = (installation) => probot.auth(installation);
    authenticateApp = () => probot.auth();
    // Jobs a restart left in the journal run again with a client and logger made afresh.
    jobs.start(async (job) => {
      const octokit = await probot.auth(job.installation);
      // Without an installation (a malformed payload, to be parked) Probot gives its one app
      // client, which everything shares (redeliveries write through it): not this job's to fence
      // or relabel, or one lost lease would refuse its writes for good.
      const own = job.installation !== undefined;
      if (job.lease && own) fenceWrites(octokit, job.lease);
      const name = job.event.split(".")[0] as Context["name"];
      const event = { id: job.id, name, payload: job.payload } as ConstructorParameters<
        typeof Context
      >[0];
      const eventLog = log.child({
        name: "event",
        id: job.id,
        event: job.event,
        installation: job.installation,
        repository: job.repository,
      });
      if (own) octokit.log = eventLog;
      return new Context(event, octokit, eventLog);
    });
    // What commands beside this server ask of it: on disk only, since the shared queue and
    // PostgreSQL take `talos jobs retry`, `talos memory` and `talos backfill` from the commands
    // themselves.
    if (!options.ephemeralJobs)
      requests = await serveRequests({
        directory: requestsDirectory(env.TALOS_DATA_DIR),
        handlers: {
          ...(services.journal && {
            retry: retryRequestHandler((id) => jobs.retryParked(id), log),
          }),
          ...(!env.DATABASE_URL && {
            memory: memoryRequestHandler(memory, backfill),
            backfill: backfillRequestHandler(memory, backfill),
          }),
        },
        clock,
        log,
      });
    void backfill
      .resume()
      .catch((error: unknown) => log.error({ err: error }, "cannot resume backfills"));
    // A server's only: the commands that build Talos (replay) neither ran nor run as one.
    if (!options.ephemeralJobs)
      outage = await startOutageCatchUp({
        marks: services.aliveMarks,
        // As far back as the start's redeliveries reach: no further than the ledger remembers.
        redeliverHours: redeliveryWindowHours(
          env.TALOS_REDELIVER_HOURS,
          env.TALOS_LEDGER_RETENTION_HOURS,
        ),
        catchUp: (since, progress) => backfill.catchUp(since, progress),
        clock,
        log,
      });
    addHandler(createHealthRoute({ version: options.version, stopping: () => stopping }));
    // On the public port only behind a token; otherwise on TALOS_METRICS_PORT (see main.ts).
    if (env.TALOS_METRICS_TOKEN)
      addHandler(createMetricsRoute(services.metrics.registry, { token: env.TALOS_METRICS_TOKEN }));
    // Probot's setup page registers the app with its webhook URL at the server root, so serve
    // webhooks there as well as at /api/github/webhooks.
    const rootWebhooks = await probot.getNodeMiddleware({ path: "/" });
    addHandler((req, res) => (req.method === "POST" ? rootWebhooks(req, res) : false));
  };
  const close = async () => {
    stopping = true;
    // Side by side: a request being answered (a compaction, say) must neither let jobs start
    // meanwhile nor add its wait to the running jobs' grace. Both end before anything closes.
    const [, left] = await Promise.all([requests?.stop(), jobs.stop(env.TALOS_SHUTDOWN_GRACE_MS)]);
    if (left > 0)
      log.warn({ jobs: left }, "jobs still running at shutdown resume at the next start");
    try {
      await backfill.close();
      // Once jobs and catch-up have stopped: the last time this ran, and any catch-up left.
      await outage?.stop();
    } finally {
      await services.close();
    }
  };
  return {
    app,
    Octokit: services.Octokit,
    services,
    metrics: services.metrics,
    cache: services.cache,
    memory,
    backfill,
    outage: () => outage,
    close,
  };
}

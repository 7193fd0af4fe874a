import { run } from "probot";
import { createLogger } from "./create-logger.js";
import { disableLangChainTracing, getSecrets, loadEnvironment, parseEnv } from "./config.js";
import { createTalos } from "./index.js";
import { startMetricsServer } from "./metrics/create-metrics-route.js";
import { readVersion } from "./read-version.js";

/** `npm start`: the Probot server, or Probot's setup page when the app has no credentials yet. */
disableLangChainTracing();
const environment = loadEnvironment();
const env = parseEnv(environment);
const log = await createLogger({
  level: env.LOG_LEVEL,
  format: env.LOG_FORMAT ?? (env.NODE_ENV === "production" ? "json" : "pretty"),
  secrets: getSecrets(env),
});
const talos = await createTalos({ env, log, version: await readVersion() });
const server = await run(talos.app, { env: environment, log, Octokit: talos.Octokit });
const metricsServer =
  env.TALOS_METRICS_PORT === undefined
    ? undefined
    : await startMetricsServer({
        registry: talos.metrics.registry,
        port: env.TALOS_METRICS_PORT,
        host: env.TALOS_METRICS_HOST,
        log,
      });

// Probot's own SIGINT handler exits as soon as the server stops; memory must be flushed first.
process.removeAllListeners("SIGINT");
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info(`${signal}: stopping`);
    metricsServer?.close();
    void Promise.all([server.stop(), talos.close()]).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "error while stopping");
        process.exit(1);
      },
    );
  });
}

import { run } from "probot";
import { createLogger } from "./create-logger.js";
import { disableLangChainTracing, loadEnvironment, parseEnv } from "./config.js";
import { createTalos } from "./index.js";
import { readVersion } from "./read-version.js";

/** `npm start`: the Probot server, or Probot's setup page when the app has no credentials yet. */
disableLangChainTracing();
const environment = loadEnvironment();
const env = parseEnv(environment);
const log = await createLogger({
  level: env.LOG_LEVEL,
  format: env.LOG_FORMAT ?? (env.NODE_ENV === "production" ? "json" : "pretty"),
  secrets: [
    env.PRIVATE_KEY,
    env.WEBHOOK_SECRET,
    env.GITHUB_CLIENT_SECRET,
    env.GITHUB_TOKEN,
    env.OPENAI_API_KEY,
  ],
});
const talos = await createTalos({ env, log, version: await readVersion() });
const server = await run(talos.app, { env: environment, log, Octokit: talos.Octokit });

// Probot's own SIGINT handler exits as soon as the server stops; memory must be flushed first.
process.removeAllListeners("SIGINT");
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log.info(`${signal}: stopping`);
    void Promise.all([server.stop(), talos.close()]).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "error while stopping");
        process.exit(1);
      },
    );
  });
}

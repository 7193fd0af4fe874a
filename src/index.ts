import { join } from "node:path";
import type { ApplicationFunction } from "probot";
import type { Logger } from "pino";
import { systemClock, type Clock } from "./clock.js";
import { configCommand } from "./commands/config-command.js";
import { createCommandRegistry } from "./commands/command-registry.js";
import { helpCommand } from "./commands/help-command.js";
import type { Env } from "./config.js";
import { openDeliveryLedger, type DeliveryLedger } from "./delivery-ledger.js";
import { createAppIdentityLoader } from "./github/app-identity.js";
import { registerHandlers } from "./handlers/index.js";
import { createHealthRoute } from "./http/create-health-route.js";

export interface TalosOptions {
  env: Env;
  version: string;
  log: Logger;
  clock?: Clock;
  /** Defaults to the durable ledger under `TALOS_DATA_DIR`. */
  ledger?: DeliveryLedger;
}

export interface Talos {
  /** The Probot app function. */
  app: ApplicationFunction;
  /** Releases what the app holds open (the ledger file). */
  close(): Promise<void>;
}

/** Builds Talos's dependencies once and wires them into a Probot app function. */
export async function createTalos(options: TalosOptions): Promise<Talos> {
  const { env, log } = options;
  const clock = options.clock ?? systemClock;
  const ledger =
    options.ledger ??
    (await openDeliveryLedger({
      file: join(env.TALOS_DATA_DIR, "deliveries.log"),
      retentionMs: env.TALOS_LEDGER_RETENTION_HOURS * 3_600_000,
      maxEntries: env.TALOS_LEDGER_MAX_ENTRIES,
      clock,
      log,
    }));
  const commands = createCommandRegistry([helpCommand, configCommand]);
  const startedAt = clock.now();

  const app: ApplicationFunction = async (probot, { addHandler }) => {
    registerHandlers(probot, { ledger, commands, identity: createAppIdentityLoader(probot) });
    addHandler(createHealthRoute({ version: options.version, clock, startedAt }));
    // Probot's setup page registers the app with its webhook URL at the server root, so serve
    // webhooks there as well as at /api/github/webhooks.
    const rootWebhooks = await probot.getNodeMiddleware({ path: "/" });
    addHandler((req, res) => (req.method === "POST" ? rootWebhooks(req, res) : false));
  };
  return { app, close: () => ledger.close() };
}

import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { emitterEventNames, type EmitterWebhookEventName } from "@octokit/webhooks";
import type { Logger } from "pino";
import { Probot } from "probot";
import { parseEnv } from "../config.js";
import { MalformedPayloadError } from "../handlers/read-payload.js";
import { createTalos } from "../index.js";
import { createReplayFetch, loadRecordedGitHub, type PlannedWrite } from "./recorded-github.js";
import { quietBelowDebug } from "./quiet-below-debug.js";
import { UsageError } from "./usage-error.js";

export interface ReplayOptions {
  file: string;
  /** The event name (`issue_comment`); otherwise taken from a `<event>.<action>….json` file name. */
  event?: string | undefined;
  fixturesDir: string;
  version: string;
  log: Logger;
}

export interface ReplayResult {
  event: string;
  delivery: string;
  writes: PlannedWrite[];
}

/**
 * Runs Talos's real handlers on a saved webhook payload, with GitHub replaced by recorded data:
 * reads come from `fixtures/api`, writes are collected as a plan and never sent.
 */
export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const payload = await readPayloadFile(options.file);
  const event = resolveEventName(options.file, options.event);
  checkAction(options.file, event, payload);
  const writes: PlannedWrite[] = [];
  const replayFetch = createReplayFetch(
    await loadRecordedGitHub(options.fixturesDir),
    (write) => writes.push(write),
    options.fixturesDir,
  );
  // A replay leaves nothing behind: memory and backfill progress go to a throwaway directory.
  const dataDir = await mkdtemp(join(tmpdir(), "talos-replay-"));
  // The replay reports a failed job itself, in one line: the job runner's own log of it (a
  // stack, "parked") is for a server, and is shown here only when LOG_LEVEL asks for debug.
  const log = quietBelowDebug(options.log);
  const talos = await createTalos({
    env: parseEnv({ LOG_LEVEL: "silent", TALOS_DATA_DIR: dataDir }),
    log,
    version: options.version,
    ephemeralJobs: true,
    // Nothing reaches GitHub, so there is nothing to throttle or retry.
    octokit: { throttle: false, retry: false },
  });
  const probot = new Probot({
    githubToken: "replay",
    log,
    Octokit: talos.Octokit,
    request: { fetch: replayFetch },
  });
  await probot.load(talos.app, { cwd: process.cwd(), addHandler: () => undefined });
  const delivery = `replay-${randomUUID()}`;
  try {
    // The job runs after the delivery is accepted; the replay waits for its run to end (an
    // event no handler takes makes no job).
    let failure: unknown;
    void talos.services.jobs.waitFor(delivery).catch((error: unknown) => (failure = error));
    await probot.receive({ id: delivery, name: event, payload } as Parameters<
      Probot["receive"]
    >[0]);
    await talos.services.jobs.idle();
    if (failure) throw failure;
    // A new installation's backfill runs in the background on a server; here it is part of
    // the event, so that its reads happen before the replay ends.
    await talos.backfill.idle();
  } catch (error) {
    const causes = error instanceof AggregateError ? error.errors : [error];
    const malformed = causes
      .map((e: Error) => e?.cause ?? e)
      .find((e) => e instanceof MalformedPayloadError);
    if (malformed) throw new UsageError(`${options.file}: ${(malformed as Error).message}`);
    throw causes[0] instanceof Error ? causes[0] : error;
  } finally {
    await talos.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  return {
    event: typeof payload.action === "string" ? `${event}.${payload.action}` : event,
    delivery,
    writes,
  };
}

async function readPayloadFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new UsageError(`${file} does not hold a webhook payload (a JSON object)`);
  }
  // JSON.parse reads nesting that JSON.stringify cannot write back (100,000 arrays deep): the
  // delivery's journaling then failed, and the replay said to redeliver it. A fixed bound, not
  // the stack's: a payload near the stack's limit would pass here and fail deeper in the handlers.
  if (isNestedDeeper(payload, MAX_PAYLOAD_DEPTH))
    throw new UsageError(`${file} is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
  return payload as Record<string, unknown>;
}

/** Far deeper than any webhook payload GitHub sends. */
const MAX_PAYLOAD_DEPTH = 1000;

function isNestedDeeper(value: unknown, levels: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (levels === 0) return true;
  return Object.values(value).some((child) => isNestedDeeper(child, levels - 1));
}

function resolveEventName(file: string, explicit: string | undefined): EmitterWebhookEventName {
  const name = explicit ?? basename(file).split(".")[0] ?? "";
  if (!explicit && !isEventName(name)) {
    throw new UsageError(
      `cannot tell the event from the file name ${basename(file)}; pass --event <name>`,
    );
  }
  if (!isEventName(name) || name.includes(".")) throw new UsageError(`unknown event "${name}"`);
  return name;
}

/**
 * An event that has actions comes with one of them: `{}`, or an issue copied from the API, ran
 * no handler, and the replay had reported it done, with nothing to write.
 */
function checkAction(file: string, event: string, payload: Record<string, unknown>): void {
  const actions = emitterEventNames.filter((name) => name.startsWith(`${event}.`));
  if (actions.length === 0) return;
  const { action } = payload;
  if (typeof action !== "string" || !isEventName(`${event}.${action}`)) {
    throw new UsageError(
      `${file} does not hold a payload of ${event}: its "action" is ${typeof action === "string" ? `"${action.slice(0, 40)}", not one of ${event}'s` : "missing"}`,
    );
  }
}

function isEventName(name: string): name is EmitterWebhookEventName {
  return (emitterEventNames as readonly string[]).includes(name);
}

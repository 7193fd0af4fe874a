import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { appPrivateKey, getSecrets, REPO_CONFIG_PATH, type Env } from "../config.js";
import { createSecretScrubber } from "../create-logger.js";
import { loadRepoConfigOf } from "../github/load-repo-config.js";
import type { Octokit, RepoRef } from "../github/octokit.js";
import { backfillRepository } from "../memory/backfill-repository.js";
import type { BackfillAnswer, BackfillRequest } from "../memory/backfill-request.js";
import type { LockOwner } from "../memory/directory-lock.js";
import { catchUpRepository } from "../memory/catch-up-repository.js";
import { MemoryRegistry, type RepositoryRef } from "../memory/memory-registry.js";
import { MemoryDeletedError, type MemoryStore } from "../memory/memory-store.js";
import {
  BACKFILL_LEASE_MS,
  backfillClaim,
  releaseBackfillClaim,
} from "../memory/memory-service.js";
import { createServices, type Services } from "../create-services.js";
import { assertDirectory } from "./assert-directory.js";
import { createCliOctokit } from "./create-cli-octokit.js";
import { askServer, holdDataDirectory } from "./hold-data-directory.js";
import { parseRepoName } from "./parse-repo-name.js";
import { UsageError } from "./usage-error.js";

export interface BackfillCommandOptions {
  /** `owner/repo`. */
  repo: string;
  /** `--installation ID`; looked up when the app's credentials are configured. */
  installation: string | undefined;
  /** The most issues and pull requests to index. */
  max: number;
  /** `--since` (ISO 8601): a catch-up of what was updated since then instead of a backfill. */
  since?: string | undefined;
  dataDir: string;
  env: Env;
  /** Stops between pages (Ctrl-C); the saved progress lets the next run resume. */
  signal?: AbortSignal | undefined;
  clock: Clock;
  log: Logger;
  stdout: Writable;
  /** Progress goes here: a bar redrawn in place on a terminal, a line per page otherwise. */
  stderr: Writable & { isTTY?: boolean };
}

const BAR_WIDTH = 30;

/**
 * `talos backfill <owner/repo>`: indexes a repository's existing issues and pull requests into
 * the memory of one installation, as the server does on install, and resumes where an earlier
 * run stopped.
 */
export async function backfill(options: BackfillCommandOptions): Promise<number> {
  const { env, log } = options;
  const repo = parseRepoName(options.repo);
  if (!repo) throw new UsageError(`backfill takes owner/repo, not "${options.repo}"`);
  // A positive id, exact as a number: memory is kept under it.
  if (options.installation !== undefined && !isInstallationId(options.installation))
    throw new UsageError(
      `--installation takes a numeric installation id, not "${options.installation}"`,
    );

  // On disk the memory has one writer: the data directory is held for the run, or, beside a
  // running server, that server is asked to do it.
  let held: Awaited<ReturnType<typeof holdDataDirectory>> | undefined;
  if (!env.DATABASE_URL) {
    // As every other command: a mistyped --data-dir, or the wrong directory, had been made and
    // indexed into, where no server reads it.
    await assertDirectory(options.dataDir);
    held = await holdDataDirectory(options.dataDir);
  }
  try {
    // The server's wiring, with the journal and budgets kept in memory: the CLI runs no jobs.
    const services = await createServices({
      env: { ...env, TALOS_DATA_DIR: options.dataDir },
      log,
      clock: options.clock,
      ephemeralJobs: true,
    });
    try {
      return await backfillWith(
        services,
        options,
        repo,
        held && "server" in held ? held.server : undefined,
      );
    } finally {
      await services.close();
    }
  } finally {
    if (held && "release" in held) await held.release();
  }
}

async function backfillWith(
  services: Services,
  options: BackfillCommandOptions,
  repo: RepoRef,
  server: LockOwner | undefined,
): Promise<number> {
  const { log, stdout } = options;
  const { octokit, installation, verified } = await authenticate(options, repo, services);
  const { config } = await loadRepoConfigOf(octokit, repo, log);
  if (!config.memory.enabled) {
    throw new Error(
      `${options.repo} switches memory off in ${REPO_CONFIG_PATH} (memory.enabled: false); nothing was indexed`,
    );
  }

  // Memory is kept by repository id, which a token can read and a name cannot say.
  const repository = await getRepository(octokit, repo);
  const name = `${installation}/${repository.full_name}`;
  // Flushed and closed by the services' close, in backfill().
  const memory = services.memory;
  const namespace = { installation: Number(installation), repository: repository.id };
  // How to index it again: the progress is a file on disk, or a column in PostgreSQL.
  const reset =
    memory instanceof MemoryRegistry
      ? `remove ${join(memory.directoryOf(namespace), "backfill.json")}`
      : `clear its backfill column (${memory.locationOf(namespace)})`;
  const ref: RepositoryRef = {
    ...namespace,
    name: repository.full_name,
    createdAt: repository.created_at,
  };
  if (server) return backfillBesideServer(options, server, ref, { name, reset, verified });
  const store = await memory.open(ref).catch(async (error: unknown) => {
    if (!(error instanceof MemoryDeletedError)) throw error;
    // Removed with its repository or installation, and the event adding it back never came.
    // GitHub named this installation as the repository's just now: it holds it again.
    if (!verified) throw new Error(`${error.message}; ${readmitHint(ref)}`, { cause: error });
    await memory.readmit(ref);
    stdout.write(readmittedLine(options, ref, name));
    return memory.open(ref);
  });
  if (options.since) return catchUp(options, octokit, repository, store, name, options.since);
  const before = await store.readBackfillState();
  // One found with issues switched off is checked again: someone asking may have switched them on.
  if (before?.status === "done" && !before.issuesDisabledAt) {
    stdout.write(
      `${options.repo} is already backfilled into memory ${name} (${before.indexed} indexed); ${reset} to index it again.\n`,
    );
    return 0;
  }
  // Instances sharing a database resume unfinished backfills: one runs each, this run included.
  const holder = `talos backfill ${randomUUID()}`;
  if (!(await memory.claimBackfill(namespace, holder, BACKFILL_LEASE_MS))) {
    throw new Error(
      `${options.repo}: a Talos instance is backfilling memory ${name} now; it resumes where this would, so nothing was done (a stopped instance lets it go within ${BACKFILL_LEASE_MS / 60_000} minutes)`,
    );
  }
  // Pull requests all read with issues off: if they are on now, the issues listing is read from
  // its start (backfill-repository.ts), so what was read before is not where this resumes.
  const from = before?.listing === "pulls" && before.status === "done" ? undefined : before;
  const progress = createProgress(options, name);
  progress.start(from?.indexed ?? 0, options.max);
  let state;
  try {
    state = await backfillRepository({
      octokit,
      // As GitHub names it now, which the memory checks every record against: an old name
      // (GitHub redirects it) would have every item refused.
      repo: { owner: repository.owner.login, repo: repository.name },
      memory: store,
      progress: store,
      // Kept through the rate limit's waits; lost (this run stalled past the lease and an
      // instance resumed the backfill), it stops with an error saying so.
      claim: backfillClaim(memory, namespace, holder),
      max: options.max,
      clock: options.clock,
      log,
      onProgress: progress.update,
      signal: options.signal,
      // Someone is watching: a failure is said at once (after the client's own retries),
      // and running the command again resumes at the failed page.
      retry: { attempts: 1, baseMs: 0, maxMs: 0 },
    });
  } finally {
    progress.end();
    await releaseBackfillClaim(memory, namespace, holder, log);
  }
  // Flushed here rather than by closeAll, which ignores a failure.
  await store.flush();
  const { records } = await store.stats();
  if (state.issuesDisabledAt) {
    // Its pull requests were read from their own listing instead (backfill-repository.ts).
    stdout.write(
      `${options.repo} has issues switched off (GitHub answers 410 Gone to listing them): pull requests indexed from their own listing: ${state.indexed}; memory ${name} holds ${records} records.${state.status === "running" ? " Stopped before the end: run it again to resume." : " Run this again once issues are on (the server checks again a day later, or when an issue is opened)."}\n`,
    );
    return 0;
  }
  stdout.write(
    `Indexed ${state.indexed - (from?.indexed ?? 0)} issues and pull requests of ${options.repo}${from && from.page > 1 ? `, resumed at page ${from.page}` : ""}; memory ${name} holds ${records} records.${state.status === "running" ? " Stopped before the end: run it again to resume." : ""}\n`,
  );
  return 0;
}

/** A deleted memory opens again only when GitHub says its installation holds it again. */
const readmitHint = (ref: RepositoryRef) =>
  `set APP_ID and PRIVATE_KEY (instead of --installation) so that Talos can ask GitHub whether installation ${ref.installation} holds ${ref.name} again, and then index it`;

const readmittedLine = (options: BackfillCommandOptions, ref: RepositoryRef, name: string) =>
  `${options.repo}'s memory ${name} was removed with the repository, and GitHub says installation ${ref.installation} holds it again: readmitted, empty.\n`;

/**
 * Beside a running server on disk: the server runs the backfill (or the catch-up), queued behind
 * its own, and resumes a backfill after a restart with the same bound. The command says so and
 * ends: `talos memory stats` shows the progress.
 */
async function backfillBesideServer(
  options: BackfillCommandOptions,
  server: LockOwner,
  ref: RepositoryRef,
  { name, reset, verified }: { name: string; reset: string; verified: boolean },
): Promise<number> {
  const request: BackfillRequest = {
    installation: ref.installation,
    repository: ref.repository,
    name: ref.name,
    ...(typeof ref.createdAt === "string" ? { createdAt: ref.createdAt } : {}),
    max: options.max,
    ...(options.since ? { since: options.since } : {}),
    readmit: verified,
  };
  const answer = (await askServer(options.dataDir, server, {
    kind: "backfill",
    ...request,
  })) as BackfillAnswer;
  if (answer.removed)
    throw new Error(`memory ${name} was deleted with its repository; ${readmitHint(ref)}`);
  const { stdout } = options;
  if (answer.readmitted) stdout.write(readmittedLine(options, ref, name));
  const state = answer.state;
  if (!options.since && state?.status === "done" && !state.issuesDisabledAt) {
    stdout.write(
      `${options.repo} is already backfilled into memory ${name} (${state.indexed} indexed); ${reset} to index it again.\n`,
    );
    return 0;
  }
  if (!answer.queued) {
    stdout.write(
      `The running server has a ${options.since ? "catch-up" : "backfill"} of memory ${name} queued or under way already: it goes on where this would.\n`,
    );
    return 0;
  }
  stdout.write(
    options.since
      ? `The running server catches memory ${name} up with the issues and pull requests of ${options.repo} updated since ${options.since} (at most ${options.max}), after what it has queued; its log says when it is done.\n`
      : `The running server backfills ${options.repo} into memory ${name} (at most ${options.max}${state && state.status !== "done" ? `, resuming at page ${state.page}` : ""}), after what it has queued; \`talos memory stats --repo ${ref.name}\` shows its progress.\n`,
  );
  return 0;
}

/**
 * `--since`: the memory caught up with the issues and pull requests updated since then (an
 * outage longer than redeliveries reach whose catch-up did not run, a restored backup), as the
 * server's start does; the backfill's progress is left as it is.
 */
async function catchUp(
  options: BackfillCommandOptions,
  octokit: Octokit,
  repository: { full_name: string; name: string; owner: { login: string } },
  store: MemoryStore,
  name: string,
  since: string,
): Promise<number> {
  const result = await catchUpRepository({
    octokit,
    repo: { owner: repository.owner.login, repo: repository.name },
    memory: store,
    since,
    max: options.max,
    clock: options.clock,
    log: options.log,
    signal: options.signal,
    // Someone is watching: a failure is said at once (after the client's own retries).
    retry: { attempts: 1, baseMs: 0, maxMs: 0 },
  });
  await store.flush();
  const { records } = await store.stats();
  // Each reason an error's message: the configured secrets go, as from the command's error line.
  const scrub = createSecretScrubber(getSecrets(options.env));
  const left = result.skipped.map((item) => `#${item.number} (${scrub(item.reason)})`).join(", ");
  options.stdout.write(
    `Caught up ${result.stored} ${result.listing === "pulls" ? "pull requests (issues are switched off)" : "issues and pull requests"} of ${options.repo} updated since ${since}${result.capped ? `, the ${options.max} most recently updated (--max)` : ""}${left ? `; left out ${left}` : ""}; memory ${name} holds ${records} records.${result.status === "stopped" ? " Stopped before the end: run it again." : ""}\n`,
  );
  return 0;
}

/**
 * The client to read the repository with, and the installation whose memory it goes into. The
 * app's credentials tell the installation; a token cannot, so then it must be given.
 */
async function authenticate(
  options: BackfillCommandOptions,
  repo: RepoRef,
  services: Services,
): Promise<{ octokit: Octokit; installation: string; verified: boolean }> {
  const { env } = options;
  const appId = env.APP_ID;
  // As Probot finds it: PRIVATE_KEY, PRIVATE_KEY_PATH, or the one .pem file here.
  const privateKey = appPrivateKey(env);
  if (!appId || !privateKey) {
    if (options.installation === undefined) {
      throw new UsageError(
        "pass --installation ID, or set APP_ID and PRIVATE_KEY: memory is kept per installation, and without the app's credentials Talos cannot look up which installation holds the repository",
      );
    }
    return {
      octokit: createCliOctokit(services),
      installation: options.installation,
      verified: false,
    };
  }
  const app = createCliOctokit(services, { appId, privateKey });
  let installationId: number;
  try {
    installationId = (
      await app.rest.apps.getRepoInstallation({ owner: repo.owner, repo: repo.repo })
    ).data.id;
  } catch (error) {
    if ((error as { status?: number }).status === 404)
      throw new UsageError(`the app ${appId} is not installed on ${repo.owner}/${repo.repo}`);
    throw error;
  }
  if (options.installation !== undefined && options.installation !== String(installationId)) {
    throw new UsageError(
      `${repo.owner}/${repo.repo} belongs to installation ${installationId} of the app, not ${options.installation}`,
    );
  }
  return {
    octokit: createCliOctokit(services, { appId, privateKey, installationId }),
    installation: String(installationId),
    // GitHub named this installation as the one holding the repository.
    verified: true,
  };
}

function isInstallationId(value: string): boolean {
  return /^[1-9]\d*$/.test(value) && Number.isSafeInteger(Number(value));
}

async function getRepository(octokit: Octokit, repo: RepoRef) {
  try {
    return (await octokit.rest.repos.get({ ...repo })).data;
  } catch (error) {
    if ((error as { status?: number }).status === 404)
      throw new UsageError(
        `there is no repository ${repo.owner}/${repo.repo}, or it is not visible`,
      );
    throw error;
  }
}

interface Progress {
  start(indexed: number, max: number): void;
  update(indexed: number, max: number): void;
  /** Ends the bar's line, so that what follows (an error, say) starts on a line of its own. */
  end(): void;
}

function createProgress(options: BackfillCommandOptions, name: string): Progress {
  const { stderr, clock } = options;
  if (stderr.isTTY) {
    const draw = (indexed: number, max: number) => {
      const filled = max > 0 ? Math.round((Math.min(indexed, max) / max) * BAR_WIDTH) : BAR_WIDTH;
      stderr.write(
        `\r[${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${indexed}/${max} ${name}`,
      );
    };
    return { start: draw, update: draw, end: () => stderr.write("\n") };
  }
  return {
    start: () => undefined,
    update: (indexed, max) =>
      stderr.write(
        `${new Date(clock.now()).toISOString()} backfill ${name}: ${indexed}/${max} indexed\n`,
      ),
    end: () => undefined,
  };
}

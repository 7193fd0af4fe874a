import { causesOf } from "../causes-of.js";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { loadRepoConfigOf } from "../github/load-repo-config.js";
import {
  listRepositoriesOf,
  type InstalledRepositories,
} from "../github/list-installed-repositories.js";
import { rateLimitWaitMs, statusOf, type Octokit } from "../github/octokit.js";
import {
  BackfillTakenOverError,
  DEFAULT_BACKFILL_RETRY,
  backfillRepository,
  isRetryable,
  pauseFor,
  readBackfillState,
  type BackfillRetry,
  type BackfillState,
} from "./backfill-repository.js";
import type { LegacyMemory } from "./legacy-memory.js";
import type { MemoryNamespace, StoredNamespace } from "./memory-registry.js";
import {
  BACKFILL_LEASE_MS,
  backfillClaim,
  releaseBackfillClaim,
  type MemoryService,
} from "./memory-service.js";
import type { BackfillQueueFile } from "./backfill-queue-file.js";
import { catchUpRepository, type CatchUpState } from "./catch-up-repository.js";
import type { CatchUpProgress } from "./outage-catch-up.js";
import { MemoryDeletedError } from "./memory-store.js";
import type { SuspensionMarks } from "./suspension-marks.js";

export interface BackfillRunnerOptions {
  memory: MemoryService;
  /** The client of an installation (Probot's `app.auth`). */
  auth: (installation: number) => Promise<Octokit>;
  max: number;
  clock: Clock;
  log: Logger;
  /** How a failing page is tried again; backfill-repository.ts has the default. */
  retry?: BackfillRetry | undefined;
  /**
   * The repositories the app's installations hold now, as GitHub lists them: a catch-up
   * backfills those it has no memory of (added while Talos missed the event), and deletes the
   * memory of those an installation no longer holds (removed meanwhile).
   */
  installed?: (() => Promise<InstalledRepositories>) | undefined;
  /** Where the backfills queued and not yet run are kept, so a restart resumes them. */
  queue?: BackfillQueueFile | undefined;
  /** Whether an event's memory never backfilled is backfilled (`opened`); off, it is left. */
  backfillOnEvent?: boolean | undefined;
  /**
   * When suspended installations were suspended: a start's catch-up marks those it lists as
   * suspended, and catches up from its mark one unsuspended while Talos missed the event.
   */
  suspensions?: SuspensionMarks | undefined;
}

/** A repository to backfill: its namespace, and `owner/name` as the event spelled it. */
export interface BackfillTarget extends MemoryNamespace {
  name: string;
  /** The most to read, when a command asked (`talos backfill --max`); else TALOS_BACKFILL_MAX. */
  max?: number | undefined;
  /** A catch-up a command asked for (`talos backfill --since`): what changed since then. */
  since?: string | undefined;
}

interface Job {
  target: BackfillTarget;
  /** With `since`: a catch-up of what changed since then (catch-up-repository.ts). */
  since?: string | undefined;
  /** An issue was opened since its backfill found issues off: check them however recently. */
  recheck: boolean;
  /** The most issues and pull requests to read: the target's, or TALOS_BACKFILL_MAX. */
  max: number;
  controller: AbortController;
  /** Set once it runs; resolves when it has stopped. */
  running: Promise<void> | undefined;
  /** An earlier time asked while it ran: it runs again from there once it ends (see #widen). */
  again?: string | undefined;
  /**
   * A catch-up's: where it goes on from, once it stopped for its installation's rate limit (see
   * #runAfterReset); set by the run that stopped.
   */
  resume?: CatchUpState | undefined;
}

/** A catch-up to run again after its installation's rate limit resets (see #runAfterReset). */
interface DeferredCatchUp {
  since: string;
  resolve: (finished: boolean) => void;
  resume: CatchUpState | undefined;
}

/**
 * How long a repository found with issues switched off is left before a start checks again.
 * No event says they were switched on (`repository.edited` is not sent for it:
 * https://github.com/probot/probot/issues/1206) but the first issue opened after
 * (`issuesSeen`); the issues opened after are indexed as they come, and this brings in the
 * older ones should that event be missed.
 */
const ISSUES_DISABLED_RECHECK_MS = 24 * 3_600_000;

/**
 * A backfill (or a catch-up a command asked for) that gave up on a failure a later try may not
 * meet (an outage longer than its pages' own tries, some two minutes) runs again while the
 * process runs: after 5 minutes, doubling up to 6 hours, this many times (some 17 hours); then
 * it is left to the next start. Until then it was left to the next start at once: a server up
 * for weeks kept an outage's backfills unfinished as long.
 */
const RESUME_FIRST_MS = 5 * 60_000;
const RESUME_MAX_MS = 6 * 3_600_000;
const RESUMES = 8;

/**
 * Runs backfills one at a time in the background, so a new installation with many repositories
 * neither delays webhooks nor spends the rate limit all at once. A backfill that a restart
 * interrupted, or that gave up, is resumed by `resume()`, which also checks again a repository
 * found with issues switched off a day before; one whose repository leaves is cancelled by
 * `cancel()`. A backfill or a catch-up that finds its installation's rate limit low, or that
 * GitHub refuses for it, stops, and runs again after the reset from where it stopped (a refusal
 * uses up none of its page's tries); the installation's other backfills and catch-ups wait with
 * it, out of the queue, and the other installations' go on.
 */
export class BackfillRunner {
  readonly #options: BackfillRunnerOptions;
  /** Queued or running, by namespace. */
  readonly #jobs = new Map<string, Job>();
  /** Backfills queued and not yet run, by namespace: what `options.queue` keeps. */
  readonly #queued = new Map<string, BackfillTarget>();
  /** Repositories whose progress `opened` read this process (or whose backfill it queued). */
  readonly #seen = new Set<string>();
  /** The queue's file written with every change so far; false when the last write failed. */
  #queueSaved: Promise<boolean> = Promise.resolve(true);
  /** What the queue's file held at start, once read (see #restore). */
  #restored: Promise<BackfillTarget[]> | undefined;
  /** Keys queued, ended or cancelled before that read: the file's older word on them is stale. */
  readonly #touched = new Set<string>();
  #read = false;
  readonly #stop = new AbortController();
  /** Who this runner is, to the claims on backfills that instances sharing a database make. */
  readonly #holder = randomUUID();
  #chain: Promise<void> = Promise.resolve();
  #claiming = 0;
  /**
   * For each catch-up under way, the namespaces cancelled since it read the memories (their
   * repository deleted or removed meanwhile): its listing of the installations may be older.
   */
  readonly #cancelledDuring = new Set<Set<string>>();
  /**
   * Jobs to run again later, by key: failed ones (see RESUMES), with how many times they failed
   * in a row, and backfills and catch-ups waiting for their installation's rate limit to reset.
   */
  readonly #resuming = new Map<
    string,
    {
      target: BackfillTarget;
      failures: number;
      controller: AbortController;
      /** A catch-up's, waiting for the reset: told it did not finish if it never runs again. */
      catchUp?: DeferredCatchUp | undefined;
    }
  >();
  /**
   * Backfills skipped because their installation was suspended (its token refused, 403), by key:
   * its unsuspension runs them. They saved no progress for a start to resume from.
   */
  readonly #suspended = new Map<string, BackfillTarget>();
  /**
   * By installation, when its rate limit resets, once a backfill or a catch-up found it low or
   * was refused for it: until then its backfills and catch-ups wait out of the queue (see
   * #runAfterReset). GitHub's limits are an installation's own, so the others' backfills and
   * catch-ups go on meanwhile; they had waited behind its wait, up to an hour.
   */
  readonly #limitedUntil = new Map<number, number>();

  constructor(options: BackfillRunnerOptions) {
    this.#options = options;
  }

  enqueue(target: BackfillTarget): void {
    this.#enqueue(target, false);
  }

  /**
   * `talos backfill` beside this server: the backfill (or with `since`, the catch-up) of one
   * repository, reading at most `max`, queued behind the others. Resolves once the queue's file
   * was written with it (the command is told it was accepted after that, so a crash then loses
   * nothing; a write that fails, a full disk, is logged and the backfill still runs), with
   * false when one is queued or running already: it resumes where this would. A catch-up from a
   * time earlier than the one queued or running is not such: that one reads from it instead.
   */
  async request(
    target: BackfillTarget,
    { since, max }: { since?: string; max: number },
  ): Promise<boolean> {
    const asked: BackfillTarget = { ...target, max, since };
    if (since !== undefined) {
      // The queue's file may hold one from an earlier time (one that failed, or one from before
      // a restart that resume() has not queued yet): this reads from there too. Read first, or
      // the file's entry would be dropped as stale once this one is queued.
      await this.#restore();
      const kept = this.#queued.get(jobKeyOf(asked))?.since;
      if (kept !== undefined && Date.parse(kept) < Date.parse(since)) asked.since = kept;
    }
    if (this.#stop.signal.aborted) return false;
    const held = this.#jobs.get(jobKeyOf(asked));
    if (held) {
      if (asked.since === undefined || !this.#widen(jobKeyOf(asked), held, asked.since))
        return false;
      await this.#queueSaved;
      return true;
    }
    // A catch-up waiting for its installation's rate limit to reset goes on from its page then:
    // asked again from no earlier a time, it is one queued already (queued anew, it had started
    // over from the first page).
    const waiting = this.#resuming.get(jobKeyOf(asked))?.catchUp;
    if (
      waiting &&
      asked.since !== undefined &&
      !(Date.parse(asked.since) < Date.parse(waiting.since))
    )
      return false;
    // Someone asking may have switched issues on since a backfill found them off. The bound
    // (and a catch-up's time) go with the target into the queue's file: a restart resumes it
    // as it was asked.
    this.#enqueueAsked(asked, true);
    await this.#queueSaved;
    return true;
  }

  /**
   * Catches `installation` up with what GitHub changed since `since`, when it sent nothing (the
   * installation was suspended), as the start's catch-up does for all: its repositories are
   * listed; the memory of one it no longer holds is deleted, one it gained is backfilled (so is
   * one whose backfill the suspension left unfinished), and each other remembered one is queued
   * for a catch-up from `since`, kept in the queue's file till it ends. Resolves with how many
   * were queued, once the file holds them (none while backfills are off, `TALOS_BACKFILL_MAX=0`).
   * Throws when any of it is not done or not kept (GitHub unreachable, a memory that cannot be
   * deleted, the runner closing, the queue's file not written), for the caller to retry.
   */
  async catchUpInstallation(installation: number, since: string): Promise<number> {
    const { max, memory, auth } = this.#options;
    const stopping = () => {
      if (this.#stop.signal.aborted)
        throw new Error("the backfill runner is closing: the catch-up is left for a retry");
    };
    const known = (await memory.list()).filter((n) => n.installation === installation);
    stopping();
    const repositories = await listRepositoriesOf(await auth(installation), installation);
    const listing = { installations: [installation], read: [installation], repositories };
    const { kept, failed } = await this.#deleteUnheld(known, listing, () => undefined);
    if (failed) throw new Error("a memory of a repository the installation left was not deleted");
    await this.#backfillUnknown(repositories, new Set(known.map(keyOf)));
    if (max === 0) return 0;
    await this.#backfillUnfinished(installation, kept);
    let queued = 0;
    for (const namespace of kept) {
      stopping();
      if (await this.request(namespace, { since, max })) queued++;
    }
    stopping();
    // They run all the same; the mark is what a restart would have to go on.
    if (!(await this.#queueSaved))
      throw new Error("the catch-up could not be kept in backfill-queue.json");
    return queued;
  }

  /**
   * Queues again the backfills of `installation` its suspension left unfinished: one cut short
   * (GitHub refused its next page, and it failed) and one whose turn came meanwhile (skipped,
   * with nothing saved). The catch-up from the mark reads only what changed since, not the older
   * issues they had not reached: they waited for a restart. A finished one is only caught up.
   */
  async #backfillUnfinished(installation: number, kept: StoredNamespace[]): Promise<void> {
    for (const [key, target] of this.#suspended) {
      if (target.installation !== installation) continue;
      this.#suspended.delete(key);
      this.#enqueue(target, false);
    }
    for (const namespace of kept) {
      const state = await this.#options.memory.readBackfillState(namespace).catch((error) => {
        // Its progress damaged: nothing to resume from here; the catch-up goes on.
        this.#logOf(namespace).error(
          { err: error },
          "backfill not resumed: its progress cannot be read",
        );
        return undefined;
      });
      if (state?.status === "running" || state?.status === "failed") this.enqueue(namespace);
    }
  }

  /**
   * A command's catch-up queued or running from a time later than `since` reads from `since`
   * instead: one not started yet from there, one running again from there (behind the others
   * queued) once it ends. The queue's file holds the earlier time at once, for a restart. False
   * when it reads from as far back already. (An unsuspension's catch-up was a no-op behind a
   * `talos backfill --since` of a later time, and the window between was never read.)
   */
  #widen(key: string, job: Job, since: string): boolean {
    const from = job.again ?? job.since;
    if (from === undefined || !(Date.parse(since) < Date.parse(from))) return false;
    job.target = { ...job.target, since };
    // Queued, not run yet: from the earlier time, and from its start. Where a rate limit's wait
    // stopped it holds its own time, and going on from there had left the window between unread
    // (found by a review).
    if (job.running === undefined) {
      job.since = since;
      job.resume = undefined;
    } else job.again = since;
    this.#keepQueued(key, job.target);
    return true;
  }

  /** A backfill, or a catch-up with the target's `since`, kept in the queue's file till it ends. */
  #enqueueAsked(target: BackfillTarget, recheck: boolean): void {
    const { since } = target;
    this.#enqueue(target, recheck, since ? { since, resolve: () => undefined } : undefined);
  }

  /**
   * An event opened `target`'s memory. A repository never backfilled (memory was off when the
   * app was installed, and switched on since; or its data directory was lost) is backfilled
   * now, so its older issues are remembered too. No event says memory was switched on: the
   * first one stored after is the sign. Reads the progress once a repository and process.
   */
  async opened(target: BackfillTarget): Promise<void> {
    const key = keyOf(target);
    const { max, backfillOnEvent } = this.#options;
    if (!backfillOnEvent || max === 0 || this.#seen.has(key) || this.#jobs.has(key)) return;
    this.#seen.add(key);
    try {
      if (!(await this.#options.memory.readBackfillState(target))) {
        this.#logOf(target).info("backfilling a repository whose memory was never backfilled");
        this.enqueue(target);
      }
    } catch (error) {
      // Its next event asks again; the event itself is remembered all the same.
      this.#seen.delete(key);
      this.#logOf(target).warn({ err: error }, "cannot tell whether the memory was backfilled");
    }
  }

  /**
   * An issue was opened in `target`'s repository. If its backfill found issues switched off,
   * they are on again: its backfill runs now rather than at the first start a day later, and
   * reads the issues listing. Otherwise nothing is done but a read of its progress.
   */
  async issuesSeen(target: BackfillTarget): Promise<void> {
    const queued = this.#jobs.get(keyOf(target));
    if (queued) {
      // Seen when it starts. One running already ends as it would (reading pull requests, say),
      // and the check a day later follows.
      queued.recheck = true;
      return;
    }
    try {
      const state = await this.#options.memory.readBackfillState(target);
      if (state?.issuesDisabledAt) this.#enqueue(target, true);
    } catch (error) {
      // The issue itself is remembered all the same; the check a day later still comes.
      this.#options.log.warn(
        { err: error, installation: target.installation, repository: target.name },
        "cannot tell whether the backfill found issues switched off",
      );
    }
  }

  /**
   * Catches up every remembered repository with what GitHub changed since `since` (an outage
   * longer than redeliveries reach: see outage-catch-up.ts), one at a time after the backfills
   * queued before. The installations are listed first: the memory of a repository its
   * installation no longer holds is deleted (removed while Talos missed the event), and the
   * repositories they hold that it has no memory of are backfilled (added, or installed,
   * meanwhile). Resolves true once each repository was caught up (or had nothing to catch up:
   * gone, memory off, deleted) and the installations were listed, false when one failed or the
   * runner closed first. With `progress`, those it names done are left, and each one caught up
   * is told.
   */
  async catchUp(since: string, progress?: CatchUpProgress): Promise<boolean> {
    const cancelled = new Set<string>();
    this.#cancelledDuring.add(cancelled);
    try {
      return await this.#catchUpAll(since, cancelled, progress);
    } finally {
      this.#cancelledDuring.delete(cancelled);
    }
  }

  async #catchUpAll(
    since: string,
    cancelled: ReadonlySet<string>,
    progress: CatchUpProgress | undefined,
  ): Promise<boolean> {
    // Read before GitHub is asked: a memory an event makes meanwhile (of a repository added
    // after its installation was listed) is not among them, so it is not taken for one removed.
    const known = await this.#options.memory.list();
    const listing = await this.#listInstalled();
    const finished = (namespace: MemoryNamespace) => progress?.finished(keyOf(namespace));
    const { kept, failed } = listing
      ? await this.#deleteUnheld(known, listing, finished)
      : { kept: known, failed: false };
    const unsuspended = listing
      ? await this.#unsuspended(listing, since)
      : new Map<number, string>();
    const left = kept.filter((namespace) => !progress?.done.has(keyOf(namespace)));
    const results = left.map((namespace) => {
      const mark = unsuspended.get(namespace.installation);
      const from = mark !== undefined && Date.parse(mark) < Date.parse(since) ? mark : since;
      return new Promise<boolean>((resolve) =>
        this.#enqueue(namespace, false, { since: from, resolve }),
      ).then((done) => {
        if (done) finished(namespace);
        return done;
      });
    });
    // One deleted (or removed) since `known` was read is no longer held, whatever the listing,
    // which may be older, says: readmitted, its memory would open again for a job journaled
    // before the deletion.
    if (listing)
      await this.#backfillUnknown(
        listing.repositories.filter((target) => !cancelled.has(keyOf(target))),
        new Set(known.map(keyOf)),
      );
    const listed = listing !== undefined || !this.#options.installed;
    const outcomes = await Promise.all(results);
    // A mark goes once each of its installation's memories was caught up from it.
    for (const installation of unsuspended.keys())
      if (left.every((n, i) => n.installation !== installation || outcomes[i]))
        await this.#options.suspensions?.clear(installation);
    return outcomes.every(Boolean) && listed && !failed;
  }

  /**
   * Marks the installations `listing` shows suspended (their unsuspension is then caught up),
   * and returns the marks of those it read, unsuspended while Talos missed the event.
   */
  async #unsuspended(listing: InstalledRepositories, since: string): Promise<Map<number, string>> {
    const marks = this.#options.suspensions;
    const found = new Map<number, string>();
    if (!marks) return found;
    try {
      for (const { installation, at } of listing.suspended ?? []) {
        const time = Date.parse(at);
        if (!Number.isFinite(time)) continue;
        // Marked from `since` when it was suspended later: GitHub sent nothing of what changed
        // between the two either (Talos was down), and the unsuspension reads from the mark.
        const outage = Date.parse(since);
        const from = Number.isFinite(outage) ? Math.min(time, outage) : time;
        await marks.record(installation, new Date(from).toISOString());
      }
      const marked = await marks.all();
      for (const installation of listing.read) {
        const mark = marked.get(installation);
        if (mark !== undefined) found.set(installation, mark);
      }
    } catch (error) {
      // The catch-up from Talos's own last run goes on: what it reads stays right.
      this.#options.log.warn({ err: error }, "suspension marks not read: catching up without them");
    }
    return found;
  }

  /** What the installations hold now; undefined when it cannot be listed (or is not asked). */
  async #listInstalled(): Promise<InstalledRepositories | undefined> {
    if (!this.#options.installed) return undefined;
    try {
      return await this.#options.installed();
    } catch (error) {
      // GitHub unreachable, say: as the redeliveries' listing, a warning, and the next start tries.
      // Nothing is deleted on a partial listing's word.
      this.#options.log.warn(
        { err: error },
        "cannot list the repositories the app is installed on",
      );
      return undefined;
    }
  }

  /**
   * Deletes the memories of `known` whose repository its installation's complete listing lacks,
   * as their missed `installation_repositories.removed` (or `repository.deleted`) would have.
   * Those of an installation not listed are kept, and said once: its `installation.deleted` may
   * have been missed, but the memory may as well be another app's sharing this storage (its
   * installations are not this app's to list), and a mistake must not delete; nor are they
   * caught up. Returns the others, to catch up.
   */
  async #deleteUnheld(
    known: StoredNamespace[],
    listing: InstalledRepositories,
    finished: (namespace: MemoryNamespace) => void,
  ): Promise<{ kept: StoredNamespace[]; failed: boolean }> {
    const { memory, log } = this.#options;
    const installations = new Set(listing.installations);
    const read = new Set(listing.read);
    const held = new Set(listing.repositories.map(keyOf));
    const kept: StoredNamespace[] = [];
    const unlisted = new Set<number>();
    let failed = false;
    for (const namespace of known) {
      const { installation } = namespace;
      if (!installations.has(installation)) {
        if (!unlisted.has(installation))
          log.warn(
            { installation },
            "memory of an installation the app does not list (uninstalled while Talos was down, or another app's): kept; `talos memory delete --installation <id>` deletes it",
          );
        unlisted.add(installation);
        // Nothing this app can read of it to catch up.
        finished(namespace);
        continue;
      }
      if (!read.has(installation) || held.has(keyOf(namespace))) {
        kept.push(namespace);
        continue;
      }
      const where = {
        installation,
        repositoryId: namespace.repository,
        repository: namespace.name,
      };
      try {
        await this.cancel(namespace);
        await memory.delete(namespace);
        log.info(
          where,
          "memory deleted: the repository left its installation while Talos was down",
        );
        finished(namespace);
      } catch (error) {
        // Left for the next start's catch-up, which lists again.
        failed = true;
        log.error({ err: error, ...where }, "cannot delete the memory of a repository it left");
      }
    }
    return { kept, failed };
  }

  /**
   * Backfills the installed repositories whose keys `known` lacks. One removed from its
   * installation and added back while Talos missed the event is readmitted first: GitHub lists
   * it, by id, as the installation's now (its memory would otherwise stay refused, and its
   * backfill skipped, until its next event).
   */
  async #backfillUnknown(installed: BackfillTarget[], known: Set<string>): Promise<void> {
    const { memory, log } = this.#options;
    const unknown = installed.filter((target) => !known.has(keyOf(target)));
    if (unknown.length > 0)
      log.info(
        { repositories: unknown.length },
        "backfilling the repositories added while Talos missed their events",
      );
    // Each one's progress is its own from here: an unfinished one resumes at the next start.
    for (const target of unknown) {
      try {
        await memory.readmit(target);
      } catch (error) {
        // Readmitted at its next event instead (GitHub is asked then).
        log.warn(
          { err: error, installation: target.installation, repository: target.name },
          "cannot readmit a repository added back while Talos was down",
        );
        continue;
      }
      this.enqueue(target);
    }
  }

  #enqueue(
    target: BackfillTarget,
    recheck: boolean,
    catchUp?: { since: string; resolve: (finished: boolean) => void },
    resume?: CatchUpState,
  ): void {
    // A start's catch-up and a command's are two jobs: neither stands for the other's time.
    const key = catchUp && !target.since ? `catch-up:${keyOf(target)}` : jobKeyOf(target);
    if (this.#jobs.has(key) || this.#stop.signal.aborted) return catchUp?.resolve(false);
    // The start's own catch-ups keep their progress elsewhere (outage-catch-up.ts); a
    // command's is kept here, as the backfills are.
    const kept = !catchUp || target.since !== undefined;
    const job: Job = {
      target,
      since: catchUp?.since,
      recheck,
      max: target.max ?? this.#options.max,
      controller: new AbortController(),
      running: undefined,
      resume,
    };
    this.#jobs.set(key, job);
    if (kept) this.#keepQueued(key, target);
    const signal = AbortSignal.any([this.#stop.signal, job.controller.signal]);
    this.#chain = this.#chain.then(async () => {
      let finished = false;
      let failed = false;
      let suspended = false;
      let limited = false;
      let deferred = false;
      let failure: unknown;
      // One that never starts (closed before its turn) leaves the queue too: idle() waits
      // until the queue is empty. It stays in the queue's file, for the next start.
      if (!signal.aborted) {
        const work = job.since
          ? this.#catchUp(target, signal, job).then((ended) => {
              limited = ended === "rate-limited";
              return ended === true;
            })
          : this.#runUnlessLimited(target, signal, job.recheck, job.max).then((ended) => {
              suspended = ended === "suspended";
              limited = ended === "rate-limited";
              return true;
            });
        job.running = work.then(
          (done) => void (finished = done),
          (error: unknown) => {
            failed = true;
            failure = error;
            this.#options.log.error(
              { err: error, installation: target.installation, repository: target.name },
              job.since ? "catch-up failed" : "backfill failed",
            );
          },
        );
        await job.running;
        // A backfill that ended is resumed by its own progress, if the next start is to. One that
        // failed stays queued for the next start, since it may have failed before saving any
        // (GitHub could not say what the repository is), as a catch-up, which has no progress of
        // its own, does. One stopped by a shutdown stays queued too, in case it had saved no
        // progress yet. One cancelled may have been queued again meanwhile: that entry stays.
        // One skipped for a suspension stays queued for its unsuspension (or the next start), and
        // one stopped for its installation's rate limit till it runs after the reset.
        const resumed = this.#stop.signal.aborted || failed || suspended || limited;
        const replaced = this.#jobs.has(key) && this.#jobs.get(key) !== job;
        // Asked for from an earlier time meanwhile: the file holds that, and it runs next.
        const again = job.again !== undefined && !signal.aborted && !failed && !replaced;
        if (kept && !resumed && !replaced && !again) this.#keepQueued(key, undefined);
        if (again) {
          this.#jobs.delete(key);
          this.#enqueueAsked(job.target, false);
        }
        if (suspended) this.#suspended.set(key, job.target);
        else this.#suspended.delete(key);
        if (limited && !signal.aborted && !replaced && !again) {
          deferred = true;
          this.#runAfterReset(
            key,
            job.target,
            job.recheck,
            catchUp && { ...catchUp, since: job.since ?? catchUp.since, resume: job.resume },
          );
        } else if (!failed) {
          // A timer of its key still to fire would run it again for nothing.
          this.#resuming.get(key)?.controller.abort();
          this.#resuming.delete(key);
        } else if (kept && !replaced && !this.#stop.signal.aborted)
          this.#resumeLater(key, job.target, failure);
      }
      if (this.#jobs.get(key) === job) this.#jobs.delete(key);
      // One waiting for the reset is told when it has run again (or never will).
      if (!deferred) catchUp?.resolve(finished);
    });
  }

  /** Queues `target` again in a while, after a failure a later try may not meet (RESUMES). */
  #resumeLater(key: string, target: BackfillTarget, failure: unknown): void {
    const { clock, log } = this.#options;
    const failures = (this.#resuming.get(key)?.failures ?? 0) + 1;
    const where = { installation: target.installation, repository: target.name };
    const retryable = isOutage(failure, clock.now());
    if (!retryable || failures > RESUMES) {
      this.#resuming.delete(key);
      if (retryable) log.warn(where, "backfill failed again: left for the next start");
      return;
    }
    const waitMs = Math.min(RESUME_MAX_MS, RESUME_FIRST_MS * 2 ** (failures - 1));
    log.warn({ ...where, failures, waitMs }, "backfill failed: it runs again in a while");
    this.#runLater(key, target, failures, waitMs);
  }

  /**
   * Queues a backfill or a catch-up stopped for its installation's rate limit again once the
   * limit resets: a backfill resumes from its progress, a catch-up from `catchUp.resume`, and a
   * start's catch-up is told it finished only once it has. Its failures in a row, if any, still
   * count.
   */
  #runAfterReset(
    key: string,
    target: BackfillTarget,
    recheck: boolean,
    catchUp?: DeferredCatchUp,
  ): void {
    const { clock, log } = this.#options;
    const until = this.#limitedUntil.get(target.installation) ?? clock.now();
    const waitMs = Math.max(0, until - clock.now());
    log.info(
      {
        installation: target.installation,
        repository: target.name,
        waitSeconds: Math.round(waitMs / 1000),
      },
      `${catchUp ? "catch-up" : "backfill"} waits for its installation's rate limit to reset`,
    );
    this.#runLater(key, target, this.#resuming.get(key)?.failures ?? 0, waitMs, recheck, catchUp);
  }

  /**
   * Queues `target` again after `waitMs`, unless it is cancelled or the runner closes first
   * (then a start's catch-up, `catchUp`, is told it did not finish).
   */
  #runLater(
    key: string,
    target: BackfillTarget,
    failures: number,
    waitMs: number,
    recheck = false,
    catchUp?: DeferredCatchUp,
  ): void {
    const controller = new AbortController();
    // One timer a key: a replaced one would queue a backfill cancelled since.
    this.#resuming.get(key)?.controller.abort();
    this.#resuming.set(key, { target, failures, controller, catchUp });
    const signal = AbortSignal.any([this.#stop.signal, controller.signal]);
    const untold = () => catchUp?.resolve(false);
    signal.addEventListener("abort", untold, { once: true });
    void this.#options.clock.sleep(waitMs, signal).then(() => {
      // Cancelled or stopping: told so already.
      if (signal.aborted) return;
      signal.removeEventListener("abort", untold);
      // A catch-up is queued as it was (one held meanwhile is told it did not finish).
      if (catchUp) return this.#enqueue(target, false, catchUp, catchUp.resume);
      // Queued meanwhile by other means (an event, a command).
      if (this.#jobs.has(key)) return;
      this.#enqueueAsked(target, recheck);
    });
  }

  /**
   * Stops the backfill of a repository (it was deleted or removed): a queued one never starts,
   * and a running one stops after the page in hand, which this waits for.
   */
  async cancel(namespace: MemoryNamespace): Promise<void> {
    const namespaceKey = keyOf(namespace);
    for (const cancelled of this.#cancelledDuring) cancelled.add(namespaceKey);
    for (const key of [
      namespaceKey,
      `catch-up:${namespaceKey}`,
      `asked-catch-up:${namespaceKey}`,
    ]) {
      this.#resuming.get(key)?.controller.abort();
      this.#resuming.delete(key);
      this.#suspended.delete(key);
      this.#keepQueued(key, undefined);
      const job = this.#jobs.get(key);
      if (!job) continue;
      this.#jobs.delete(key);
      job.controller.abort();
      await job.running;
    }
  }

  /** Stops the backfills of every repository of an installation. */
  async cancelInstallation(installation: number): Promise<void> {
    const targets = [
      ...[...this.#jobs.values(), ...this.#resuming.values()].map((held) => held.target),
      ...this.#suspended.values(),
    ].filter((target) => target.installation === installation);
    this.#limitedUntil.delete(installation);
    await Promise.all(targets.map((target) => this.cancel(target)));
  }

  /**
   * Queues the backfills a restart interrupted or that gave up, and those of repositories found
   * with issues switched off more than a day ago. Those of name-keyed memories
   * from before the upgrade are claimed first: GitHub says which repository has that name now
   * (or had it, renamed since), which adopts the old memory if it is that repository's.
   */
  async resume(): Promise<void> {
    const { memory, log, clock } = this.#options;
    // One progress that cannot be read (a damaged backfill.json) holds up no other backfill.
    const readOrSay = (read: Promise<BackfillState | undefined>, where: object) =>
      read.catch((error: unknown) => {
        log.error({ err: error, ...where }, "backfill not resumed: its progress cannot be read");
        return undefined;
      });
    // Queued before the stop and never started: first, in the order they were queued.
    for (const target of await this.#restore()) this.#enqueueAsked(target, false);
    for (const namespace of await memory.list()) {
      const where = { installation: namespace.installation, repositoryId: namespace.repository };
      const state = await readOrSay(memory.readBackfillState(namespace), where);
      if (isToRun(state, clock.now())) this.enqueue(namespace);
    }
    for (const legacy of await memory.listLegacy()) {
      const where = { installation: legacy.installation, legacy: legacy.name };
      const state = await readOrSay(readBackfillState(legacy.directory), where);
      // The directory's name is lower-case; the progress kept GitHub's spelling.
      const name = state?.repo?.toLowerCase() === legacy.name ? state.repo! : legacy.name;
      if (isToRun(state, clock.now())) this.#claim(legacy, name);
    }
  }

  /** Resolves when the queue is empty. */
  async idle(): Promise<void> {
    while (this.#jobs.size > 0 || this.#claiming > 0) await this.#chain;
  }

  /** Stops after the page in hand (progress is saved, so the next start resumes) and waits. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.idle();
    await this.#queueSaved;
  }

  #claim(legacy: LegacyMemory, name: string): void {
    this.#claiming++;
    const log = this.#options.log.child({ installation: legacy.installation, legacy: legacy.name });
    this.#chain = this.#chain
      .then(async () => {
        if (this.#stop.signal.aborted) return;
        const octokit = await this.#options.auth(legacy.installation);
        const repository = await getRepository(octokit, name);
        if (!repository) return log.info("legacy backfill not resumed: no such repository now");
        // Adopted here, if it is this repository's, by the name it had as well: GitHub answers
        // the old name of a repository renamed since with the new one, under which its run's
        // open found nothing and started again from an empty memory.
        await this.#options.memory.rename({
          installation: legacy.installation,
          repository: repository.id,
          name: repository.full_name,
          createdAt: repository.created_at ?? undefined,
          previousName: legacy.name,
        });
        this.enqueue({
          installation: legacy.installation,
          repository: repository.id,
          name: repository.full_name,
        });
      })
      .catch((error: unknown) =>
        log.error({ err: error }, "cannot claim a name-keyed memory's backfill"),
      )
      .finally(() => this.#claiming--);
  }

  /**
   * `#run`, unless its installation's rate limit was found low and has not reset yet: then it
   * is left for after the reset, without a request (reading which repository it is costs some).
   */
  async #runUnlessLimited(
    target: BackfillTarget,
    signal: AbortSignal,
    recheck: boolean,
    max: number,
  ): Promise<"suspended" | "rate-limited" | void> {
    if (this.#isLimited(target.installation)) return "rate-limited";
    return this.#run(target, signal, recheck, max);
  }

  /** Whether `installation`'s rate limit was found low, or refused a request, and has not reset. */
  #isLimited(installation: number): boolean {
    const until = this.#limitedUntil.get(installation);
    if (until !== undefined && until > this.#options.clock.now()) return true;
    this.#limitedUntil.delete(installation);
    return false;
  }

  /** `installation`'s backfills and catch-ups wait until `resumeAt` (see #limitedUntil). */
  #limitUntil(installation: number, resumeAt: number): void {
    const until = this.#limitedUntil.get(installation) ?? 0;
    this.#limitedUntil.set(installation, Math.max(until, resumeAt));
  }

  async #run(
    target: BackfillTarget,
    signal: AbortSignal,
    recheck: boolean,
    max: number,
  ): Promise<"suspended" | "rate-limited" | void> {
    const { memory: registry, clock } = this.#options;
    const log = this.#logOf(target);
    if (max === 0) return log.info("backfill skipped: TALOS_BACKFILL_MAX is 0");
    const previous = await registry.readBackfillState(target);
    const checkNow = recheck && previous?.issuesDisabledAt !== undefined;
    if (previous?.status === "done" && !checkNow && !isToRun(previous, clock.now())) {
      return previous.issuesDisabledAt
        ? log.info({ since: previous.issuesDisabledAt }, "backfill skipped: issues are disabled")
        : log.info({ indexed: previous.indexed }, "backfill already done");
    }
    try {
      const found = await this.#open(target, log, "backfill", signal);
      if (found === "suspended" || found === "rate-limited") return found;
      if (!found) return;
      const { octokit, repo, memory } = found;
      // With several instances on one database, each resumes the unfinished backfills it
      // finds at start: one runs each, the others leave it.
      if (!(await registry.claimBackfill(target, this.#holder, BACKFILL_LEASE_MS)))
        return log.info("backfill left to the instance running it");
      log.info({ max }, "backfill started");
      let limited = false;
      try {
        const state = await backfillRepository({
          octokit,
          repo,
          memory,
          progress: memory,
          claim: backfillClaim(registry, target, this.#holder),
          max,
          clock,
          log,
          signal,
          retry: this.#options.retry,
          // Waited out of the queue, which the other installations' backfills share.
          onRateLimited: (resumeAt) => {
            limited = true;
            this.#limitUntil(target.installation, resumeAt);
          },
        });
        log.info(
          {
            indexed: state.indexed,
            skipped: state.skipped,
            status: state.status,
            issuesDisabled: state.issuesDisabledAt !== undefined,
          },
          "backfill stopped",
        );
        if (limited) return "rate-limited";
      } finally {
        await releaseBackfillClaim(registry, target, this.#holder, log);
      }
    } catch (error) {
      if (error instanceof MemoryDeletedError)
        return log.info("backfill stopped: its memory was deleted");
      // This instance's lease lapsed (it stalled, or the database was unreachable) and another
      // holder resumed the backfill: it is that one's now, and nothing is wrong with it.
      if (error instanceof BackfillTakenOverError)
        return log.warn("backfill stopped: another holder took it over");
      throw error;
    }
  }

  /**
   * Reads the queue's file once, and takes what it held (before what this process queued since)
   * unless this process has queued, ended or cancelled it meanwhile. A job journaled before the
   * start (a repository added) may queue a backfill before `resume()`: saving the queue then
   * must not write over what the file held. Resolves with the entries taken.
   */
  #restore(): Promise<BackfillTarget[]> {
    this.#restored ??= (async () => {
      const targets = (await this.#options.queue?.read()) ?? [];
      const taken = targets.filter((target) => !this.#touched.has(jobKeyOf(target)));
      const queued = [...this.#queued];
      this.#queued.clear();
      for (const target of taken) this.#queued.set(jobKeyOf(target), target);
      for (const [key, target] of queued) this.#queued.set(key, target);
      this.#read = true;
      this.#touched.clear();
      return taken;
    })();
    return this.#restored;
  }

  /** Adds a queued backfill to the queue's file (`target`), or takes it out (undefined). */
  #keepQueued(key: string, target: BackfillTarget | undefined): void {
    const { queue } = this.#options;
    if (!queue) return;
    if (!this.#read) this.#touched.add(key);
    const kept = this.#queued.get(key);
    // A command's catch-up asked again after one that failed replaces it, with its own time.
    const same = target ? JSON.stringify(kept) === JSON.stringify(target) : kept === undefined;
    if (same) return;
    if (target) this.#queued.set(key, target);
    else this.#queued.delete(key);
    // Written once the file's earlier entries are in, whole as the queue is when it is written.
    this.#queueSaved = this.#queueSaved
      .then(() => this.#restore())
      .then(() => queue.save([...this.#queued.values()]));
  }

  #logOf(target: BackfillTarget): Logger {
    return this.#options.log.child({
      installation: target.installation,
      repository: target.name,
      repositoryId: target.repository,
    });
  }

  /**
   * The repository's memory and a client of its installation, when the repository is still
   * `target` (GitHub says so now: its name may have changed since the event, and its creation
   * time tells whether a memory kept by name before the upgrade is its) and has memory on.
   * GitHub failing to say (a 5xx) is tried again as a failing page is: nothing is saved yet that
   * a later start would resume from. GitHub refusing to say for the installation's rate limit is
   * "rate-limited": the installation's work waits for it out of the queue (#limitedUntil).
   */
  async #open(
    target: BackfillTarget,
    log: Logger,
    work: "backfill" | "catch-up",
    signal: AbortSignal,
  ) {
    const { clock } = this.#options;
    const retry = this.#options.retry ?? DEFAULT_BACKFILL_RETRY;
    let found: Awaited<ReturnType<typeof findEnabled>>;
    for (let failures = 1; ; failures++) {
      try {
        found = await findEnabled(this.#options.auth, target, log, work);
        break;
      } catch (error) {
        const limitedMs = rateLimitWaitMs(error, clock.now());
        // GitHub's answers only (Octokit gives a lost connection a status too): an error of
        // this process's own would only come again.
        const answered = statusOf(error) !== undefined;
        if (answered && limitedMs !== undefined) {
          log.warn(
            { err: error, waitSeconds: Math.round(limitedMs / 1000) },
            `${work}: GitHub refused to say what the repository is for a rate limit`,
          );
          this.#limitUntil(target.installation, clock.now() + limitedMs);
          return "rate-limited" as const;
        }
        const retryable = answered && isRetryable(error);
        if (!retryable || failures >= retry.attempts) throw error;
        const waitMs = Math.min(retry.maxMs, retry.baseMs * 2 ** (failures - 1));
        log.warn(
          { err: error, attempt: failures, waitMs },
          `${work}: GitHub cannot say what the repository is now; trying again`,
        );
        if (!(await pauseFor(clock, waitMs, signal))) return undefined;
      }
    }
    if (!found || signal.aborted) return undefined;
    if (found === "suspended") return found;
    const { octokit, repo, repository } = found;
    const memory = await this.#options.memory.open({
      installation: target.installation,
      repository: repository.id,
      name: repository.full_name,
      createdAt: repository.created_at ?? undefined,
    });
    return { octokit, repo, memory };
  }

  /**
   * True when the repository is caught up, or has nothing to catch up (gone, memory off);
   * "rate-limited" when it stopped for its installation's rate limit (or did not start, the
   * limit not reset yet), to go on from `job.resume` after the reset.
   */
  async #catchUp(
    target: BackfillTarget,
    signal: AbortSignal,
    job: Job,
  ): Promise<boolean | "rate-limited"> {
    const { clock } = this.#options;
    const { since = "", max } = job;
    const log = this.#logOf(target);
    // Reading none of GitHub's history: as the backfills, switched off.
    if (max === 0) return true;
    // Left for after the reset, without a request (reading which repository it is costs some).
    if (this.#isLimited(target.installation)) return "rate-limited";
    try {
      const found = await this.#open(target, log, "catch-up", signal);
      if (found === "rate-limited") return found;
      // Suspended (after the start's listing, or at a command's catch-up): its unsuspension
      // catches up from its mark, which must then be no later than this catch-up's `since`.
      if (found === "suspended")
        await this.#options.suspensions?.record(target.installation, since);
      // Gone, suspended, or memory off: nothing to catch up. Stopped: not caught up.
      if (!found || found === "suspended") return !signal.aborted;
      const { octokit, repo, memory } = found;
      const result = await catchUpRepository({
        octokit,
        repo,
        memory,
        since,
        max,
        clock,
        log,
        signal,
        retry: this.#options.retry,
        resume: job.resume,
        // Waited out of the queue, which the other installations' work shares.
        onRateLimited: (resumeAt, from) => {
          job.resume = from;
          this.#limitUntil(target.installation, resumeAt);
        },
      });
      if (result.status === "rate-limited") return result.status;
      log.info(
        {
          since,
          status: result.status,
          ...(result.listing === "pulls" ? { issuesDisabled: true } : {}),
          read: result.read,
          stored: result.stored,
          skipped: result.skipped.length,
          ...(result.capped ? { capped: max } : {}),
        },
        "memory caught up with GitHub",
      );
      return result.status !== "stopped";
    } catch (error) {
      if (error instanceof MemoryDeletedError) return true;
      throw error;
    }
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * Whether a job failed for an outage, which a later try may not meet: a server's answer that
 * says so (a 5xx, 408, a rate limit; GitHub's or the embedder's), or a connection lost or timed
 * out, found down the chain of causes (a page's failure is wrapped in the job's). A fault of the
 * process's own (a damaged file, a refusal) would only come again.
 */
function isOutage(error: unknown, now: number): boolean {
  for (const cause of causesOf(error)) {
    if (statusOf(cause) !== undefined)
      return isRetryable(cause) || rateLimitWaitMs(cause, now) !== undefined;
    const { code } = cause as NodeJS.ErrnoException;
    if (/Connection|Timeout/.test(cause.name) || NETWORK_CODES.has(code ?? "")) return true;
  }
  return false;
}

const keyOf = (namespace: MemoryNamespace) => `${namespace.installation}/${namespace.repository}`;
/** A backfill's key is its namespace's; a catch-up a command asked for has its own. */
const jobKeyOf = (target: BackfillTarget) =>
  target.since ? `asked-catch-up:${keyOf(target)}` : keyOf(target);

/**
 * Unfinished (the pull requests of a repository with issues off included), or found with issues
 * switched off long enough ago to check again: a repository that had them off is not asked at
 * every start.
 */
function isToRun(state: BackfillState | undefined, now: number): boolean {
  if (state?.status === "running" || state?.status === "failed") return true;
  return (
    state?.issuesDisabledAt !== undefined &&
    now - Date.parse(state.issuesDisabledAt) >= ISSUES_DISABLED_RECHECK_MS
  );
}

/**
 * A client of `target`'s installation and the repository as GitHub has it now, when its
 * installation can read it and it has memory on; "suspended" when its token is refused with a
 * 403, undefined (said in the log) otherwise.
 */
async function findEnabled(
  auth: BackfillRunnerOptions["auth"],
  target: BackfillTarget,
  log: Logger,
  work: "backfill" | "catch-up",
) {
  let octokit: Octokit;
  try {
    octokit = await auth(target.installation);
  } catch (error) {
    // Its token refused: the installation was deleted (404) or suspended (403) while Talos
    // missed the event. Nothing to read until it is back, and its event says so.
    const status = statusOf(error);
    if (status !== 404 && status !== 403) throw error;
    log.info({ status }, `${work} skipped: the installation is gone or suspended`);
    // A suspended one comes back: its unsuspension runs what was skipped.
    return status === 403 ? ("suspended" as const) : undefined;
  }
  const repository = await findRepository(octokit, target);
  if (!repository) return void log.info(`${work} skipped: the repository is gone`);
  const repo = { owner: repository.owner.login, repo: repository.name };
  const { config } = await loadRepoConfigOf(octokit, repo, log);
  if (!config.memory.enabled)
    return void log.info(`${work} skipped: memory is off in this repository`);
  return { octokit, repo, repository };
}

/**
 * `target` as GitHub has it now. Asked by its last known name first, one request (GitHub
 * redirects a renamed repository's old name). When that name is gone or another repository's
 * now (renamed while Talos missed the event, then the old name taken), it is looked for by id
 * among those its installation holds: asking by name alone skipped it at every start.
 */
async function findRepository(octokit: Octokit, target: BackfillTarget) {
  const named = await getRepository(octokit, target.name);
  if (named?.id === target.repository) return named;
  const [found] = await octokit.paginate(
    octokit.rest.apps.listReposAccessibleToInstallation,
    { per_page: 100 },
    (response, done) => {
      const hit = response.data.find((repository) => repository.id === target.repository);
      if (hit) done();
      return hit ? [hit] : [];
    },
  );
  return found;
}

async function getRepository(octokit: Octokit, fullName: string) {
  const [owner = "", repo = ""] = fullName.split("/");
  try {
    return (await octokit.rest.repos.get({ owner, repo })).data;
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
}

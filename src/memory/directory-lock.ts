import fs, { readFileSync } from "node:fs";
import { mkdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { lock, type LockOptions as ProperLockOptions } from "proper-lockfile";

/** Another live process has the memory directory open. */
export class MemoryLockedError extends Error {
  override name = "MemoryLockedError";
  /** The process holding it, when the lock names one. */
  readonly owner: LockOwner | undefined;
  constructor(message: string, options: ErrorOptions & { owner?: LockOwner } = {}) {
    super(message, options);
    this.owner = options.owner;
  }
}

export interface LockOptions {
  /**
   * Called when the lock is found taken by someone else while held (this process stalled past
   * `staleMs`, and another took the lock over): stop writing.
   */
  onCompromised?: (error: Error) => void;
  /** A lock not refreshed for this long is stale: its owner died or hung. proper-lockfile's default. */
  staleMs?: number;
}

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/** The lock is a directory inside the memory directory, so that deleting the memory deletes it. */
export const LOCK_NAME = ".lock";
const OWNER = "owner.json";
// A locker names itself within milliseconds of making the lock. A lock still nameless after
// this long lost its maker between the two (a SIGKILL while a memory opened): without this,
// every start after such a kill waited out the stale time, and the jobs that needed the memory
// with it. A live locker stalled this long between two system calls is caught by
// proper-lockfile's own check at its next refresh.
const NAMELESS_MS = 2_000;

// proper-lockfile removes its lock with `rmdir`; this lock holds its owner's name as well.
const lockFs = {
  ...fs,
  rmdir: (path: string, callback: (error: NodeJS.ErrnoException | null) => void) =>
    fs.rm(path, { recursive: true, force: true }, callback),
  rmdirSync: (path: string) => fs.rmSync(path, { recursive: true, force: true }),
};

/**
 * Keeps a memory directory to one process: two writers would interleave their logs and index
 * files. The lock is proper-lockfile's: an atomic `mkdir`, refreshed every few seconds, and
 * taken over once stale. Inside it, the owner's pid and host: a lock whose owner died on this
 * host (SIGKILL, a crash) is taken over at once rather than after the stale time, by ageing it
 * and letting proper-lockfile take it over by its own rules. Resolves to the release function.
 */
export async function lockDirectory(
  directory: string,
  options: LockOptions = {},
): Promise<() => Promise<void>> {
  const lockPath = join(directory, LOCK_NAME);
  const lockOptions: ProperLockOptions = {
    lockfilePath: lockPath,
    realpath: false,
    stale: options.staleMs ?? 10_000,
    fs: lockFs,
    // The default throws from a timer, which would end the process.
    onCompromised: (error) => options.onCompromised?.(error),
  };
  let release: () => Promise<void>;
  try {
    release = await lock(directory, lockOptions);
    await nameOwner(lockPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ELOCKED") throw error;
    release = await takeOverIfDead(directory, lockPath, lockOptions);
  }
  // After a deletion moved the directory away, the lock is gone with it: nothing to release.
  return () => release().catch(ignoreReleased);
}

/**
 * Takes over a lock whose owner died here, one process at a time: two started together after a
 * crash each read the dead owner, and the later one aged the lock the earlier had just taken and
 * named, and took it too (found by a review). Under the claim the owner is read again, and the
 * new one is named before the claim is let go.
 */
async function takeOverIfDead(
  directory: string,
  lockPath: string,
  lockOptions: ProperLockOptions,
): Promise<() => Promise<void>> {
  const claim = join(directory, TAKEOVER_NAME);
  await takeClaim(claim);
  try {
    const owner = await namedOwner(lockPath);
    const dead = owner === "nameless" || hasDiedHere(owner);
    if (!dead) throw await lockedError(directory, lockPath, owner);
    await utimes(lockPath, 0, 0).catch(ignoreMissing);
    let release: () => Promise<void>;
    try {
      release = await lock(directory, lockOptions);
    } catch (retryError) {
      if ((retryError as NodeJS.ErrnoException).code !== "ELOCKED") throw retryError;
      throw await lockedError(directory, lockPath, await readOwner(lockPath));
    }
    await nameOwner(lockPath);
    return release;
  } finally {
    await rm(claim, { recursive: true, force: true });
  }
}

/** Beside the lock, while a process takes it over (see takeOverIfDead). */
const TAKEOVER_NAME = ".lock-takeover";

/** Whether a directory's entry is its lock's (the lock, or a takeover's claim), not its content. */
export const isLockEntry = (name: string): boolean => name === LOCK_NAME || name === TAKEOVER_NAME;
// A takeover takes milliseconds, and up to NAMELESS_MS waiting for a new lock's name: a claim
// older than this lost its maker (killed mid-takeover), and is removed.
const CLAIM_STALE_MS = 10_000;

/** Makes the claim (an atomic mkdir), waiting while another process's fresh one stands. */
async function takeClaim(claim: string): Promise<void> {
  for (;;) {
    try {
      await mkdir(claim);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const made = await stat(claim).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    if (made !== undefined && Date.now() - made > CLAIM_STALE_MS)
      await rm(claim, { recursive: true, force: true });
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Writes this process into the lock it made. Until it is there, the lock counts as a live
 * owner's. Writing into the lock directory changes its mtime, which proper-lockfile keeps and
 * checks at each refresh (a different one means someone else took the lock): so the mtime is
 * put back as it was.
 */
async function nameOwner(lockPath: string): Promise<void> {
  const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const { mtime } = await stat(lockPath);
  await writeFile(join(lockPath, OWNER), JSON.stringify(owner));
  await utimes(lockPath, mtime, mtime);
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(join(lockPath, OWNER), "utf8")) as Partial<LockOwner>;
    return typeof owner.pid === "number" && typeof owner.host === "string"
      ? (owner as LockOwner)
      : undefined;
  } catch {
    // Not written yet (the owner is between its mkdir and this file), or torn: a live owner.
    return undefined;
  }
}

function hasDiedHere(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  // The same pid as ours, from before we started: a previous run (a container's pid 1, say).
  if (owner.pid === process.pid) return Date.parse(owner.since) < startedAt();
  return !isAlive(owner.pid);
}

/**
 * The lock's owner; a lock with none yet is given until it is `NAMELESS_MS` old to get one,
 * and is "nameless" after that. Waiting rather than refusing: the start after a SIGKILL in that
 * window is exactly when the memory is wanted again.
 */
async function namedOwner(lockPath: string): Promise<LockOwner | "nameless"> {
  for (;;) {
    const owner = await readOwner(lockPath);
    if (owner) return owner;
    const made = await stat(lockPath).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    // Gone meanwhile: released, so the lock is free to take.
    if (made === undefined) return "nameless";
    const left = made + NAMELESS_MS - Date.now();
    if (left < 0) return "nameless";
    await new Promise((resolve) => setTimeout(resolve, Math.min(left + 10, 250)));
  }
}

const startedAt = () => Date.now() - process.uptime() * 1000;

/**
 * Whether a process of this host runs with that pid (one of another user's counts). A zombie
 * does not: it has exited, and only waits for its parent to read its status. `kill(pid, 0)`
 * still finds one, so a restart made before a killed server was reaped (its parent killed with
 * it, say) was refused as if that server were running.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  return !isZombie(pid);
}

/** Linux's `/proc/<pid>/stat` gives the state after the name, which ends at the last `)`. */
function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    // No /proc (not Linux), or gone meanwhile: kill() is all there is to go by.
    return false;
  }
  const state = stat.charAt(stat.lastIndexOf(")") + 2);
  return state === "Z" || state === "X";
}

async function lockedError(
  directory: string,
  lockPath: string,
  owner: LockOwner | undefined,
): Promise<MemoryLockedError> {
  if (owner) {
    const where = owner.host === hostname() ? "" : ` on ${owner.host}`;
    return new MemoryLockedError(
      `${directory} is in use by process ${owner.pid}${where}; stop it first (or remove ${lockPath} if it is gone)`,
      { owner },
    );
  }
  const refreshed = await stat(lockPath).then(
    (s) => `, refreshed ${new Date(s.mtimeMs).toISOString()}`,
    () => "",
  );
  return new MemoryLockedError(
    `${directory} is in use by another process (lock ${lockPath}${refreshed}); stop it first, or wait: a lock nobody refreshes is taken over once stale`,
  );
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== "ENOENT") throw error;
}

function ignoreReleased(error: NodeJS.ErrnoException): void {
  // ERELEASED: the lock was compromised and already reported through onCompromised.
  if (error.code !== "ERELEASED" && error.code !== "ENOENT") throw error;
}

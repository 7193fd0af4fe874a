import { mkdir, readdir, readFile, rename, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";

import { writeFileAtomically } from "../write-file-atomically.js";
import { exists, isDirectory, readdirOrEmpty } from "./directory-entries.js";
import { isLockEntry } from "./directory-lock.js";
import { AtomicFileStorage, readSegment } from "./vectra-files.js";

/**
 * Memory from before repositories were keyed by id: `memory/<installation>/<owner>/<name>/`.
 *
 * A name does not say which repository it meant: a repository deleted and created again under
 * the same name is another repository, with another id. So at start these directories move
 * aside, to `memory/.legacy/<installation>/<owner>/<name>/`, and each waits there for the first
 * open of a repository of that name in that installation (an event, or a backfill, which asks
 * GitHub). It is adopted only if nothing in it is older than the repository: every write to a
 * repository's memory (and every issue, comment and note it holds) comes after the repository
 * was created, while an earlier repository of the same name wrote before. One that is not
 * adopted stays, with a `rejected.json` saying why, for an operator to look at or remove.
 */
export const LEGACY_DIRECTORY = ".legacy";
const REJECTED = "rejected.json";
const NUMERIC = /^\d+$/;

export interface LegacyMemory {
  installation: number;
  /** `owner/name`, lower-cased, as the directory names it. */
  name: string;
  directory: string;
}

export interface LegacyVerdict {
  adopt: boolean;
  reason: string;
  /** The oldest write found: a file's modification time, or a record's creation. */
  oldestWrite?: string | undefined;
}

/**
 * Whether a scanned entry is a directory to look into: one that cannot be read (EACCES, a
 * symlink loop) is skipped, so that one stray entry does not stop the start's migration or the
 * listing of every other memory. (Deleting or adopting a memory reads its own path, and fails.)
 */
const isScannedDirectory = (path: string): Promise<boolean> => isDirectory(path).catch(() => false);

export function legacyDirectoryOf(root: string, installation: number, name: string): string {
  const [owner = "", repo = ""] = name.toLowerCase().split("/");
  return join(root, LEGACY_DIRECTORY, String(installation), owner, repo);
}

/** Moves every name-keyed memory under `root` aside; returns how many moved. */
export async function moveLegacyMemoriesAside(root: string, log: Logger): Promise<number> {
  let moved = 0;
  for (const installation of await readdirOrEmpty(root)) {
    if (!NUMERIC.test(installation)) continue;
    for (const owner of await readdirOrEmpty(join(root, installation))) {
      const ownerDirectory = join(root, installation, owner);
      if (!(await isLegacyOwner(ownerDirectory, owner))) continue;
      for (const name of await readdirOrEmpty(ownerDirectory)) {
        const from = join(ownerDirectory, name);
        if (!(await isScannedDirectory(from))) continue;
        const holder = await liveOldLockHolder(from);
        if (holder !== undefined) {
          log.warn(
            { directory: from, pid: holder },
            "name-keyed memory left in place: an older Talos process holds it; stop it and restart",
          );
          continue;
        }
        const to = join(root, LEGACY_DIRECTORY, installation, owner, name);
        // One that cannot be read is taken too: the memory stays where it is.
        if (await exists(to).catch(() => true)) {
          log.warn({ directory: from, to }, "name-keyed memory left in place: its place is taken");
          continue;
        }
        await mkdir(dirname(to), { recursive: true });
        await rename(from, to);
        // The old lock file of a process that is gone.
        await unlink(join(to, "lock")).catch(() => undefined);
        moved++;
        log.info({ from, to }, "name-keyed memory moved aside until its repository claims it");
      }
      await rmdir(ownerDirectory).catch(() => undefined);
    }
  }
  return moved;
}

/** The name-keyed memories waiting for their repository (none that was already turned down). */
export async function listLegacyMemories(root: string): Promise<LegacyMemory[]> {
  const found: LegacyMemory[] = [];
  const base = join(root, LEGACY_DIRECTORY);
  for (const installation of await readdirOrEmpty(base)) {
    if (!NUMERIC.test(installation)) continue;
    for (const owner of await readdirOrEmpty(join(base, installation))) {
      for (const name of await readdirOrEmpty(join(base, installation, owner))) {
        const directory = join(base, installation, owner, name);
        if (
          !(await isScannedDirectory(directory)) ||
          (await exists(join(directory, REJECTED)).catch(() => true))
        )
          continue;
        found.push({ installation: Number(installation), name: `${owner}/${name}`, directory });
      }
    }
  }
  return found;
}

/** A legacy memory still waiting: present, and not turned down before. */
export async function isWaitingLegacyMemory(directory: string): Promise<boolean> {
  return (await isDirectory(directory)) && !(await exists(join(directory, REJECTED)));
}

/**
 * Whether the legacy memory in `directory` is the memory of a repository created at
 * `createdAt` (GitHub's `created_at`: ISO 8601, or Unix seconds as push payloads give it).
 */
export async function judgeLegacyMemory(
  directory: string,
  createdAt: string | number | undefined,
): Promise<LegacyVerdict> {
  const created = typeof createdAt === "number" ? createdAt * 1000 : Date.parse(createdAt ?? "");
  if (!Number.isFinite(created))
    return { adopt: false, reason: "the repository's creation time is not known" };
  const oldest = await findOldestWrite(directory);
  if (oldest === undefined) return { adopt: false, reason: "it holds nothing to keep" };
  const oldestWrite = new Date(oldest).toISOString();
  if (oldest < created) {
    return {
      adopt: false,
      oldestWrite,
      reason: `it was written at ${oldestWrite}, before the repository was created (${new Date(created).toISOString()}): it is an earlier repository's of the same name`,
    };
  }
  return { adopt: true, oldestWrite, reason: "nothing in it is older than the repository" };
}

/**
 * Whether the legacy memory in `directory` was written before a repository created at
 * `createdAt` existed: an earlier repository's of that name, which that repository's deletion
 * leaves (the earlier one, renamed, may claim it under its old name). Not when that cannot be
 * told.
 */
export async function isEarlierRepositorysMemory(
  directory: string,
  createdAt: string | number | undefined,
): Promise<boolean> {
  const verdict = await judgeLegacyMemory(directory, createdAt);
  // Only a memory found older than the repository is turned down with the time of its write.
  return !verdict.adopt && verdict.oldestWrite !== undefined;
}

/** Marks a legacy memory as turned down, so that nobody adopts it later. */
export async function rejectLegacyMemory(
  directory: string,
  details: { installation: number; repository: number; name: string; reason: string },
): Promise<void> {
  await writeFileAtomically(
    join(directory, REJECTED),
    `${JSON.stringify({ ...details, at: new Date().toISOString() }, null, 2)}\n`,
  );
}

/**
 * The earliest moment this memory shows: its files' modification times, and the creation time
 * of every record in its index files and its log.
 */
async function findOldestWrite(directory: string): Promise<number | undefined> {
  let oldest = Infinity;
  const note = (time: number) => {
    if (Number.isFinite(time) && time < oldest) oldest = time;
  };
  for (const name of await readdirOrEmpty(directory)) {
    if (name === "lock" || name.endsWith(".tmp") || name === REJECTED) continue;
    const info = await stat(join(directory, name));
    if (info.isFile()) note(info.mtimeMs);
  }
  const storage = new AtomicFileStorage();
  const manifest = await readJson<{ segments?: unknown }>(join(directory, "manifest.json"));
  const segments = Array.isArray(manifest?.segments) ? (manifest.segments as number[]) : [];
  for (const segment of segments) {
    const file = join(directory, `segment-${String(segment).padStart(6, "0")}.pb`);
    const items = await readSegment(storage, file).catch(() => []);
    for (const item of items) note(Date.parse(String(item.metadata.created_at)));
  }
  for (const name of await readdirOrEmpty(directory)) {
    if (!/^log-\d{10}\.jsonl$/.test(name)) continue;
    for (const line of (await readFile(join(directory, name), "utf8")).split("\n")) {
      const json = line.slice(9);
      try {
        const value = JSON.parse(json) as { op?: string; record?: { createdAt?: string } };
        if (value.op === "put") note(Date.parse(value.record?.createdAt ?? ""));
      } catch {
        // A torn line: the store cuts it off when it opens.
      }
    }
  }
  return oldest === Infinity ? undefined : oldest;
}

/**
 * An owner directory of the old layout. Its name is not a number, or (an owner whose login is
 * all digits) it holds repository directories and none of a store's own files. A repository
 * id's directory holds files, or after a crash only its lock's directories, which are not
 * repositories; every other directory is one, dot-named ones included (`1234/.github` was
 * taken for a lock's and never moved aside).
 */
async function isLegacyOwner(directory: string, name: string): Promise<boolean> {
  if (name.startsWith(".") || !(await isScannedDirectory(directory))) return false;
  if (!NUMERIC.test(name)) return true;
  let hasRepository = false;
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    if (entry.isFile()) return false;
    if (entry.isDirectory() && !isLockEntry(entry.name)) hasRepository = true;
  }
  return hasRepository;
}

/** The pid in an old-style lock file, when that process is alive and not this one. */
async function liveOldLockHolder(directory: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(directory, "lock"), "utf8").catch(() => "")).trim());
  if (!pid || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM" ? pid : undefined;
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

import { open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";

/** Another live process has the memory directory open. */
export class MemoryLockedError extends Error {
  override name = "MemoryLockedError";
}

/**
 * Keeps a memory directory to one process: two writers would interleave their logs and index
 * files. The lock is a file holding the owner's pid; one left by a process that died (SIGKILL,
 * a crash) is taken over.
 */
export async function lockDirectory(directory: string): Promise<() => Promise<void>> {
  const file = join(directory, "lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => unlink(file).catch(() => undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
      if (owner && owner !== process.pid && isAlive(owner)) {
        throw new MemoryLockedError(
          `${directory} is in use by process ${owner}; stop it first (or remove ${file} if it is gone)`,
        );
      }
      await unlink(file).catch(() => undefined);
    }
  }
  throw new MemoryLockedError(`could not lock ${directory}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

import { readdir, stat } from "node:fs/promises";
import type { Stats } from "node:fs";

/** Whether anything is at `path`. */
export async function exists(path: string): Promise<boolean> {
  return (await statOrMissing(path)) !== undefined;
}

/** Whether a directory is at `path`. */
export async function isDirectory(path: string): Promise<boolean> {
  return (await statOrMissing(path))?.isDirectory() ?? false;
}

/** The names in `directory`; none when it is missing or is not a directory. */
export async function readdirOrEmpty(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

// Only a path that is not there is missing: one that cannot be read (EACCES, ELOOP) throws, or a
// deletion would report nothing to delete and leave the data on disk.
async function statOrMissing(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

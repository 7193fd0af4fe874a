import { randomBytes } from "node:crypto";
import { open, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { writeAt } from "./write-at.js";
import { syncDirectory } from "./sync-directory.js";

/**
 * Replaces a file so that a crash leaves either the old or the new content, never a mix or an
 * empty file: write a temporary file, fsync it, rename it over the target, fsync the directory.
 * `content` may be pieces, written in order with one `writev`.
 */
export async function writeFileAtomically(
  file: string,
  content: string | Uint8Array | readonly Uint8Array[],
): Promise<void> {
  // Unique per call: two writes of one file in flight must not share (and steal) a temporary.
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    const handle = await open(temporary, "w");
    try {
      if (typeof content === "string") await handle.writeFile(content);
      else await writeAt(handle, content, 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    // Mostly a full disk: a partial temporary left behind would hold on to the room an operator
    // frees, and every retry would leave another. The caller needs the first error, not this one's.
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dirname(file));
}

/**
 * Removes the temporaries of `file` a killed process left (a crash between writing one and
 * renaming it): for the owner of `file` alone, at its start, since a live writer's would go too.
 * Unremoved, each crash of a compaction left a copy of the journal for good.
 */
export async function removeLeftoverTemporaries(file: string): Promise<void> {
  const name = basename(file);
  const entries = await readdir(dirname(file)).catch(() => [] as string[]);
  for (const entry of entries) {
    if (entry.startsWith(`${name}.`) && entry.endsWith(".tmp"))
      await rm(join(dirname(file), entry), { force: true });
  }
}

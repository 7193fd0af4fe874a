import { randomBytes } from "node:crypto";
import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Replaces a file so that a crash leaves either the old or the new content, never a mix or an
 * empty file: write a temporary file, fsync it, rename it over the target, fsync the directory.
 */
export async function writeFileAtomically(
  file: string,
  content: string | Uint8Array,
): Promise<void> {
  // Unique per call: two writes of one file in flight must not share (and steal) a temporary.
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(temporary, "w");
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  const directory = await open(dirname(file), "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

import { open, type FileHandle } from "node:fs/promises";
import { writeAt } from "./write-at.js";

/**
 * Writes `content` (bytes, or pieces written in order with one `writev`) at byte
 * `expectedBytes` of `file` and makes it durable: an append to a file known to be that long.
 * False, having written nothing, when the file is missing or another length. With `cutLonger`,
 * a longer file (the torn tail of an append a crash cut short, which nothing vouches for) is
 * cut back to that length first.
 */
export async function appendAtSize(
  file: string,
  content: Uint8Array | readonly Uint8Array[],
  expectedBytes: number,
  cutLonger = false,
): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(file, "r+");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size < expectedBytes || (size > expectedBytes && !cutLonger)) return false;
    if (size > expectedBytes) await handle.truncate(expectedBytes);
    await writeAt(handle, content, expectedBytes);
    await handle.datasync();
    return true;
  } finally {
    await handle.close();
  }
}

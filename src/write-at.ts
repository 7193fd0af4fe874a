import type { FileHandle } from "node:fs/promises";

/**
 * Writes `content` at `position` whole: a short write (a full disk) is an error, where one
 * `write` or `writev` would have returned it as a count.
 */
export async function writeAt(
  handle: FileHandle,
  content: Uint8Array | readonly Uint8Array[],
  position: number,
): Promise<void> {
  const pieces = content instanceof Uint8Array ? [content] : content;
  const expected = pieces.reduce((sum, piece) => sum + piece.byteLength, 0);
  const { bytesWritten } = await handle.writev(pieces as Uint8Array[], position);
  if (bytesWritten !== expected)
    throw new Error(`wrote ${bytesWritten} of ${expected} bytes at ${position}`);
}

import { open } from "node:fs/promises";

/**
 * Makes a directory's entries durable: a file created or renamed in it survives a power cut only
 * once its directory is fsynced, whatever was fsynced in the file itself.
 */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

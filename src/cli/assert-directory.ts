import { stat } from "node:fs/promises";
import { UsageError } from "./usage-error.js";

/** The data directory a command reads or writes: missing, or not a directory, is bad input. */
export async function assertDirectory(dataDir: string): Promise<void> {
  try {
    if ((await stat(dataDir)).isDirectory()) return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    throw new UsageError(
      `data directory ${dataDir} does not exist; pass --data-dir or set TALOS_DATA_DIR`,
    );
  }
  throw new UsageError(`${dataDir} is not a directory`);
}

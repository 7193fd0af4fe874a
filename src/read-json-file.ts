import { readFile } from "node:fs/promises";
import type { z } from "zod";

/** A state file that is there but is not what it should be: named, with why. */
export class DamagedFileError extends Error {
  override name = "DamagedFileError";
}

/**
 * A small JSON state file, checked against `schema`: undefined when it does not exist, and a
 * DamagedFileError naming it when it is not JSON or not of that shape. Other read errors (no
 * permission, say) are thrown as they are.
 */
export async function readJsonFile<S extends z.ZodTypeAny>(
  file: string,
  schema: S,
): Promise<z.infer<S> | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DamagedFileError(`${file} is damaged: not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new DamagedFileError(`${file} is damaged: not of the expected shape`);
  return parsed.data;
}

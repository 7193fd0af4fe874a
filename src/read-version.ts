import { readFile } from "node:fs/promises";

/** The version in package.json; this module sits one level below the package root in src/ and dist/. */
export async function readVersion(): Promise<string> {
  const text = await readFile(new URL("../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

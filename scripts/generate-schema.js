// Writes schema/talos.schema.json from the zod schema in src/config.ts (built into dist/).
import { writeFile } from "node:fs/promises";
import { getRepoConfigJsonSchema } from "../dist/config.js";

const target = new URL("../schema/talos.schema.json", import.meta.url);
await writeFile(target, JSON.stringify(getRepoConfigJsonSchema(), null, 2) + "\n");
console.log(`wrote ${target.pathname}`);

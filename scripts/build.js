#!/usr/bin/env node
// `npm run build` (and so `npm start`): compiles src/ into dist/, unless dist/ was built from
// exactly these sources. A restart with unchanged sources then skips the compiler entirely;
// a change recompiles incrementally (tsconfig.build.json keeps dist/.tsbuildinfo).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const stamp = join(root, "dist", ".sources-hash");
// Everything the output depends on: the sources, the compiler settings and the compiler itself.
const inputs = ["tsconfig.json", "tsconfig.build.json", "package-lock.json", ...listFiles("src")];

function listFiles(directory) {
  return readdirSync(join(root, directory), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

const hash = createHash("sha256");
for (const file of inputs) {
  hash.update(`${file}\0`);
  hash.update(existsSync(join(root, file)) ? readFileSync(join(root, file)) : "");
  hash.update("\0");
}
const digest = hash.digest("hex");
if (existsSync(stamp) && readFileSync(stamp, "utf8") === digest) {
  console.log("dist/ is up to date with src/; not compiling");
  process.exit(0);
}
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
  cwd: root,
  stdio: "inherit",
});
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(stamp, digest);

#!/usr/bin/env node
// The `talos` command. The TypeScript is built into dist/ by `npm install` (the prepare script).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  console.error("talos: dist/ is missing; run `npm run build` first");
  process.exit(2);
}
const { runCli } = await import(entry.href);
process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});

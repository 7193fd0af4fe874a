#!/usr/bin/env node
// The `talos` command. The TypeScript is built into dist/ by `npm install` (the prepare script).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  console.error("talos: dist/ is missing; run `npm run build` first");
  process.exit(2);
}
const { runCli } = await import(entry.href);
const { disableLangChainTracing } = await import(
  new URL("../dist/config.js", import.meta.url).href
);
disableLangChainTracing();
process.exitCode = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});

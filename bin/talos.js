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
// In a backfill, the first Ctrl-C stops it after the page in hand (so that the next run
// resumes there); a second one quits at once.
const interrupt = new AbortController();
if (process.argv[2] === "backfill") {
  process.once("SIGINT", () => {
    interrupt.abort();
    process.once("SIGINT", () => process.exit(130));
  });
}
process.exitCode = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
});

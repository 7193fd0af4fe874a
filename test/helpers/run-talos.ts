import { PassThrough } from "node:stream";
import { runCli } from "../../src/cli/main.js";
import { makeDataDir } from "./test-app.js";

export interface RunOptions {
  env?: Record<string, string>;
  /** Lines typed at the prompt, then end of input (Ctrl-D). */
  input?: string[];
  /** Whether stderr is a terminal (a progress bar instead of lines). */
  tty?: boolean;
  signal?: AbortSignal;
  /** Where `.env` is read from; by default an empty directory, so a developer's own is not. */
  cwd?: string;
}

/** `npx talos <argv>` in-process, with its output captured and its exit code. */
export async function runTalos(argv: string[], options: RunOptions = {}) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: options.tty ?? false });
  let out = "";
  let err = "";
  stdout.on("data", (c: Buffer) => (out += c.toString()));
  stderr.on("data", (c: Buffer) => (err += c.toString()));
  const running = runCli(argv, {
    stdin,
    stdout,
    stderr,
    env: options.env ?? {},
    cwd: options.cwd ?? makeDataDir(),
    signal: options.signal,
  });
  for (const line of options.input ?? []) stdin.write(`${line}\n`);
  stdin.end();
  const code = await running;
  return { code, out, err };
}

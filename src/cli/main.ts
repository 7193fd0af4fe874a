import type { Readable, Writable } from "node:stream";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseEnv } from "../config.js";
import { createLogger } from "../create-logger.js";
import { readVersion } from "../read-version.js";
import { chat } from "./chat.js";
import { replay } from "./replay.js";
import { UsageError } from "./usage-error.js";

export interface CliIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: Record<string, string | undefined>;
}

const SUBCOMMANDS = ["replay", "chat", "help"];

const USAGE = `Usage: talos <subcommand> [options]

Subcommands:
  replay <payload.json> [--event <name>] [--fixtures <dir>] [--json]
      Run the handlers on a saved webhook payload. Reads come from recorded data in
      <dir>/api (default fixtures/api), or answer 404; writes are printed, not sent.
  chat [--repo <owner/repo>]
      Talk to the assistant in the terminal, with the same agent and tools as on GitHub, bound
      to the repository (read with GITHUB_TOKEN when set). exit or Ctrl-D ends it.
  help
      Show this text.`;

/** `npx talos …`: returns the exit code (0 success, 2 bad input, 1 anything else). */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [subcommand, ...rest] = argv;
  try {
    switch (subcommand) {
      case "replay":
        return await runReplay(rest, io);
      case "chat":
        return await runChat(rest, io);
      case "help":
      case "--help":
      case "-h":
        io.stdout.write(`${USAGE}\n`);
        return 0;
      case undefined:
        throw new UsageError("missing subcommand; run `talos help` for the list");
      default:
        throw new UsageError(`unknown subcommand "${subcommand}"; run \`talos help\` for the list`);
    }
  } catch (error) {
    const known = subcommand !== undefined && SUBCOMMANDS.includes(subcommand);
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`talos${known ? ` ${subcommand}` : ""}: ${oneLine(message)}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

async function runReplay(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgsOrThrow({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      event: { type: "string" },
      fixtures: { type: "string", default: "fixtures" },
      json: { type: "boolean", default: false },
    },
  });
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0)
    throw new UsageError("replay takes one payload file: talos replay <payload.json>");
  const env = parseEnv(io.env);
  const log = await createLogger({
    level: io.env.LOG_LEVEL ? env.LOG_LEVEL : "warn",
    format: env.LOG_FORMAT ?? "pretty",
    secrets: [env.PRIVATE_KEY, env.WEBHOOK_SECRET, env.GITHUB_TOKEN, env.OPENAI_API_KEY],
    destination: io.stderr,
  });
  const result = await replay({
    file,
    event: values.event,
    fixturesDir: `${values.fixtures}/api`,
    version: await readVersion(),
    log,
  });
  if (values.json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  io.stdout.write(`Replayed ${result.event} from ${file} (delivery ${result.delivery}).\n`);
  result.writes.forEach((write, index) => {
    io.stdout.write(
      `\n${index + 1}. ${write.method} ${write.path}\n${JSON.stringify(write.body, null, 2)}\n`,
    );
  });
  io.stdout.write(`\n${result.writes.length} planned write(s); nothing was sent to GitHub.\n`);
  return 0;
}

async function runChat(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgsOrThrow({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { repo: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const env = parseEnv(io.env);
  const log = await createLogger({
    level: io.env.LOG_LEVEL ? env.LOG_LEVEL : "warn",
    format: env.LOG_FORMAT ?? "pretty",
    secrets: [env.PRIVATE_KEY, env.WEBHOOK_SECRET, env.GITHUB_TOKEN, env.OPENAI_API_KEY],
    destination: io.stderr,
  });
  return chat({
    repo: values.repo,
    env,
    log,
    stdin: io.stdin,
    stdout: io.stdout,
    stderr: io.stderr,
  });
}

function parseArgsOrThrow<T extends ParseArgsConfig>(config: T) {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

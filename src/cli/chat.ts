import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { createChatModel } from "../agent/create-chat-model.js";
import { createChatSession } from "../agent/chat-session.js";
import { systemClock } from "../clock.js";
import type { Env } from "../config.js";
import { createRepoClient } from "../github/create-repo-client.js";
import { createServices } from "../create-services.js";
import type { Logger } from "pino";
import { createCliOctokit } from "./create-cli-octokit.js";
import { errorLine } from "./error-line.js";
import { parseRepoName } from "./parse-repo-name.js";
import { quietBelowDebug } from "./quiet-below-debug.js";
import { toTerminalText } from "./to-terminal-text.js";
import { UsageError } from "./usage-error.js";

export interface ChatOptions {
  /** `owner/repo` to bind the tools to; without it the assistant has no tools. */
  repo: string | undefined;
  env: Env;
  log: Logger;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/**
 * `talos chat`: the agent in the terminal, reading GitHub with GITHUB_TOKEN when one is given
 * (public repositories work without). `exit`, `quit` or Ctrl-D ends the session.
 */
export async function chat(options: ChatOptions): Promise<number> {
  const { env, stdout } = options;
  // A failed model call is reported below in one line; the agent's log of it has a stack.
  const log = quietBelowDebug(options.log);
  const model = createChatModel(env);
  if (!model) {
    throw new UsageError(
      "no language model configured: set OPENAI_API_KEY (and OPENAI_BASE_URL and TALOS_MODEL for a compatible server)",
    );
  }
  const match = options.repo === undefined ? undefined : parseRepoName(options.repo);
  if (options.repo !== undefined && !match)
    throw new UsageError(`--repo takes owner/repo, not "${options.repo}"`);

  // The server's wiring, with the journal and budgets kept in memory: chat runs no jobs, and
  // its operator spends no repository's budget. It reads no memory either: the database is not
  // opened, so one that does not answer does not stop a chat.
  const services = await createServices({
    env: { ...env, DATABASE_URL: undefined },
    log,
    clock: systemClock,
    model,
    ephemeralJobs: true,
  });
  const assistant = services.assistant;
  if (!assistant) throw new UsageError("no language model configured");
  const github = match ? createRepoClient(createCliOctokit(services), match) : undefined;
  const session = createChatSession({ assistant, github, log });

  const lines = createInterface({
    input: options.stdin,
    output: stdout,
    terminal: Boolean((options.stdin as { isTTY?: boolean }).isTTY),
  });
  stdout.write(
    `Talos chat${match ? ` about ${match.owner}/${match.repo}` : " (no repository: pass --repo owner/repo for tools)"}. Type exit or press Ctrl-D to end.\n`,
  );
  lines.setPrompt("you> ");
  lines.prompt();
  for await (const line of lines) {
    const text = line.trim();
    if (text === "exit" || text === "quit") break;
    if (text) {
      try {
        stdout.write(`talos> ${toTerminalText(await session.send(text))}\n`);
      } catch (error) {
        options.stderr.write(errorLine("chat", (error as Error).message, env));
      }
    }
    lines.prompt();
  }
  lines.close();
  await services.close();
  stdout.write("\n");
  return 0;
}

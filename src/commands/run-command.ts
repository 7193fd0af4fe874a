import { LlmError } from "../agent/run-agent.js";
import type { CommandContext, CommandReply } from "./command-registry.js";
import type { ParsedCommand } from "./parse-command.js";

export type CommandOutcome = Exclude<CommandReply, string>;

/**
 * Runs a parsed command. It always returns a reply: an unknown or switched-off command, or a
 * command that fails, gets a short explanation instead.
 */
export async function runCommand(
  parsed: ParsedCommand,
  context: Omit<CommandContext, "args">,
): Promise<CommandOutcome> {
  const { registry, config, log } = context;
  const command = registry.get(parsed.name);
  let reply: CommandReply;
  if (!command) {
    reply = `I don't know the command \`${sanitizeName(parsed.name)}\`. Try \`/talos help\` for the list.`;
  } else if (!registry.isEnabled(command.name, config)) {
    reply = `\`${command.name}\` is switched off in this repository's \`.github/talos.yml\`. Try \`/talos help\` for the list.`;
  } else {
    try {
      reply = await command.run({ ...context, args: parsed.args });
    } catch (error) {
      log.error({ err: error, command: command.name }, "command failed");
      reply =
        error instanceof LlmError
          ? `Sorry, the language model did not answer \`${command.name}\` (it may be down or slow). Please try again later.`
          : `Sorry, \`${command.name}\` failed (${errorName(error)}). The maintainers of this app can find the details in its log.`;
    }
  }
  const outcome = typeof reply === "string" ? { body: reply } : reply;
  // The `config` reply already lists the problems; every other reply points at them.
  if (config.errors.length > 0 && command?.name !== "config") {
    outcome.body += `\n\n> [!WARNING]\n> \`.github/talos.yml\` has ${config.errors.length} problem(s); those settings fell back to their most restrictive values. Run \`/talos config\` for details.`;
  }
  return outcome;
}

/** Command names come from untrusted comments; keep them short and free of Markdown. */
function sanitizeName(name: string): string {
  return name.replace(/[^\w-]/g, "").slice(0, 40);
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : "unknown error";
}

import type { ParsedCommand } from "./parse-command.js";
import type { CommandContext } from "./command-registry.js";

/**
 * Runs a parsed command and returns the Markdown reply. It always returns a reply: an unknown or
 * switched-off command, or a command that fails, gets a short explanation instead.
 */
export async function runCommand(
  parsed: ParsedCommand,
  context: Omit<CommandContext, "args">,
): Promise<string> {
  const { registry, config, log } = context;
  const command = registry.get(parsed.name);
  let reply: string;
  if (!command) {
    reply = `I don't know the command \`${sanitizeName(parsed.name)}\`. Try \`/talos help\` for the list.`;
  } else if (!registry.isEnabled(command.name, config)) {
    reply = `\`${command.name}\` is switched off in this repository (\`commands.disabled\` in \`.github/talos.yml\`). Try \`/talos help\` for the list.`;
  } else {
    try {
      reply = await command.run({ ...context, args: parsed.args });
    } catch (error) {
      log.error({ err: error, command: command.name }, "command failed");
      reply = `Sorry, \`${command.name}\` failed (${errorName(error)}). The maintainers of this app can find the details in its log.`;
    }
  }
  // The `config` reply already lists the problems; every other reply points at them.
  if (config.errors.length > 0 && command?.name !== "config") {
    reply += `\n\n> [!WARNING]\n> \`.github/talos.yml\` has ${config.errors.length} problem(s); those settings use their defaults. Run \`/talos config\` for details.`;
  }
  return reply;
}

/** Command names come from untrusted comments; keep them short and free of Markdown. */
function sanitizeName(name: string): string {
  return name.replace(/[^\w-]/g, "").slice(0, 40);
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : "unknown error";
}

import { getSecrets, type SecretVariable } from "../config.js";
import { createSecretScrubber } from "../create-logger.js";
import { toTerminalText } from "./to-terminal-text.js";

/**
 * `talos <command>: <message>` as one line for stderr, scrubbed as the log is: a service's error
 * can quote its URL, password and all, and a model server's can quote the key it refused. Clean
 * for the terminal too: a message may quote what a file or a delivery held.
 */
export function errorLine(
  command: string,
  message: string,
  env: Partial<Record<SecretVariable, string | undefined>>,
): string {
  const scrub = createSecretScrubber(getSecrets(env));
  return `talos${command ? ` ${command}` : ""}: ${toTerminalText(scrub(message), true).replace(/\s+/g, " ").trim()}\n`;
}

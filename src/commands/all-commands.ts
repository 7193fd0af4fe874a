import { askCommand } from "./ask-command.js";
import type { Command } from "./command-registry.js";
import { configCommand } from "./config-command.js";
import { helpCommand } from "./help-command.js";
import { forgetCommand } from "./forget-command.js";
import { rememberCommand } from "./remember-command.js";
import { reviewCommand } from "./review-command.js";
import { similarCommand } from "./similar-command.js";
import { summarizeCommand } from "./summarize-command.js";

/** Every command, in the order `help` lists them. COMMAND_NAMES in config.ts must match. */
export const ALL_COMMANDS: Command[] = [
  helpCommand,
  configCommand,
  askCommand,
  summarizeCommand,
  reviewCommand,
  similarCommand,
  rememberCommand,
  forgetCommand,
];

import { stringify } from "yaml";
import { REPO_CONFIG_PATH } from "../config.js";
import type { Command } from "./command-registry.js";

export const configCommand: Command = {
  name: "config",
  usage: "/talos config",
  summary: `Show the effective \`${REPO_CONFIG_PATH}\` settings and any problems in the file.`,
  async run({ config }) {
    const source = config.found
      ? `read from \`${REPO_CONFIG_PATH}\` (this repository, or the owner's \`.github\` repository)`
      : `no \`${REPO_CONFIG_PATH}\` was found, so these are the defaults`;
    return [
      `**Effective Talos configuration**: ${source}.`,
      "",
      "```yaml",
      stringify(config.config).trimEnd(),
      "```",
      "",
      config.errors.length === 0
        ? "The file has no problems."
        : [
            "**Problems** (these settings fell back toward less power):",
            // One line each: a problem quotes the file's keys, and a key holding a line of
            // backticks would otherwise open a code block that swallows the rest of the list.
            ...config.errors.map((e) => `- ${e.replace(/\s+/g, " ")}`),
          ].join("\n"),
    ].join("\n");
  },
};

import type { Command } from "./command-registry.js";

export const helpCommand: Command = {
  name: "help",
  usage: "/talos help",
  summary: "List the commands enabled in this repository.",
  async run({ registry, config, slug }) {
    const rows = registry
      .enabled(config)
      .map((command) => `| \`${command.usage}\` | ${command.summary} |`);
    const who = config.config.commands.allowed_associations.join(", ") || "nobody";
    return [
      "**Talos commands in this repository**",
      "",
      "| Command | What it does |",
      "| --- | --- |",
      ...rows,
      "",
      `Write a command at the start of a comment line, as \`/talos <command>\` or \`@${slug} <command>\`.`,
      `Commands run for authors whose association with the repository is ${who}` +
        (config.config.commands.help_for_everyone ? "; `help` runs for everyone." : "."),
    ].join("\n");
  },
};

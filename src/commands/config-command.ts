import { stringify } from "yaml";
import { compileTitlePattern, REPO_CONFIG_PATH, type RepoConfig } from "../config.js";
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
      ...switchedOffByPattern(config.config),
    ].join("\n");
  },
};

/** Titles no pattern meant to pick some pull requests out matches all of. */
const SAMPLE_TITLES = ["", "a", "Fix the crash on save (#42)"];

/**
 * A valid setting that switches a feature off for everything, said in words: an empty
 * `ignore_title` (meant as "ignore nothing") or `.*` matches every title, and "The file has no
 * problems" had been all a maintainer was told while no pull request got a summary or a review.
 */
function switchedOffByPattern(config: RepoConfig): string[] {
  const pattern = compileTitlePattern(config.pull_requests.ignore_title);
  if (!SAMPLE_TITLES.every((title) => pattern.matcher(title).find())) return [];
  return [
    "",
    "**Note:** `pull_requests.ignore_title` matches every title, so no pull request gets a summary or a review on push. To ignore none, use a pattern no title matches, such as `^$`.",
  ];
}

import {
  findSimilarIssues,
  keepExistingIssues,
  renderSimilarIssues,
  similarityThreshold,
} from "../memory/find-similar-issues.js";
import type { Command } from "./command-registry.js";
import { MEMORY_OFF_REPLY } from "./memory-replies.js";

export const similarCommand: Command = {
  name: "similar",
  usage: "/talos similar",
  summary: "List issues and pull requests in Talos's memory that resemble this one.",
  isEnabled: (config) => config.memory.enabled,
  async run({ issue, memory, config, github, log }) {
    const store = await memory();
    if (!store) return MEMORY_OFF_REPLY;
    const hits = await keepExistingIssues(
      await findSimilarIssues(store, issue, config.config.similar),
      { github, memory: store, log },
    );
    const threshold = similarityThreshold(store, config.config.similar);
    if (hits.length === 0) {
      return `Nothing in Talos's memory of this repository resembles this ${issue.isPullRequest ? "pull request" : "issue"} closely enough (similarity of at least ${threshold}).`;
    }
    return {
      body: `**Possibly related**: ${renderSimilarIssues(hits)}.\n\nSimilarity: ${hits.map((h) => h.score.toFixed(2)).join(", ")} (at least ${threshold} counts).`,
      references: hits.flatMap((hit) => hit.record.number ?? []),
    };
  },
};

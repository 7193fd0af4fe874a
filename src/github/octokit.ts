import type { Octokit as CoreOctokit } from "@octokit/core";
import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";

/** The installation-authenticated client Probot hands to each event. */
export type Octokit = InstanceType<typeof ProbotOctokit>;

export interface RepoRef {
  owner: string;
  repo: string;
}

/**
 * Probot gives every client its pino logger, but Octokit's types describe a message-first
 * console; this is the logger as it really is, fields first.
 */
export function getClientLog(octokit: Pick<CoreOctokit, "log">): Logger {
  return octokit.log as unknown as Logger;
}

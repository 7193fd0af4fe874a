import type { Octokit as CoreOctokit } from "@octokit/core";
import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";

/** The installation-authenticated client Probot hands to each event. */
export type Octokit = InstanceType<typeof ProbotOctokit>;

export interface RepoRef {
  owner: string;
  repo: string;
}

/** The HTTP status of a failed GitHub request, if the error carries one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null | undefined)?.status;
  return typeof status === "number" ? status : undefined;
}

/** An error's message, led by its HTTP status when GitHub answered and the message lacks it. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const status = statusOf(error);
  return (status !== undefined && !message.includes(String(status)) ? `${status} ` : "") + message;
}

/**
 * Probot gives every client its pino logger, but Octokit's types describe a message-first
 * console; this is the logger as it really is, fields first.
 */
export function getClientLog(octokit: Pick<CoreOctokit, "log">): Logger {
  return octokit.log as unknown as Logger;
}

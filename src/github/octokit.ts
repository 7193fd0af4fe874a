import type { ProbotOctokit } from "probot";

/** The installation-authenticated client Probot hands to each event. */
export type Octokit = InstanceType<typeof ProbotOctokit>;

export interface RepoRef {
  owner: string;
  repo: string;
}

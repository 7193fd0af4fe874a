import type { Octokit, RepoRef } from "./octokit.js";

export interface RepositoryInfo {
  fullName: string;
  defaultBranch: string;
  visibility: string;
  private: boolean;
  archived: boolean;
  description: string | null;
}

export interface LabelInfo {
  name: string;
  description: string | null;
}

export interface IssueInfo {
  number: number;
  title: string;
  body: string | null;
  state: string;
  author: string | null;
  labels: string[];
  isPullRequest: boolean;
  url: string;
}

/**
 * Reads of one repository through the installation's client, whose cache plugin serves repeated
 * reads. Bound to the event's repository: callers (and the model's tools) cannot name another.
 */
export interface RepoClient {
  readonly repo: RepoRef;
  getRepository(): Promise<RepositoryInfo>;
  listLabels(): Promise<LabelInfo[]>;
  getIssue(number: number): Promise<IssueInfo>;
}

export function createRepoClient(octokit: Octokit, repo: RepoRef): RepoClient {
  return {
    repo,
    async getRepository() {
      const { data } = await octokit.rest.repos.get({ ...repo });
      return {
        fullName: data.full_name,
        defaultBranch: data.default_branch,
        visibility: data.visibility ?? (data.private ? "private" : "public"),
        private: data.private,
        archived: data.archived,
        description: data.description,
      };
    },
    async listLabels() {
      const labels = await octokit.paginate(octokit.rest.issues.listLabelsForRepo, {
        ...repo,
        per_page: 100,
      });
      return labels.map((l) => ({ name: l.name, description: l.description ?? null }));
    },
    async getIssue(number) {
      const { data } = await octokit.rest.issues.get({ ...repo, issue_number: number });
      return {
        number: data.number,
        title: data.title,
        body: data.body ?? null,
        state: data.state,
        author: data.user?.login ?? null,
        labels: data.labels
          .map((l) => (typeof l === "string" ? l : (l.name ?? "")))
          .filter(Boolean),
        isPullRequest: data.pull_request !== undefined,
        url: data.html_url,
      };
    },
  };
}

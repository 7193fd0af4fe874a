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
  /** ISO time; empty when the source did not say. */
  createdAt: string;
}

export interface CommentInfo {
  id: number;
  author: string | null;
  body: string;
  createdAt: string;
}

export interface SearchResult {
  number: number;
  title: string;
  state: string;
  isPullRequest: boolean;
  url: string;
}

export interface FileInfo {
  path: string;
  size: number;
  /** The text, or undefined for a directory, a binary file or one too large to read. */
  text: string | undefined;
  note?: string;
}

// The GitHub contents API returns files up to 1 MB inline; the agent needs far less.
const MAX_FILE_BYTES = 200_000;

/**
 * Reads of one repository through the installation's client, whose cache plugin serves repeated
 * reads. Bound to the event's repository: callers (and the model's tools) cannot name another.
 */
export interface RepoClient {
  readonly repo: RepoRef;
  /**
   * The issue and pull request numbers this client has read (and search has found): what a reply
   * written from this event's reads may refer to.
   */
  readonly retrieved: ReadonlySet<number>;
  getRepository(): Promise<RepositoryInfo>;
  listLabels(): Promise<LabelInfo[]>;
  getIssue(number: number): Promise<IssueInfo>;
  /** All of the thread's comments, oldest first. */
  listComments(number: number): Promise<CommentInfo[]>;
  /** Issue search in this repository only; qualifiers that could widen it are removed. */
  searchIssues(
    query: string,
    options: { state?: "open" | "closed"; limit: number },
  ): Promise<SearchResult[]>;
  getFile(path: string, ref?: string): Promise<FileInfo>;
}

export function createRepoClient(octokit: Octokit, repo: RepoRef): RepoClient {
  const retrieved = new Set<number>();
  return {
    repo,
    retrieved,
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
      retrieved.add(data.number);
      return toIssueInfo(data);
    },
    async listComments(number) {
      const comments: CommentInfo[] = [];
      for await (const { data } of octokit.paginate.iterator(octokit.rest.issues.listComments, {
        ...repo,
        issue_number: number,
        per_page: 100,
      })) {
        for (const c of data) {
          comments.push({
            id: c.id,
            author: c.user?.login ?? null,
            body: c.body ?? "",
            createdAt: c.created_at,
          });
        }
        retrieved.add(number);
      }
      return comments;
    },
    async searchIssues(query, { state, limit }) {
      const scope = `${repo.owner}/${repo.repo}`;
      const q = [
        stripSearchQualifiers(query),
        `repo:${scope}`,
        ...(state ? [`state:${state}`] : []),
      ].join(" ");
      const { data } = await octokit.rest.search.issuesAndPullRequests({ q, per_page: limit });
      const found = data.items.filter((item) =>
        item.repository_url.toLowerCase().endsWith(`/repos/${scope.toLowerCase()}`),
      );
      for (const item of found) retrieved.add(item.number);
      return found.map((item) => ({
        number: item.number,
        title: item.title,
        state: item.state,
        isPullRequest: item.pull_request !== undefined,
        url: item.html_url,
      }));
    },
    async getFile(path, ref) {
      const { data } = await octokit.rest.repos.getContent({
        ...repo,
        path,
        ...(ref ? { ref } : {}),
      });
      if (Array.isArray(data)) {
        const names = data.map((entry) => (entry.type === "dir" ? `${entry.name}/` : entry.name));
        return { path, size: 0, text: undefined, note: `a directory: ${names.join(", ")}` };
      }
      if (data.type !== "file" || !("content" in data))
        return { path, size: 0, text: undefined, note: `a ${data.type}` };
      if (data.size > MAX_FILE_BYTES)
        return { path, size: data.size, text: undefined, note: "too large to read" };
      const bytes = Buffer.from(data.content, "base64");
      if (bytes.includes(0))
        return { path, size: data.size, text: undefined, note: "a binary file" };
      return { path, size: data.size, text: bytes.toString("utf8") };
    },
  };
}

/** The shape an issue has in the REST API and in webhook payloads alike. */
export interface IssueData {
  number: number;
  title: string;
  body?: string | null;
  state?: string;
  user?: { login: string } | null;
  labels?: Array<string | { name?: string }>;
  pull_request?: unknown;
  html_url: string;
  created_at?: string;
}

export function toIssueInfo(data: IssueData): IssueInfo {
  return {
    number: data.number,
    title: data.title,
    body: data.body ?? null,
    state: data.state ?? "open",
    author: data.user?.login ?? null,
    labels: (data.labels ?? [])
      .map((l) => (typeof l === "string" ? l : (l.name ?? "")))
      .filter(Boolean),
    isPullRequest: data.pull_request !== undefined && data.pull_request !== null,
    url: data.html_url,
    createdAt: data.created_at ?? "",
  };
}

const SEARCH_SCOPES = ["repo", "org", "user", "owner"];

/**
 * The model writes the search query, so it must not choose where to search: GitHub ORs repeated
 * `repo:` qualifiers, and `org:` or `user:` would reach the installation's other repositories.
 * Those qualifiers are dropped with their values (quoted or not, negated or not, with spaces
 * around the colon or not); everything else is kept.
 */
export function stripSearchQualifiers(query: string): string {
  const terms = splitSearchTerms(query.slice(0, 1_000));
  const kept: string[] = [];
  for (let i = 0; i < terms.length; i++) {
    const term = terms[i]!;
    const bare = term.toLowerCase().replace(/^-/, "");
    const scope = SEARCH_SCOPES.find((s) => bare === s || bare.startsWith(`${s}:`));
    const colonNext = terms[i + 1]?.startsWith(":") === true;
    if (!scope || (bare === scope && !colonNext)) {
      kept.push(term);
      continue;
    }
    // `repo:x`, `repo: x`, `repo :x` and `repo : x`: skip the terms the value is in.
    const colon = bare === scope ? terms[++i]! : bare.slice(scope.length);
    if (colon === ":") i++;
  }
  return kept.join(" ").slice(0, 200);
}

/** Splits a search query at whitespace, keeping a quoted phrase (even unclosed) in one term. */
function splitSearchTerms(query: string): string[] {
  const terms: string[] = [];
  let current = "";
  let quoted = false;
  for (const char of query) {
    if (char === '"') quoted = !quoted;
    if (!quoted && /\s/.test(char)) {
      if (current) terms.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  if (current) terms.push(current);
  return terms;
}

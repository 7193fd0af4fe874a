import type {
  CommentInfo,
  FileInfo,
  IssueInfo,
  LabelInfo,
  RepoClient,
  SearchResult,
} from "../../src/github/create-repo-client.js";

/** An in-memory repository behind the RepoClient interface, recording what was read. */
export interface FakeRepo {
  issues: Map<number, IssueInfo>;
  comments: Map<number, CommentInfo[]>;
  files: Map<string, string | Error>;
  labels: LabelInfo[];
  searches: string[];
  reads: string[];
}

export function createFakeRepoClient(
  seed: Partial<FakeRepo> = {},
): RepoClient & { fake: FakeRepo } {
  const fake: FakeRepo = {
    issues: seed.issues ?? new Map(),
    comments: seed.comments ?? new Map(),
    files: seed.files ?? new Map(),
    labels: seed.labels ?? [],
    searches: [],
    reads: [],
  };
  return {
    fake,
    repo: { owner: "acme", repo: "widgets" },
    retrieved: new Set<number>(),
    async getRepository() {
      fake.reads.push("repository");
      return {
        id: 1,
        fullName: "acme/widgets",
        defaultBranch: "main",
        visibility: "public",
        private: false,
        archived: false,
        description: "Widgets",
      };
    },
    async listLabels() {
      fake.reads.push("labels");
      return fake.labels;
    },
    async getIssue(number) {
      fake.reads.push(`issue ${number}`);
      const issue = fake.issues.get(number);
      if (!issue) throw Object.assign(new Error("Not Found"), { status: 404 });
      return issue;
    },
    async listComments(number) {
      fake.reads.push(`comments ${number}`);
      return fake.comments.get(number) ?? [];
    },
    async listRecentComments(number, { maxComments = Infinity }) {
      fake.reads.push(`comments ${number}`);
      const all = fake.comments.get(number) ?? [];
      const comments = all.slice(-Math.min(all.length, maxComments));
      return { comments, total: all.length, omitted: all.length - comments.length };
    },
    async searchIssues(query): Promise<SearchResult[]> {
      fake.searches.push(query);
      return [];
    },
    async getFile(path): Promise<FileInfo> {
      fake.reads.push(`file ${path}`);
      const file = fake.files.get(path);
      if (file instanceof Error) throw file;
      if (file === undefined) throw Object.assign(new Error("Not Found"), { status: 404 });
      return { path, size: file.length, text: file };
    },
  };
}

export function makeIssue(number: number, changes: Partial<IssueInfo> = {}): IssueInfo {
  return {
    number,
    title: `Issue ${number}`,
    body: `Body of issue ${number}`,
    state: "open",
    author: "alice",
    labels: [],
    isPullRequest: false,
    url: `https://github.com/acme/widgets/issues/${number}`,
    createdAt: "2026-11-01T00:00:00Z",
    ...changes,
  };
}

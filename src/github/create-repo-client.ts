import { RequestError } from "@octokit/request-error";
import type { Octokit, RepoRef } from "./octokit.js";

export interface RepositoryInfo {
  /** GitHub's id: it stays through a rename or a move to another owner, as the name does not. */
  id: number;
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
  /** Its `updated_at` where the source said: the version its memory record carries. */
  updatedAt?: string;
}

export interface CommentInfo {
  id: number;
  author: string | null;
  body: string;
  createdAt: string;
}

/** The newest comments of a thread that fit a budget, and how many older ones were left out. */
export interface RecentComments {
  /** Oldest first: the newest run of the thread's comments, with no gap. */
  comments: CommentInfo[];
  /** The thread's comments, as GitHub counted them when the last page was read. */
  total: number;
  /** The older comments not read or not kept: `total` less `comments.length`. */
  omitted: number;
}

export interface CommentBudget {
  /**
   * Characters of comment bodies, each comment counted with COMMENT_OVERHEAD_CHARS more for its
   * author and date. The newest comment is kept whatever its size (the caller cuts it).
   */
  maxChars: number;
  /** The most comments to keep. */
  maxComments?: number | undefined;
  /**
   * A body's size against `maxChars`: its length unless given. A caller that shows bodies as a
   * reader sees them (cleanUntrustedText) weighs them so: a comment hidden whole in an HTML
   * comment, which anyone may post and no reader sees, took the room of the visible comments
   * before it, and they went unread.
   */
  weigh?: ((body: string) => number) | undefined;
}

/** What a comment costs besides its body, rendered: author, date and fence or separator. */
export const COMMENT_OVERHEAD_CHARS = 100;

// The most the issue-comments endpoint serves per page.
// https://docs.github.com/en/rest/issues/comments#list-issue-comments
export const COMMENTS_PER_PAGE = 100;

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
  /**
   * The repository's labels: every page, or, with `maxChars`, the pages until their names and
   * descriptions (`name: description` lines) pass that many characters. GitHub sets no limit on
   * how many labels a repository has.
   */
  listLabels(budget?: { maxChars: number }): Promise<LabelInfo[]>;
  getIssue(number: number): Promise<IssueInfo>;
  /**
   * All of the thread's comments, oldest first: every page. For finding a comment wherever it is;
   * a prompt takes `listRecentComments`.
   */
  listComments(number: number): Promise<CommentInfo[]>;
  /**
   * The newest comments within `budget`, reading pages from the last backwards: a 1,000-comment
   * thread costs a few pages, not ten.
   */
  listRecentComments(number: number, budget: CommentBudget): Promise<RecentComments>;
  /** Issue search in this repository only; qualifiers that could widen it are removed. */
  searchIssues(
    query: string,
    options: { state?: "open" | "closed"; limit: number },
  ): Promise<SearchResult[]>;
  getFile(path: string, ref?: string): Promise<FileInfo>;
}

/** A label's length as GitHub sends it, `name: description`: what `listLabels` weighs. */
export function labelChars(label: { name: string; description?: string | null }): number {
  return label.name.length + (label.description ? label.description.length + 2 : 0);
}

export function createRepoClient(octokit: Octokit, repo: RepoRef): RepoClient {
  const retrieved = new Set<number>();
  return {
    repo,
    retrieved,
    async getRepository() {
      const { data } = await octokit.rest.repos.get({ ...repo });
      return {
        id: data.id,
        fullName: data.full_name,
        defaultBranch: data.default_branch,
        visibility: data.visibility ?? (data.private ? "private" : "public"),
        private: data.private,
        archived: data.archived,
        description: data.description,
      };
    },
    async listLabels(budget) {
      let chars = 0;
      const labels = await octokit.paginate(
        octokit.rest.issues.listLabelsForRepo,
        { ...repo, per_page: 100 },
        (response, done) => {
          // Only the first page is cached: a tool that shows 12,000 characters read every page.
          for (const l of response.data) chars += (chars > 0 ? 1 : 0) + labelChars(l);
          if (budget && chars > budget.maxChars) done();
          return response.data;
        },
      );
      return labels.map((l) => ({ name: l.name, description: l.description ?? null }));
    },
    async getIssue(number) {
      const { data, url } = await octokit.rest.issues.get({ ...repo, issue_number: number });
      // GitHub answers for an issue transferred elsewhere with a 301 that fetch follows, with
      // this installation's token: the issue then comes from another (maybe private) repository.
      // (So does it for this repository renamed since the event: see `NotInRepoError.movedTo`.)
      if (!inRepo(repo, data.repository_url))
        throw notInRepo(repo, `#${number}`, redirectedRepositoryId(url));
      retrieved.add(data.number);
      return toIssueInfo(data);
    },
    async listComments(number) {
      const comments: CommentInfo[] = [];
      let first = true;
      for await (const { data, url } of octokit.paginate.iterator(
        octokit.rest.issues.listComments,
        { ...repo, issue_number: number, per_page: 100 },
      )) {
        // A transferred issue's comments redirect too: see `commentsOf`. Only the first page's
        // URL is ours to check: the later ones are GitHub's `Link`s, `/repositories/<id>/…`.
        const page = commentsOf(repo, number, { data, url: first ? url : undefined });
        comments.push(...page.map(toCommentInfo));
        first = false;
        retrieved.add(number);
      }
      return comments;
    },
    async listRecentComments(number, budget) {
      const readPage = async (page: number) =>
        commentsOf(
          repo,
          number,
          await octokit.rest.issues.listComments({
            ...repo,
            issue_number: number,
            per_page: COMMENTS_PER_PAGE,
            page,
          }),
        );
      // The endpoint has no `direction`: the first page's `Link: rel="last"` says where the end
      // is. Page 1 is kept only when the walk back reaches it, so the comments kept are always the
      // newest run with no gap, and "N older comments left out" stays exact. (The opening post is
      // the issue's body, which comes with the issue, not with its comments.)
      const first = await octokit.rest.issues.listComments({
        ...repo,
        issue_number: number,
        per_page: COMMENTS_PER_PAGE,
      });
      // Checked before anything is counted or kept; later pages are checked in `readPage`.
      commentsOf(repo, number, first);
      retrieved.add(number);
      const lastPage = getLastPage(first.headers.link);
      const maxComments = budget.maxComments ?? Infinity;
      const kept: CommentInfo[] = [];
      const seen = new Set<number>();
      let total = first.data.length;
      let chars = 0;
      walk: for (let page = lastPage; page >= 1; page--) {
        const data = page === 1 ? first.data : await readPage(page);
        if (page === lastPage) total = (lastPage - 1) * COMMENTS_PER_PAGE + data.length;
        for (const c of data.toReversed()) {
          // A comment deleted between two reads shifts the pages: one may then come twice.
          if (seen.has(c.id)) continue;
          const body = c.body ?? "";
          const cost = (budget.weigh ? budget.weigh(body) : body.length) + COMMENT_OVERHEAD_CHARS;
          if (kept.length >= maxComments || (kept.length > 0 && chars + cost > budget.maxChars))
            break walk;
          seen.add(c.id);
          kept.push(toCommentInfo(c));
          chars += cost;
        }
      }
      kept.reverse();
      return { comments: kept, total, omitted: Math.max(0, total - kept.length) };
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

/**
 * Whether an API URL (an issue's `repository_url`, a comment's `issue_url`) is of `repo`, or of
 * its issue `number` when given. Only owner and name are known from the event, so a repository
 * renamed since reads as another one: "not found" then is the safe mistake.
 */
function inRepo(repo: RepoRef, apiUrl: string | undefined, number?: number): boolean {
  // GitHub always sends these fields (the REST schema requires them), so whatever a redirect
  // reaches carries one; only hand-made responses (test stand-ins, recorded fixtures) lack them.
  if (apiUrl === undefined) return true;
  const path = `/repos/${repo.owner}/${repo.repo}${number === undefined ? "" : `/issues/${number}`}`;
  // Owner and repository names are case-insensitive on GitHub; the URL carries GitHub's spelling.
  return apiUrl.toLowerCase().endsWith(path.toLowerCase());
}

/**
 * The page's comments, when the page and all its comments are of issue `number` of `repo`;
 * otherwise the tool's "not found": `/issues/N/comments` of an issue transferred away redirects
 * to the comments of its new home, `/repositories/<id>/issues/M/comments`, which may have none
 * to tell it by. `url`, where the read ended, is checked when known.
 */
function commentsOf<C extends { issue_url?: string }>(
  repo: RepoRef,
  number: number,
  { data, url }: { data: C[]; url?: string | undefined },
): C[] {
  const away =
    url && !inRepo(repo, new URL(url, API_URL).pathname.replace(/\/comments$/, ""), number);
  if (away || data.some((c) => !inRepo(repo, c.issue_url, number)))
    throw notInRepo(repo, `#${number}`, url ? redirectedRepositoryId(url) : undefined);
  return data;
}

/**
 * What the caller gets for data from another repository: the same status as GitHub's own 404, so
 * a tool reports "not found" and a job whose issue moved away ends as "gone" (classifyJobFailure).
 * Its own class says more than a 404 can: GitHub redirected the read. That alone does not say
 * the item was transferred away: GitHub redirects a read under a repository's old name too (a
 * job from before a rename or a move to another owner), and the item then carries the new name.
 */
export class NotInRepoError extends RequestError {
  /**
   * The id of the repository GitHub's redirect went to (`/repositories/<id>/issues/<n>`), when
   * known: compared with this repository's id (`getRepository`), it tells a transfer from a
   * rename.
   */
  movedTo: number | undefined;
}

function notInRepo(repo: RepoRef, what: string, movedTo?: number): NotInRepoError {
  const url = `/repos/${repo.owner}/${repo.repo}`;
  const error = new NotInRepoError(`Not Found: ${what} is not in ${repo.owner}/${repo.repo}`, 404, {
    request: { method: "GET", url, headers: {} },
    response: { status: 404, url, headers: {}, data: { message: "Not Found" } },
  });
  error.movedTo = movedTo;
  return error;
}

// What a relative URL is read against: only its path is looked at.
const API_URL = "https://api.github.com";

/** The repository id in the URL a read was redirected to, `…/repositories/<id>/…`, if any. */
function redirectedRepositoryId(url: string): number | undefined {
  const id = /\/repositories\/(\d+)\//.exec(new URL(url, API_URL).pathname)?.[1];
  return id === undefined ? undefined : Number(id);
}

function toCommentInfo(c: {
  id: number;
  user?: { login: string } | null;
  body?: string;
  created_at: string;
}): CommentInfo {
  return { id: c.id, author: c.user?.login ?? null, body: c.body ?? "", createdAt: c.created_at };
}

/** The page number of a `Link` header's `rel="last"`, or 1 when there is none (one page). */
export function getLastPage(link: string | undefined): number {
  const last = link
    ?.split(",")
    .map((part) => /<([^>]+)>\s*;\s*rel="last"/.exec(part)?.[1])
    .find((url) => url !== undefined);
  const page = last ? Number(new URL(last).searchParams.get("page")) : 1;
  return Number.isInteger(page) && page >= 1 ? page : 1;
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
  updated_at?: string;
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
    ...(data.updated_at ? { updatedAt: data.updated_at } : {}),
  };
}

const SEARCH_SCOPES = ["repo", "org", "user", "owner"];
// GitHub's issue search reads these (in any case) as boolean operators, outside a phrase.
const OPERATORS = new Set(["and", "or", "not"]);
// GitHub takes at most 256 characters of a query; `repo:` and `state:` come after these.
const MAX_QUERY_CHARS = 200;

/**
 * The model writes the search query, so it must not choose where to search: GitHub ORs repeated
 * `repo:` qualifiers, and `org:` or `user:` would reach the installation's other repositories.
 * Those qualifiers are dropped with their values (quoted or not, negated or not, with spaces
 * around the colon or not, in parentheses or not, the scope quoted or not); everything else is
 * kept. What could take the `repo:` qualifier appended after it out of force goes too: `OR`,
 * `AND` and `NOT` (`a OR repo:x` matches `a` anywhere), grouping parentheses, backslashes (which
 * escape a quote), and a quote left open (it would make the qualifier part of a phrase). That
 * quote goes before the query is split: a phrase left open took a qualifier after it into one
 * term that was kept, and the qualifier came back to life when the quote went.
 */
export function stripSearchQualifiers(query: string): string {
  let text = query.slice(0, 1_000).replaceAll("\\", "");
  const last = text.lastIndexOf('"');
  if ((text.split('"').length - 1) % 2 === 1) text = text.slice(0, last) + text.slice(last + 1);
  const terms = splitSearchTerms(text);
  const kept: string[] = [];
  let chars = -1;
  for (let i = 0; i < terms.length; i++) {
    const term = terms[i]!;
    const bare = plainTerm(term);
    // A lone `-` might negate what follows it.
    if (bare === "" || OPERATORS.has(bare)) continue;
    const scope = SEARCH_SCOPES.find((s) => bare === s || bare.startsWith(`${s}:`));
    const colonNext = plainTerm(terms[i + 1] ?? "").startsWith(":");
    if (scope && (bare !== scope || colonNext)) {
      // `repo:x`, `repo: x`, `repo :x` and `repo : x`: skip the terms the value is in.
      const colon = bare === scope ? plainTerm(terms[++i]!) : bare.slice(scope.length);
      if (colon === ":") i++;
      continue;
    }
    // Cut, a term would leave a quote open; one with none is cut to fit.
    const room = MAX_QUERY_CHARS - chars - 1;
    if (term.length > room && (term.includes('"') || room <= 0)) break;
    kept.push(term.slice(0, room));
    chars += 1 + kept.at(-1)!.length;
  }
  // A qualifier left without its value (`label:`) would take the `repo:` after it as its value.
  while (kept.at(-1)?.endsWith(":")) kept.pop();
  return kept.join(" ");
}

/** A term as the scope check reads it: lowercase, without quotes or leading `-`. */
function plainTerm(term: string): string {
  return term.toLowerCase().replaceAll('"', "").replace(/^-+/, "");
}

/**
 * Splits a search query, whose quotes pair up, at whitespace and at parentheses, keeping a quoted
 * phrase in one term. Only a term that is one phrase (`"…"`, `-"…"`) or a qualifier with one
 * quoted value (`label:"…"`) keeps its quotes: how GitHub reads a quote within a word
 * (`a"b c"d`, `"a"repo:x`) is not documented, so such a term is split at its quotes as well,
 * and its words are checked like any other.
 */
function splitSearchTerms(query: string): string[] {
  const terms: string[] = [];
  let current = "";
  let quoted = false;
  const end = () => {
    const first = current.indexOf('"');
    const whole =
      first === -1 ||
      (current.indexOf('"', first + 1) === current.length - 1 &&
        (first === 0 || current.slice(0, first) === "-" || current[first - 1] === ":"));
    terms.push(...(whole ? [current] : current.split(/["\s()]+/)).filter(Boolean));
    current = "";
  };
  for (const char of query) {
    if (char === '"') quoted = !quoted;
    if (!quoted && (/\s/.test(char) || char === "(" || char === ")")) end();
    else current += char;
  }
  end();
  return terms;
}

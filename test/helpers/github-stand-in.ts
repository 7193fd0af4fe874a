import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small in-process GitHub REST API for end-to-end runs and benchmarks: enough for Talos to
 * authenticate, read repositories, config, labels, issues and comments, search issues, react,
 * comment, label issues (and list their `labeled` events), and pull requests: their files,
 * comparisons between commits, and reviews; and the app's webhook deliveries, listed and asked
 * for again. It serves both `/` and GHES's `/api/v3` prefix,
 * answers conditional GETs with 304,
 * sends rate-limit headers per token (304s are free, as on GitHub), keeps what was written,
 * records every request, and can be told to fail a request.
 *
 * Like GitHub, it checks who is asking:
 * - `/app` routes need the app's JWT (`Authorization: Bearer <jwt>`, `iss` the app id, `exp` in
 *   the future, and an RS256 signature when `publicKey` is given); anything else is a 401.
 * - Every other route takes an installation token the stand-in issued (`token <t>` or
 *   `Bearer <t>`); an unknown token, or the app's JWT, is a 401 "Bad credentials".
 * - Without credentials, reads are allowed (the repositories are public) and writes are a 401.
 * - With `access`, an installation's token sees only the repositories it was granted: any other
 *   repository is a 404, as GitHub answers for a repository an installation cannot see.
 *
 * List routes are paginated with `per_page` (default 30, at most 100) and `page`, and a `Link`
 * header in GitHub's format, so Octokit's `paginate` follows it.
 */
export interface StandInRequest {
  method: string;
  path: string;
  query: string;
  body: unknown;
  authorization: string | undefined;
  status: number;
  /** When it was answered (ms since the epoch), and with whose installation token. */
  at: number;
  installation: number | undefined;
}

export interface StandInComment {
  id: number;
  body: string;
  user: { login: string; type: string };
  created_at: string;
  updated_at: string;
}

export interface StandInIssue {
  number: number;
  title: string;
  body: string;
  state: string;
  user: { login: string };
  labels: Array<{ name: string }>;
  pull_request?: object;
}

export interface StandInPull {
  number: number;
  title: string;
  body: string;
  state: "open" | "closed";
  draft: boolean;
  user: { login: string; type?: "User" | "Bot" };
  head: { sha: string; ref: string };
  base: { sha: string; ref: string };
  /** The pull request's files as `pulls/{n}/files` lists them; all of them, past 3,000 too. */
  files: StandInPullFile[];
}

export interface StandInPullFile {
  filename: string;
  status: string;
  additions: number;
  deletions: number;
  changes: number;
  /** The unified diff of the file; none for a binary or very large file, as on GitHub. */
  patch?: string;
  previous_filename?: string;
}

export interface StandInComparison {
  status: "ahead" | "behind" | "diverged" | "identical";
  files: StandInPullFile[];
}

/** An inline comment of a review, as it was posted. */
export interface StandInReviewComment {
  path: string;
  body: string;
  line?: number;
  side?: string;
  start_line?: number;
  start_side?: string;
  position?: number;
}

export interface StandInReview {
  id: number;
  user: { login: string; type: string };
  body: string;
  /** COMMENTED, APPROVED, CHANGES_REQUESTED, or PENDING when no event was given. */
  state: string;
  commit_id: string;
  html_url: string;
  /** Absent on a pending review, as on GitHub. */
  submitted_at?: string;
  /** Not part of GitHub's review JSON (it lists them at `reviews/{id}/comments`). */
  comments: StandInReviewComment[];
}

/**
 * One attempt at a webhook delivery, as `GET /app/hook/deliveries` lists it (GitHub's
 * `hook-delivery-item`). Attempts at one event share its `guid` (the `X-GitHub-Delivery` id).
 */
export interface StandInHookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  duration: number;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
}

/** A repository label: a name alone (no description), or a name and its description. */
export type StandInLabel = string | { name: string; description: string | null };

export interface InjectedFailure {
  method: string;
  path: RegExp;
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** The request is carried out all the same (a gateway timing out after GitHub wrote). */
  applied?: boolean;
}

export interface NewComment {
  body: string;
  login: string;
  type?: "User" | "Bot";
  /** ISO time; the stand-in's next tick by default. `updated_at` is the same. */
  created_at?: string;
}

export interface GitHubStandIn {
  url: string;
  /** The value for GHE_HOST (host:port); use with GHE_PROTOCOL=http. */
  host: string;
  requests: StandInRequest[];
  /** `owner/repo` → path → file text. */
  files: Map<string, Map<string, string>>;
  /** `owner/repo` → labels: names, or names with descriptions. */
  labels: Map<string, StandInLabel[]>;
  /** `owner/repo#number` → issue. */
  issues: Map<string, StandInIssue>;
  /** `owner/repo#number` → comments. */
  comments: Map<string, StandInComment[]>;
  /** `owner/repo#number` → pull request; `setPull` keeps `issues` in step. */
  pulls: Map<string, StandInPull>;
  /** `owner/repo:base...head` → comparison; any other comparison is a 404. */
  comparisons: Map<string, StandInComparison>;
  /** `owner/repo#number` → the reviews posted, oldest first. */
  reviews: Map<string, StandInReview[]>;
  reactions: Array<{ repo: string; commentId: number; content: string }>;
  /**
   * The app's webhook delivery attempts, in any order: listed newest (highest id) first, paged
   * by cursor. `POST /app/hook/deliveries/{id}/attempts` answers 202 for one of them and records
   * the request only: the test delivers the webhook itself, as GitHub would.
   */
  hookDeliveries: StandInHookDelivery[];
  /** The rate-limit headers of the last response, per token. */
  lastRateLimit: Map<string, Record<string, string>>;
  /** Installation tokens issued so far → the installation each belongs to. */
  tokens: Map<string, number>;
  setFile(repo: string, path: string, text: string | undefined): void;
  /** Adds or replaces pull request `repo#number`, and its issue (whose labels are kept). */
  setPull(repo: string, pull: StandInPull): void;
  setComparison(repo: string, base: string, head: string, comparison: StandInComparison): void;
  /** Appends a comment to `repo#number` with a fresh id, and returns it. */
  addComment(repo: string, number: number, comment: NewComment): StandInComment;
  failNext(failure: InjectedFailure): void;
  writes(): StandInRequest[];
  /** Requests that reached a route, optionally only GETs of `path` (exact, without query). */
  count(method: string, path: string | RegExp): number;
  close(): Promise<void>;
}

export interface StandInOptions {
  slug?: string;
  appId?: number;
  /** x-ratelimit-limit per token (default 5000). */
  rateLimit?: number;
  /** The app's public key (PEM or KeyObject): app JWTs must then carry a valid RS256 signature. */
  publicKey?: string | KeyObject;
  /**
   * Installation id → the `owner/repo` names it was granted (case-insensitive). Without it, every
   * installation may use every repository. With it, an installation not listed has none, and no
   * token is issued for it.
   */
  access?: Record<number, string[]>;
}

interface RouteResult {
  status: number;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

/** What a route knows of the request beyond its path. */
interface RouteContext {
  /** `http://host[:port][/api/v3]`: where this request was sent, for absolute URLs. */
  base: string;
  /** The path without the `/api/v3` prefix. */
  path: string;
  /** The installation whose token was used, if any. */
  installation: number | undefined;
}

type Route = (
  match: RegExpMatchArray,
  body: unknown,
  query: URLSearchParams,
  accept: string,
  context: RouteContext,
) => RouteResult;

type Caller =
  | { kind: "anonymous" }
  | { kind: "app" }
  | { kind: "installation"; id: number }
  | { kind: "invalid" };

const JWT_ERROR = { message: "A JSON web token could not be decoded" };
const BAD_CREDENTIALS = { message: "Bad credentials" };
// https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files
const MAX_PULL_FILES = 3_000;
// Paged or not, a comparison lists at most 300 files, all on its first page; paging parameters
// page its commits. https://docs.github.com/en/rest/commits/commits#compare-two-commits
const MAX_COMPARED_FILES = 300;
const REVIEW_STATES: Record<string, string> = {
  APPROVE: "APPROVED",
  REQUEST_CHANGES: "CHANGES_REQUESTED",
  COMMENT: "COMMENTED",
};
const SEARCH_FORBIDDEN =
  "The listed users and repositories cannot be searched either because the resources do not exist or you do not have permission to view them.";

export async function startGitHubStandIn(options: StandInOptions = {}): Promise<GitHubStandIn> {
  const slug = options.slug ?? "talos-bot";
  const botLogin = `${slug}[bot]`;
  const appId = options.appId ?? 1;
  const limit = options.rateLimit ?? 5000;
  const publicKey =
    typeof options.publicKey === "string" ? createPublicKey(options.publicKey) : options.publicKey;
  const requests: StandInRequest[] = [];
  const files = new Map<string, Map<string, string>>();
  const labels = new Map<string, StandInLabel[]>();
  const issues = new Map<string, StandInIssue>();
  const comments = new Map<string, StandInComment[]>();
  /** `owner/repo#number` → its `labeled` events, as the labels route adds labels. */
  const labelEvents = new Map<string, Array<Record<string, unknown>>>();
  const pulls = new Map<string, StandInPull>();
  const comparisons = new Map<string, StandInComparison>();
  const reviews = new Map<string, StandInReview[]>();
  const reactions: GitHubStandIn["reactions"] = [];
  const hookDeliveries: StandInHookDelivery[] = [];
  const tokens = new Map<string, number>();
  const used = new Map<string, number>();
  const lastRateLimit = new Map<string, Record<string, string>>();
  const failures: InjectedFailure[] = [];
  let nextId = 5_000_000;
  let tick = 0;
  // Comment times must grow, to the second as on GitHub; a counter keeps runs repeatable.
  const now = () => new Date(Date.UTC(2026, 10, 24, 12, 0, 0) + 1000 * tick++).toISOString();
  const notFound: RouteResult = { status: 404, body: { message: "Not Found" } };
  const repoOf = (m: RegExpMatchArray) => `${m[1]}/${m[2]}`;

  /** May `installation` see `repo`? */
  function mayUse(installation: number, repo: string): boolean {
    if (!options.access) return true;
    const granted = options.access[installation] ?? [];
    return granted.some((name) => sameRepo(name, repo));
  }

  function issueJson(repo: string, issue: StandInIssue, base: string) {
    const kind = issue.pull_request ? "pull" : "issues";
    return {
      ...issue,
      labels: issue.labels.map((l) => labelJson(repo, l.name)),
      html_url: `https://github.com/${repo}/${kind}/${issue.number}`,
      repository_url: `${base}/repos/${repo}`,
    };
  }

  function labelJson(repo: string, name: string) {
    const list = labels.get(repoKey(labels, repo)) ?? [];
    const index = list.findIndex((l) => labelName(l).toLowerCase() === name.toLowerCase());
    const label = list[index];
    return {
      id: index >= 0 ? index + 1 : undefined,
      name,
      description: label === undefined || typeof label === "string" ? null : label.description,
    };
  }

  function issuesOf(repo: string): StandInIssue[] {
    return [...issues.entries()]
      .filter(([key]) => sameRepo(key.slice(0, key.lastIndexOf("#")), repo))
      .map(([, issue]) => issue);
  }

  function commentsKey(repo: string, number: string | number) {
    return repoKey(comments, `${repo}#${number}`);
  }

  function pullOf(repo: string, number: string | number): StandInPull | undefined {
    return pulls.get(repoKey(pulls, `${repo}#${number}`));
  }

  function pullJson(repo: string, pull: StandInPull, base: string) {
    const owner = repo.slice(0, repo.indexOf("/"));
    const branch = (b: { sha: string; ref: string }) => ({
      label: `${owner}:${b.ref}`,
      ref: b.ref,
      sha: b.sha,
      repo: { name: repo.slice(owner.length + 1), full_name: repo, owner: { login: owner } },
    });
    const issue = issues.get(repoKey(issues, `${repo}#${pull.number}`));
    return {
      url: `${base}/repos/${repo}/pulls/${pull.number}`,
      id: 1_000_000 + pull.number,
      number: pull.number,
      state: pull.state,
      title: pull.title,
      body: pull.body,
      draft: pull.draft,
      user: { login: pull.user.login, type: pull.user.type ?? "User" },
      labels: (issue?.labels ?? []).map((l) => labelJson(repo, l.name)),
      html_url: `https://github.com/${repo}/pull/${pull.number}`,
      issue_url: `${base}/repos/${repo}/issues/${pull.number}`,
      head: branch(pull.head),
      base: branch(pull.base),
      merged: false,
      // GitHub counts every file here, past the 3,000 that `pulls/{n}/files` lists.
      changed_files: pull.files.length,
      additions: pull.files.reduce((sum, f) => sum + f.additions, 0),
      deletions: pull.files.reduce((sum, f) => sum + f.deletions, 0),
      commits: 1,
    };
  }

  function reviewJson(review: StandInReview) {
    const json: Partial<StandInReview> = { ...review };
    delete json.comments;
    return json;
  }

  function comparisonOf(repo: string, base: string, head: string) {
    for (const [key, comparison] of comparisons) {
      const at = key.indexOf(":");
      if (sameRepo(key.slice(0, at), repo) && key.slice(at + 1) === `${base}...${head}`)
        return comparison;
    }
    return undefined;
  }

  /**
   * `GET /app/hook/deliveries`: newest first, `per_page` at most 100, and the next page's cursor
   * in the `Link` header, as GitHub pages them (no `page` numbers).
   */
  function listHookDeliveries(query: URLSearchParams, context: RouteContext): RouteResult {
    const perPage = clamp(query.get("per_page"), 30, 100);
    const cursor = /^v1_(\d+)$/.exec(query.get("cursor") ?? "");
    const below = cursor ? Number(cursor[1]) : Infinity;
    const older = [...hookDeliveries].sort((a, b) => b.id - a.id).filter((d) => d.id < below);
    const page = older.slice(0, perPage);
    const last = page.at(-1);
    const headers: Record<string, string> =
      last && older.length > perPage
        ? {
            link: `<${context.base}/app/hook/deliveries?per_page=${perPage}&cursor=v1_${last.id}>; rel="next"`,
          }
        : {};
    return { status: 200, body: page, headers };
  }

  /** `POST pulls/{n}/reviews`: GitHub's 422 when an inline comment is not on the diff. */
  function createReview(repo: string, pull: StandInPull, body: unknown): RouteResult {
    const given = (body ?? {}) as {
      commit_id?: string;
      body?: string;
      event?: string;
      comments?: StandInReviewComment[];
    };
    if (given.event !== undefined && !(given.event in REVIEW_STATES)) {
      const allowed = Object.keys(REVIEW_STATES)
        .map((e) => `"${e}"`)
        .join(", ");
      const message = `Invalid request.\n\nFor 'properties/event', "${given.event}" is not one of [${allowed}].`;
      return { status: 422, body: { message } };
    }
    for (const comment of given.comments ?? []) {
      const problem = unresolved(pull, comment);
      if (problem)
        return { status: 422, body: { message: "Unprocessable Entity", errors: [problem] } };
    }
    const key = repoKey(reviews, `${repo}#${pull.number}`);
    const id = nextId++;
    const state = given.event === undefined ? "PENDING" : REVIEW_STATES[given.event]!;
    const review: StandInReview = {
      id,
      user: { login: botLogin, type: "Bot" },
      body: given.body ?? "",
      state,
      commit_id: given.commit_id ?? pull.head.sha,
      html_url: `https://github.com/${repo}/pull/${pull.number}#pullrequestreview-${id}`,
      ...(state === "PENDING" ? {} : { submitted_at: now() }),
      comments: given.comments ?? [],
    };
    reviews.set(key, [...(reviews.get(key) ?? []), review]);
    return { status: 200, body: reviewJson(review) };
  }

  const routes: Array<[string, RegExp, Route]> = [
    ["GET", /^\/app$/, () => ({ status: 200, body: { id: appId, slug, name: "Talos" } })],
    [
      "POST",
      /^\/app\/installations\/(\d+)\/access_tokens$/,
      (m) => {
        const installation = Number(m[1]);
        if (options.access && !(installation in options.access)) return notFound;
        const token = `ghs_standin${installation}token000000000000`;
        tokens.set(token, installation);
        return {
          status: 201,
          body: {
            token,
            expires_at: "2999-01-01T00:00:00Z",
            permissions: { issues: "write", contents: "read", metadata: "read" },
            repository_selection: options.access ? "selected" : "all",
          },
        };
      },
    ],
    [
      "GET",
      /^\/app\/hook\/deliveries$/,
      (_m, _body, query, _accept, context) => listHookDeliveries(query, context),
    ],
    [
      "POST",
      /^\/app\/hook\/deliveries\/(\d+)\/attempts$/,
      (m) =>
        hookDeliveries.some((d) => d.id === Number(m[1])) ? { status: 202, body: {} } : notFound,
    ],
    ["GET", /^\/search\/issues$/, (_m, _body, query, _accept, context) => search(query, context)],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)$/,
      (m) => ({
        status: 200,
        body: {
          id: 1,
          name: m[2],
          full_name: repoOf(m),
          owner: { login: m[1] },
          default_branch: "main",
          private: false,
          visibility: "public",
          archived: false,
          description: `The ${m[2]} project`,
        },
      }),
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/labels$/,
      (m, _body, query, _accept, context) =>
        paginate(
          (labels.get(repoKey(labels, repoOf(m))) ?? []).map((label, i) => ({
            id: i + 1,
            name: labelName(label),
            description: typeof label === "string" ? null : label.description,
          })),
          query,
          context,
        ),
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/,
      (m, _body, _query, accept) => {
        const path = decodeURIComponent(m[3] ?? "");
        const text = files.get(repoKey(files, repoOf(m)))?.get(path);
        if (text === undefined) return notFound;
        // The raw media type gets the file itself; the default gets GitHub's JSON description.
        if (accept.includes("raw")) return { status: 200, raw: text };
        const content = Buffer.from(text).toString("base64");
        return {
          status: 200,
          body: { type: "file", path, size: Buffer.byteLength(text), encoding: "base64", content },
        };
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/issues$/,
      (m, _body, query, _accept, context) => {
        const state = query.get("state") ?? "open";
        const list = issuesOf(repoOf(m))
          .filter((issue) => state === "all" || issue.state === state)
          .sort((a, b) => b.number - a.number)
          .map((issue) => issueJson(repoOf(m), issue, context.base));
        return paginate(list, query, context);
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/,
      (m, _body, _query, _accept, context) => {
        const issue = issues.get(repoKey(issues, `${repoOf(m)}#${m[3]}`));
        return issue ? { status: 200, body: issueJson(repoOf(m), issue, context.base) } : notFound;
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      (m, _body, query, _accept, context) => {
        const since = query.get("since");
        const list = comments.get(commentsKey(repoOf(m), m[3]!)) ?? [];
        // GitHub filters on the last update, not on creation.
        return paginate(
          list.filter((c) => !since || c.updated_at >= since),
          query,
          context,
        );
      },
    ],
    [
      "POST",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      (m, body) => {
        const key = commentsKey(repoOf(m), m[3]!);
        const at = now();
        const comment: StandInComment = {
          id: nextId++,
          body: (body as { body: string }).body,
          user: { login: botLogin, type: "Bot" },
          created_at: at,
          updated_at: at,
        };
        comments.set(key, [...(comments.get(key) ?? []), comment]);
        return { status: 201, body: comment };
      },
    ],
    [
      "PATCH",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/,
      (m, body) => {
        // Only a comment of this repository: GitHub answers 404 for another repository's.
        for (const [key, list] of comments) {
          if (!sameRepo(key.slice(0, key.lastIndexOf("#")), repoOf(m))) continue;
          const comment = list.find((c) => c.id === Number(m[3]));
          if (comment) {
            comment.body = (body as { body: string }).body;
            comment.updated_at = now();
            return { status: 200, body: comment };
          }
        }
        return notFound;
      },
    ],
    [
      "POST",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)\/reactions$/,
      (m, body) => {
        const content = (body as { content: string }).content;
        reactions.push({ repo: repoOf(m), commentId: Number(m[3]), content });
        return { status: 201, body: { id: nextId++, content } };
      },
    ],
    [
      "POST",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/labels$/,
      (m, body) => {
        const issue = issues.get(repoKey(issues, `${repoOf(m)}#${m[3]}`));
        // GitHub takes `{ labels: [...] }` or the array alone, of names or `{ name }` objects.
        const given = Array.isArray(body) ? body : ((body as { labels?: unknown[] }).labels ?? []);
        const added = given.map((l) => (typeof l === "string" ? l : (l as { name: string }).name));
        const key = repoKey(labelEvents, `${repoOf(m)}#${m[3]}`);
        const labelled = (name: string) =>
          labelEvents.set(key, [
            ...(labelEvents.get(key) ?? []),
            {
              id: nextId++,
              event: "labeled",
              actor: { login: botLogin, type: "Bot" },
              label: { name },
              created_at: now(),
            },
          ]);
        if (!issue) {
          added.forEach(labelled);
          return { status: 200, body: added.map((name) => labelJson(repoOf(m), name)) };
        }
        for (const name of added) {
          if (issue.labels.some((l) => l.name.toLowerCase() === name.toLowerCase())) continue;
          issue.labels.push({ name });
          labelled(name);
        }
        // The answer is the issue's labels now, all of them.
        return { status: 200, body: issue.labels.map((l) => labelJson(repoOf(m), l.name)) };
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/events$/,
      (m, _body, query, _accept, context) => {
        // As for comments, an issue the stand-in was not given has none.
        const events = labelEvents.get(repoKey(labelEvents, `${repoOf(m)}#${m[3]}`)) ?? [];
        return paginate(events, query, context);
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/,
      (m, _body, _query, _accept, context) => {
        const pull = pullOf(repoOf(m), m[3]!);
        return pull ? { status: 200, body: pullJson(repoOf(m), pull, context.base) } : notFound;
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/files$/,
      (m, _body, query, _accept, context) => {
        const pull = pullOf(repoOf(m), m[3]!);
        if (!pull) return notFound;
        return paginate(pull.files.slice(0, MAX_PULL_FILES), query, context);
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/compare\/(.+?)\.\.\.(.+)$/,
      (m, _body, query, _accept, context) => {
        const [base, head] = [decodeURIComponent(m[3]!), decodeURIComponent(m[4]!)];
        const comparison = comparisonOf(repoOf(m), base, head);
        // GitHub's answer for a commit it does not have, after a force-push say.
        if (!comparison) return notFound;
        const ahead = comparison.status === "ahead" || comparison.status === "diverged" ? 1 : 0;
        const behind = comparison.status === "behind" || comparison.status === "diverged" ? 1 : 0;
        // Paging parameters page the commits (none here): later pages list no files.
        const page = clamp(query.get("page"), 1, Infinity);
        const commits = paginate([], query, context);
        return {
          ...commits,
          body: {
            url: `${context.base}/repos/${repoOf(m)}/compare/${base}...${head}`,
            html_url: `https://github.com/${repoOf(m)}/compare/${base}...${head}`,
            status: comparison.status,
            ahead_by: ahead,
            behind_by: behind,
            total_commits: ahead,
            base_commit: { sha: base },
            merge_base_commit: { sha: base },
            commits: [],
            files: page === 1 ? comparison.files.slice(0, MAX_COMPARED_FILES) : [],
          },
        };
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/reviews$/,
      (m, _body, query, _accept, context) => {
        if (!pullOf(repoOf(m), m[3]!)) return notFound;
        const list = reviews.get(repoKey(reviews, `${repoOf(m)}#${m[3]}`)) ?? [];
        return paginate(list.map(reviewJson), query, context);
      },
    ],
    [
      "POST",
      /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/reviews$/,
      (m, body) => {
        const pull = pullOf(repoOf(m), m[3]!);
        return pull ? createReview(repoOf(m), pull, body) : notFound;
      },
    ],
  ];

  /**
   * `GET /search/issues`: free words, and the `repo:`, `org:`, `user:`, `state:`, `is:`, `type:`
   * and `label:` qualifiers.
   */
  function search(query: URLSearchParams, context: RouteContext): RouteResult {
    const q = query.get("q");
    if (!q?.trim()) {
      return {
        status: 422,
        body: {
          message: "Validation Failed",
          errors: [{ resource: "Search", field: "q", code: "missing" }],
        },
      };
    }
    const parsed = parseSearch(q);
    // An installation's token cannot search a repository it cannot see.
    const hidden = parsed.repos.some(
      (repo) => context.installation !== undefined && !mayUse(context.installation, repo),
    );
    if (hidden) {
      return {
        status: 422,
        body: {
          message: "Validation Failed",
          errors: [{ message: SEARCH_FORBIDDEN, resource: "Search", field: "q", code: "invalid" }],
        },
      };
    }
    const items = [...issues.entries()]
      .map(([key, issue]) => ({ repo: key.slice(0, key.lastIndexOf("#")), issue }))
      .filter(({ repo, issue }) => {
        if (context.installation !== undefined && !mayUse(context.installation, repo)) return false;
        // GitHub ORs repeated scope qualifiers: an item matches one of them.
        const owner = repo.slice(0, repo.indexOf("/")).toLowerCase();
        const scoped = parsed.repos.length > 0 || parsed.owners.length > 0;
        if (
          scoped &&
          !parsed.repos.some((r) => sameRepo(r, repo)) &&
          !parsed.owners.includes(owner)
        )
          return false;
        if (parsed.state && issue.state !== parsed.state) return false;
        if (parsed.kind === "issue" && issue.pull_request) return false;
        if (parsed.kind === "pr" && !issue.pull_request) return false;
        const names = issue.labels.map((l) => l.name.toLowerCase());
        if (!parsed.labels.every((l) => names.includes(l))) return false;
        const text = `${issue.title}\n${issue.body ?? ""}`.toLowerCase();
        return parsed.words.every((word) => text.includes(word));
      })
      .sort((a, b) => b.issue.number - a.issue.number)
      .map(({ repo, issue }) => {
        const json = issueJson(repo, issue, context.base);
        return {
          number: json.number,
          title: json.title,
          state: json.state,
          body: json.body,
          html_url: json.html_url,
          repository_url: json.repository_url,
          user: json.user,
          labels: json.labels,
          ...(issue.pull_request ? { pull_request: issue.pull_request } : {}),
          score: 1,
        };
      });
    const page = paginate(items, query, context);
    return {
      ...page,
      body: { total_count: items.length, incomplete_results: false, items: page.body },
    };
  }

  /** One page of `list`, with GitHub's `Link` header when there is more than one. */
  function paginate(list: unknown[], query: URLSearchParams, context: RouteContext): RouteResult {
    const perPage = clamp(query.get("per_page"), 30, 100);
    const page = clamp(query.get("page"), 1, Infinity);
    const last = Math.max(1, Math.ceil(list.length / perPage));
    const body = list.slice((page - 1) * perPage, page * perPage);
    const link = (n: number, rel: string) => {
      const params = new URLSearchParams(query);
      params.set("page", String(n));
      return `<${context.base}${context.path}?${params.toString()}>; rel="${rel}"`;
    };
    const links = [
      ...(page > 1 ? [link(page - 1, "prev")] : []),
      ...(page < last ? [link(page + 1, "next"), link(last, "last")] : []),
      ...(page > 1 ? [link(1, "first")] : []),
    ];
    return { status: 200, body, ...(links.length ? { headers: { link: links.join(", ") } } : {}) };
  }

  /** Who the Authorization header says is asking. */
  function callerOf(authorization: string | undefined): Caller {
    if (authorization === undefined) return { kind: "anonymous" };
    const match = /^(?:token|bearer)\s+(\S+)$/i.exec(authorization.trim());
    if (!match) return { kind: "invalid" };
    const credential = match[1]!;
    if (credential.split(".").length === 3)
      return isAppJwt(credential) ? { kind: "app" } : { kind: "invalid" };
    const installation = tokens.get(credential);
    return installation === undefined
      ? { kind: "invalid" }
      : { kind: "installation", id: installation };
  }

  function isAppJwt(jwt: string): boolean {
    const [header, payload, signature] = jwt.split(".") as [string, string, string];
    try {
      const head = JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: string };
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as {
        iss?: unknown;
        exp?: unknown;
      };
      if (String(claims.iss) !== String(appId)) return false;
      if (typeof claims.exp !== "number" || claims.exp <= Date.now() / 1000) return false;
      if (!publicKey) return true;
      return (
        head.alg === "RS256" &&
        verify(
          "RSA-SHA256",
          Buffer.from(`${header}.${payload}`),
          publicKey,
          Buffer.from(signature, "base64url"),
        )
      );
    } catch {
      return false;
    }
  }

  /** GitHub's answer when the caller may not make this request at all, or undefined. */
  function refuse(caller: Caller, method: string, path: string): RouteResult | undefined {
    if (path === "/app" || path.startsWith("/app/"))
      return caller.kind === "app" ? undefined : { status: 401, body: JWT_ERROR };
    // App JWTs are for /app routes only; installation tokens for the rest.
    if (caller.kind === "invalid" || caller.kind === "app")
      return { status: 401, body: BAD_CREDENTIALS };
    if (caller.kind === "anonymous") {
      return method === "GET" || method === "HEAD"
        ? undefined
        : { status: 401, body: { message: "Requires authentication" } };
    }
    const repo = /^\/repos\/([^/]+)\/([^/]+)/.exec(path);
    if (repo && !mayUse(caller.id, `${repo[1]}/${repo[2]}`)) return notFound;
    return undefined;
  }

  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk: Buffer) => (text += chunk.toString()));
    req.on("end", () => {
      const result = dispatch(req, text);
      res.writeHead(result.status, result.headers).end(result.payload);
    });
  });

  function dispatch(req: IncomingMessage, text: string) {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const prefix = /^\/api\/v3(?=\/|$)/.test(url.pathname) ? "/api/v3" : "";
    const path = url.pathname.slice(prefix.length) || "/";
    const method = req.method ?? "GET";
    const body = text ? (JSON.parse(text) as unknown) : null;
    const caller = callerOf(req.headers.authorization);
    const context: RouteContext = {
      base: `http://${req.headers.host ?? "127.0.0.1"}${prefix}`,
      path,
      installation: caller.kind === "installation" ? caller.id : undefined,
    };
    let result = refuse(caller, method, path);
    const failure = result
      ? undefined
      : failures.find((f) => f.method === method && f.path.test(path));
    if (failure) {
      failure.times = (failure.times ?? 1) - 1;
      if (failure.times <= 0) failures.splice(failures.indexOf(failure), 1);
    }
    for (const [routeMethod, pattern, handler] of routes) {
      if (result || (failure && !failure.applied)) break;
      const match = method === routeMethod ? pattern.exec(path) : null;
      if (match)
        result = handler(match, body, url.searchParams, String(req.headers.accept ?? ""), context);
    }
    if (failure) {
      result = {
        status: failure.status,
        body: failure.body ?? { message: "injected failure" },
        headers: failure.headers ?? {},
      };
    }
    result ??= { status: 404, body: { message: `Not Found (stand-in has no ${method} ${path})` } };

    const payload =
      result.raw ?? (result.status === 204 ? "" : JSON.stringify(result.body ?? null));
    const headers: Record<string, string> = {
      "content-type":
        result.raw !== undefined
          ? "application/vnd.github.raw; charset=utf-8"
          : "application/json; charset=utf-8",
      ...result.headers,
    };
    let status = result.status;
    if (method === "GET" && status === 200) {
      headers.etag = `W/"${createHash("sha1").update(payload).digest("hex")}"`;
      if (req.headers["if-none-match"] === headers.etag) status = 304;
    }
    const token = req.headers.authorization ?? "anonymous";
    // GitHub does not count 304s against the primary rate limit.
    if (status !== 304 && !result.headers?.["x-ratelimit-remaining"])
      used.set(token, (used.get(token) ?? 0) + 1);
    const rate = {
      "x-ratelimit-limit": String(limit),
      "x-ratelimit-remaining": String(Math.max(0, limit - (used.get(token) ?? 0))),
      "x-ratelimit-used": String(used.get(token) ?? 0),
      "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
      "x-ratelimit-resource": "core",
      ...pick(result.headers, /^x-ratelimit-/),
    };
    lastRateLimit.set(token, rate);
    requests.push({
      method,
      path,
      query: url.search,
      body,
      authorization: req.headers.authorization,
      status,
      at: Date.now(),
      installation: caller.kind === "installation" ? caller.id : undefined,
    });
    return { status, headers: { ...headers, ...rate }, payload: status === 304 ? "" : payload };
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    host: `127.0.0.1:${port}`,
    requests,
    files,
    labels,
    issues,
    comments,
    pulls,
    comparisons,
    reviews,
    reactions,
    hookDeliveries,
    lastRateLimit,
    tokens,
    setFile(repo, path, text) {
      const key = repoKey(files, repo);
      const repoFiles = files.get(key) ?? new Map<string, string>();
      if (text === undefined) repoFiles.delete(path);
      else repoFiles.set(path, text);
      files.set(key, repoFiles);
    },
    setPull(repo, pull) {
      pulls.set(repoKey(pulls, `${repo}#${pull.number}`), pull);
      const key = repoKey(issues, `${repo}#${pull.number}`);
      issues.set(key, {
        number: pull.number,
        title: pull.title,
        body: pull.body,
        state: pull.state,
        user: { ...pull.user },
        labels: issues.get(key)?.labels ?? [],
        pull_request: {
          url: `${url}/repos/${repo}/pulls/${pull.number}`,
          html_url: `https://github.com/${repo}/pull/${pull.number}`,
          diff_url: `https://github.com/${repo}/pull/${pull.number}.diff`,
          patch_url: `https://github.com/${repo}/pull/${pull.number}.patch`,
        },
      });
    },
    setComparison(repo, base, head, comparison) {
      comparisons.set(`${repo}:${base}...${head}`, comparison);
    },
    addComment(repo, number, { body, login, type = "User", created_at }) {
      const key = commentsKey(repo, number);
      const at = created_at ?? now();
      const comment: StandInComment = {
        id: nextId++,
        body,
        user: { login, type },
        created_at: at,
        updated_at: at,
      };
      comments.set(key, [...(comments.get(key) ?? []), comment]);
      return comment;
    },
    failNext(failure) {
      failures.push({ ...failure });
    },
    writes: () => requests.filter((r) => r.method !== "GET" && !r.path.endsWith("/access_tokens")),
    count: (method, path) =>
      requests.filter(
        (r) =>
          r.method === method && (typeof path === "string" ? r.path === path : path.test(r.path)),
      ).length,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function pick(
  headers: Record<string, string> | undefined,
  pattern: RegExp,
): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => pattern.test(name)));
}

function labelName(label: StandInLabel): string {
  return typeof label === "string" ? label : label.name;
}

/** Repository names are case-insensitive on GitHub. */
function sameRepo(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** The map's existing key that equals `key` but for case, or `key` itself. */
function repoKey(map: Map<string, unknown>, key: string): string {
  if (map.has(key)) return key;
  const lower = key.toLowerCase();
  for (const existing of map.keys()) if (existing.toLowerCase() === lower) return existing;
  return key;
}

function clamp(value: string | null, fallback: number, max: number): number {
  const n = Number.parseInt(value ?? "", 10);
  return Number.isFinite(n) && n >= 1 ? Math.min(n, max) : fallback;
}

interface ParsedSearch {
  words: string[];
  repos: string[];
  /** `org:` and `user:` qualifiers. */
  owners: string[];
  labels: string[];
  state: string | undefined;
  kind: "issue" | "pr" | undefined;
}

/** Splits a search query into free words (or quoted phrases) and the qualifiers it knows. */
function parseSearch(q: string): ParsedSearch {
  const parsed: ParsedSearch = {
    words: [],
    repos: [],
    owners: [],
    labels: [],
    state: undefined,
    kind: undefined,
  };
  for (const [, qualifier, value, phrase, word] of q.matchAll(
    /(-?[a-z-]+):("[^"]*"|\S+)|"([^"]*)"|(\S+)/gi,
  )) {
    if (phrase !== undefined || word !== undefined) {
      const text = (phrase ?? word ?? "").toLowerCase().trim();
      if (text) parsed.words.push(text);
      continue;
    }
    const v = (value ?? "").replace(/^"|"$/g, "").toLowerCase();
    switch (qualifier?.toLowerCase()) {
      case "repo":
        parsed.repos.push(v);
        break;
      case "org":
      case "user":
        parsed.owners.push(v);
        break;
      case "state":
        parsed.state = v;
        break;
      case "is":
        if (v === "open" || v === "closed") parsed.state = v;
        else if (v === "issue") parsed.kind = "issue";
        else if (v === "pr" || v === "pull-request") parsed.kind = "pr";
        break;
      case "type":
        parsed.kind = v === "issue" ? "issue" : v === "pr" ? "pr" : parsed.kind;
        break;
      case "label":
        parsed.labels.push(v);
        break;
      default:
        // Other qualifiers (in:, sort:, author:, negations…) narrow nothing here.
        break;
    }
  }
  return parsed;
}

/**
 * Why GitHub would refuse an inline review comment, or undefined: its path must be one of the pull
 * request's files, and its lines (or its position) on the file's diff, a range within one hunk.
 * GitHub's wording for a line off the diff is "Line could not be resolved"; the stand-in uses it
 * for every line it cannot place.
 */
function unresolved(pull: StandInPull, comment: StandInReviewComment): string | undefined {
  const file = pull.files.find((f) => f.filename === comment.path);
  if (!file) return "Path could not be resolved";
  const diff = diffLines(file.patch ?? "");
  const unplaced = "Line could not be resolved";
  if (comment.line === undefined) {
    const { position } = comment;
    return position === undefined || (position >= 1 && position <= diff.positions)
      ? undefined
      : unplaced;
  }
  const hunkOf = (line: number, side = "RIGHT") =>
    (side === "LEFT" ? diff.left : diff.right).get(line);
  const hunk = hunkOf(comment.line, comment.side);
  if (hunk === undefined) return unplaced;
  if (comment.start_line === undefined) return undefined;
  const startHunk = hunkOf(comment.start_line, comment.start_side ?? comment.side);
  return startHunk === hunk && comment.start_line < comment.line ? undefined : unplaced;
}

/**
 * The lines a unified diff shows, by side, each with the hunk it is in; and how many positions
 * the diff has: its lines below the first hunk header, later hunk headers included.
 */
function diffLines(patch: string) {
  const right = new Map<number, number>();
  const left = new Map<number, number>();
  let oldLine = 0;
  let newLine = 0;
  let hunk = -1;
  let positions = -1;
  for (const line of patch ? patch.replace(/\n$/, "").split("\n") : []) {
    positions++;
    const header = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (header) {
      oldLine = Number(header[1]);
      newLine = Number(header[2]);
      hunk++;
    } else if (line.startsWith("+")) right.set(newLine++, hunk);
    else if (line.startsWith("-")) left.set(oldLine++, hunk);
    // "\ No newline at end of file" is neither side's line.
    else if (!line.startsWith("\\")) {
      right.set(newLine++, hunk);
      left.set(oldLine++, hunk);
    }
  }
  return { right, left, positions: Math.max(0, positions) };
}

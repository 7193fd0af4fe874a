import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small in-process GitHub REST API for end-to-end runs and benchmarks: enough for Talos to
 * authenticate, read repositories, config, labels and issues, react and comment. It serves both
 * `/` and GHES's `/api/v3` prefix, answers conditional GETs with 304, sends rate-limit headers
 * per token (304s are free, as on GitHub), keeps what was written, records every request, and
 * can be told to fail a request.
 */
export interface StandInRequest {
  method: string;
  path: string;
  query: string;
  body: unknown;
  authorization: string | undefined;
  status: number;
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

export interface InjectedFailure {
  method: string;
  path: RegExp;
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** How many matching requests fail (default 1). */
  times?: number;
}

export interface GitHubStandIn {
  url: string;
  /** The value for GHE_HOST (host:port); use with GHE_PROTOCOL=http. */
  host: string;
  requests: StandInRequest[];
  /** `owner/repo` → path → file text. */
  files: Map<string, Map<string, string>>;
  /** `owner/repo` → label names. */
  labels: Map<string, string[]>;
  /** `owner/repo#number` → issue. */
  issues: Map<string, StandInIssue>;
  /** `owner/repo#number` → comments. */
  comments: Map<string, StandInComment[]>;
  reactions: Array<{ repo: string; commentId: number; content: string }>;
  /** The rate-limit headers of the last response, per token. */
  lastRateLimit: Map<string, Record<string, string>>;
  setFile(repo: string, path: string, text: string | undefined): void;
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
}

interface RouteResult {
  status: number;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

type Route = (
  match: RegExpMatchArray,
  body: unknown,
  query: URLSearchParams,
  accept: string,
) => RouteResult;

export async function startGitHubStandIn(options: StandInOptions = {}): Promise<GitHubStandIn> {
  const slug = options.slug ?? "talos-bot";
  const botLogin = `${slug}[bot]`;
  const limit = options.rateLimit ?? 5000;
  const requests: StandInRequest[] = [];
  const files = new Map<string, Map<string, string>>();
  const labels = new Map<string, string[]>();
  const issues = new Map<string, StandInIssue>();
  const comments = new Map<string, StandInComment[]>();
  const reactions: GitHubStandIn["reactions"] = [];
  const used = new Map<string, number>();
  const lastRateLimit = new Map<string, Record<string, string>>();
  const failures: InjectedFailure[] = [];
  let nextId = 5_000_000;
  let tick = 0;
  // Comment times must grow, to the second as on GitHub; a counter keeps runs repeatable.
  const now = () => new Date(Date.UTC(2026, 10, 24, 12, 0, 0) + 1000 * tick++).toISOString();
  const notFound: RouteResult = { status: 404, body: { message: "Not Found" } };
  const repoOf = (m: RegExpMatchArray) => `${m[1]}/${m[2]}`;

  const routes: Array<[string, RegExp, Route]> = [
    [
      "GET",
      /^\/app$/,
      () => ({ status: 200, body: { id: options.appId ?? 1, slug, name: "Talos" } }),
    ],
    [
      "POST",
      /^\/app\/installations\/(\d+)\/access_tokens$/,
      (m) => ({
        status: 201,
        body: { token: `ghs_standin${m[1]}token000000000000`, expires_at: "2999-01-01T00:00:00Z" },
      }),
    ],
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
      (m) => ({
        status: 200,
        body: (labels.get(repoOf(m)) ?? []).map((name, i) => ({
          id: i + 1,
          name,
          description: null,
        })),
      }),
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/,
      (m, _body, _query, accept) => {
        const path = decodeURIComponent(m[3] ?? "");
        const text = files.get(repoOf(m))?.get(path);
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
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/,
      (m) => {
        const issue = issues.get(`${repoOf(m)}#${m[3]}`);
        return issue
          ? {
              status: 200,
              body: { ...issue, html_url: `https://github.com/${repoOf(m)}/issues/${m[3]}` },
            }
          : notFound;
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      (m, _body, query) => {
        const since = query.get("since");
        const list = comments.get(`${repoOf(m)}#${m[3]}`) ?? [];
        return { status: 200, body: list.filter((c) => !since || c.updated_at >= since) };
      },
    ],
    [
      "POST",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      (m, body) => {
        const key = `${repoOf(m)}#${m[3]}`;
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
        for (const list of comments.values()) {
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
        const issue = issues.get(`${repoOf(m)}#${m[3]}`);
        const added = (body as { labels: string[] }).labels;
        if (issue) issue.labels.push(...added.map((name) => ({ name })));
        return { status: 200, body: added.map((name) => ({ name })) };
      },
    ],
  ];

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
    const path = url.pathname.replace(/^\/api\/v3/, "");
    const method = req.method ?? "GET";
    const body = text ? (JSON.parse(text) as unknown) : null;
    let result: RouteResult | undefined;
    const failure = failures.find((f) => f.method === method && f.path.test(path));
    if (failure) {
      failure.times = (failure.times ?? 1) - 1;
      if (failure.times <= 0) failures.splice(failures.indexOf(failure), 1);
      result = {
        status: failure.status,
        body: failure.body ?? { message: "injected failure" },
        headers: failure.headers ?? {},
      };
    }
    for (const [routeMethod, pattern, handler] of routes) {
      if (result) break;
      const match = method === routeMethod ? pattern.exec(path) : null;
      if (match) result = handler(match, body, url.searchParams, String(req.headers.accept ?? ""));
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
    });
    return { status, headers: { ...headers, ...rate }, payload: status === 304 ? "" : payload };
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    files,
    labels,
    issues,
    comments,
    reactions,
    lastRateLimit,
    setFile(repo, path, text) {
      const repoFiles = files.get(repo) ?? new Map<string, string>();
      if (text === undefined) repoFiles.delete(path);
      else repoFiles.set(path, text);
      files.set(repo, repoFiles);
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

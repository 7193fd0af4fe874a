import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small in-process GitHub API for end-to-end runs: enough of the REST API for Talos to
 * authenticate, read config, react and comment. It serves both `/` and GHES's `/api/v3` prefix,
 * keeps what was written, and records every request.
 */
export interface StandInRequest {
  method: string;
  path: string;
  body: unknown;
  authorization: string | undefined;
}

export interface StandInComment {
  id: number;
  body: string;
  user: { login: string; type: string };
  created_at: string;
  updated_at: string;
}

export interface GitHubStandIn {
  url: string;
  /** The value for GHE_HOST (host:port); use with GHE_PROTOCOL=http. */
  host: string;
  requests: StandInRequest[];
  /** `owner/repo` → path → file text. */
  files: Map<string, Map<string, string>>;
  /** `owner/repo#number` → comments. */
  comments: Map<string, StandInComment[]>;
  reactions: Array<{ repo: string; commentId: number; content: string }>;
  writes(): StandInRequest[];
  close(): Promise<void>;
}

export interface StandInOptions {
  slug?: string;
  appId?: number;
}

type Route = (
  match: RegExpMatchArray,
  body: unknown,
  req: IncomingMessage,
) => { status: number; body?: unknown; raw?: string };

export async function startGitHubStandIn(options: StandInOptions = {}): Promise<GitHubStandIn> {
  const slug = options.slug ?? "talos-bot";
  const botLogin = `${slug}[bot]`;
  const requests: StandInRequest[] = [];
  const files = new Map<string, Map<string, string>>();
  const comments = new Map<string, StandInComment[]>();
  const reactions: GitHubStandIn["reactions"] = [];
  let nextId = 5_000_000;
  // GitHub orders comment times to the second; a fixed clock keeps runs repeatable.
  const now = () => new Date(Date.UTC(2026, 10, 24, 12, 0, nextId % 60)).toISOString();

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
      /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/,
      (m) => {
        const text = files.get(`${m[1]}/${m[2]}`)?.get(decodeURIComponent(m[3] ?? ""));
        return text === undefined
          ? { status: 404, body: { message: "Not Found" } }
          : { status: 200, raw: text };
      },
    ],
    [
      "GET",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      (m, _body, req) => {
        const since = new URL(req.url ?? "/", "http://x").searchParams.get("since");
        const list = comments.get(`${m[1]}/${m[2]}#${m[3]}`) ?? [];
        return { status: 200, body: list.filter((c) => !since || c.updated_at >= since) };
      },
    ],
    [
      "POST",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      (m, body) => {
        const key = `${m[1]}/${m[2]}#${m[3]}`;
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
        return { status: 404, body: { message: "Not Found" } };
      },
    ],
    [
      "POST",
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)\/reactions$/,
      (m, body) => {
        reactions.push({
          repo: `${m[1]}/${m[2]}`,
          commentId: Number(m[3]),
          content: (body as { content: string }).content,
        });
        return {
          status: 201,
          body: { id: nextId++, content: (body as { content: string }).content },
        };
      },
    ],
  ];

  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk: Buffer) => (text += chunk.toString()));
    req.on("end", () => respond(req, res, text));
  });

  function respond(req: IncomingMessage, res: ServerResponse, text: string) {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const path = url.pathname.replace(/^\/api\/v3/, "");
    const method = req.method ?? "GET";
    const body = text ? (JSON.parse(text) as unknown) : null;
    requests.push({ method, path, body, authorization: req.headers.authorization });
    for (const [routeMethod, pattern, route] of routes) {
      const match = method === routeMethod ? pattern.exec(path) : null;
      if (!match) continue;
      const result = route(match, body, req);
      if (result.raw !== undefined) {
        res.writeHead(result.status, {
          "content-type": "application/vnd.github.raw; charset=utf-8",
        });
        res.end(result.raw);
      } else {
        res.writeHead(result.status, { "content-type": "application/json; charset=utf-8" });
        res.end(JSON.stringify(result.body ?? null));
      }
      return;
    }
    res.writeHead(404, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify({ message: `Not Found (stand-in has no ${method} ${path})` }));
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    files,
    comments,
    reactions,
    writes: () => requests.filter((r) => r.method !== "GET" && !r.path.endsWith("/access_tokens")),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

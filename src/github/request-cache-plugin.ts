import type { Octokit, OctokitOptions } from "@octokit/core";
import { RequestError } from "@octokit/request-error";
import { REPO_CONFIG_PATH } from "../config.js";
import type { CacheEntry, CacheKind, CachedResponse, GitHubCache } from "./github-cache.js";

type Describe = (match: RegExpMatchArray) => { kind: CacheKind; subject?: string | undefined };

/**
 * The reads worth caching, matched on the request's path (paginated calls arrive as full URLs,
 * not route templates): their kind, and the object they are about. Later pages of a list come
 * through `Link` headers as `/repositories/{id}/…` and are not cached.
 */
const CACHEABLE: Array<[RegExp, Describe]> = [
  [/^\/repos\/([^/]+)\/([^/]+)$/, () => ({ kind: "repo" })],
  [
    /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/,
    (m) => ({ kind: decodeURIComponent(m[3] ?? "") === REPO_CONFIG_PATH ? "config" : "file" }),
  ],
  [/^\/repos\/([^/]+)\/([^/]+)\/labels$/, () => ({ kind: "labels" })],
  [
    /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/,
    (m) => ({ kind: "permission", subject: m[3] }),
  ],
  [/^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/, (m) => ({ kind: "issue", subject: m[3] })],
  [/^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/, (m) => ({ kind: "pull", subject: m[3] })],
];

function classify(url: string) {
  // GitHub Enterprise Server serves the API under /api/v3.
  const path = new URL(url).pathname.replace(/^\/api\/v3(?=\/)/, "");
  for (const [pattern, describe] of CACHEABLE) {
    const match = pattern.exec(path);
    if (!match) continue;
    const { kind, subject } = describe(match);
    return {
      repo: decodeURIComponent(`${match[1]}/${match[2]}`).toLowerCase(),
      kind,
      subject: subject === undefined ? undefined : decodeURIComponent(subject).toLowerCase(),
    };
  }
  return undefined;
}

export interface RequestCachePluginOptions {
  talos?: { cache?: GitHubCache | undefined; installation: string };
}

/**
 * An Octokit plugin that serves cacheable GETs from the installation-scoped cache. A miss sends
 * the request; an expired entry is revalidated with `If-None-Match`, and GitHub's 304 (which does
 * not count against the primary rate limit) refreshes it. 404s are cached too, as errors.
 * Registered after the throttling and retry plugins, so a hit costs neither a queue slot nor a
 * metrics sample.
 */
export function requestCachePlugin(octokit: Octokit, options: OctokitOptions): void {
  const talos = (options as RequestCachePluginOptions).talos;
  const cache = talos?.cache;
  if (!talos || !cache) return;
  octokit.hook.wrap("request", async (request, requestOptions) => {
    if (requestOptions.method !== "GET") return request(requestOptions);
    const { url, headers } = octokit.request.endpoint.parse(requestOptions);
    const classified = classify(url);
    // `cache-control: no-cache` asks for GitHub's current answer (a pull request's head).
    if (!classified || headers["cache-control"] === "no-cache") return request(requestOptions);

    const scope = { installation: talos.installation, ...classified };
    const entry = await cache.fetch(scope, `GET ${url} ${headers.accept ?? ""}`, async (stale) => {
      const etag = stale?.type === "response" ? stale.etag : undefined;
      // The hook layers below are bound to this options object: change it, do not replace it.
      if (etag) requestOptions.headers["if-none-match"] = etag;
      try {
        const response = await request(requestOptions);
        const cached: CachedResponse = {
          status: response.status,
          url: response.url,
          headers: { ...response.headers } as CachedResponse["headers"],
          data: response.data,
        };
        return {
          type: "response",
          response: cached,
          etag: response.headers.etag,
        } satisfies CacheEntry;
      } catch (error) {
        const status = (error as { status?: number }).status;
        if (status === 304 && stale) return stale;
        if (status === 404) {
          const body = (error as RequestError).response?.data ?? null;
          return { type: "not-found", url, body } satisfies CacheEntry;
        }
        throw error;
      }
    });
    if (entry.type === "not-found") {
      throw new RequestError("Not Found", 404, {
        request: { method: "GET", url, headers: { ...headers } },
        response: { status: 404, url, headers: {}, data: entry.body },
      });
    }
    // Callers may change what they get; the cached copy must not change with it.
    return structuredClone(entry.response) as Awaited<ReturnType<typeof request>>;
  });
}

import type { Octokit, OctokitOptions } from "@octokit/core";
import { RequestError } from "@octokit/request-error";
import { REPO_CONFIG_PATH } from "../config.js";
import type { CacheEntry, CacheKind, CachedResponse, GitHubCache } from "./github-cache.js";

interface RequestOptions {
  method: string;
  url: string;
  headers: Record<string, string | number | undefined>;
  [parameter: string]: unknown;
}

/** The reads worth caching, by route template: what they are, and which parameter is their subject. */
const CACHEABLE: Record<
  string,
  { kind: CacheKind | ((o: RequestOptions) => CacheKind); subject?: string }
> = {
  "/repos/{owner}/{repo}": { kind: "repo" },
  "/repos/{owner}/{repo}/contents/{path}": {
    kind: (o) => (o.path === REPO_CONFIG_PATH ? "config" : "file"),
  },
  // Later pages arrive as full URLs (Link headers) and are not cached.
  "/repos/{owner}/{repo}/labels": { kind: "labels" },
  "/repos/{owner}/{repo}/collaborators/{username}/permission": {
    kind: "permission",
    subject: "username",
  },
  "/repos/{owner}/{repo}/issues/{issue_number}": { kind: "issue", subject: "issue_number" },
  "/repos/{owner}/{repo}/pulls/{pull_number}": { kind: "pull", subject: "pull_number" },
};

export interface RequestCachePluginOptions {
  talos?: { cache: GitHubCache; installation: string };
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
  if (!talos) return;
  octokit.hook.wrap("request", async (request, requestOptions) => {
    const routeOptions = requestOptions as unknown as RequestOptions;
    const cacheable = routeOptions.method === "GET" ? CACHEABLE[routeOptions.url] : undefined;
    const owner = routeOptions.owner;
    const repo = routeOptions.repo;
    if (!cacheable || typeof owner !== "string" || typeof repo !== "string")
      return request(requestOptions);

    const kind =
      typeof cacheable.kind === "function" ? cacheable.kind(routeOptions) : cacheable.kind;
    const subject = cacheable.subject
      ? String(routeOptions[cacheable.subject]).toLowerCase()
      : undefined;
    const { url, headers } = octokit.request.endpoint.parse(requestOptions);
    const scope = {
      installation: talos.installation,
      repo: `${owner}/${repo}`.toLowerCase(),
      kind,
      subject,
    };
    const entry = await talos.cache.fetch(
      scope,
      `GET ${url} ${headers.accept ?? ""}`,
      async (stale) => {
        const etag = stale?.type === "response" ? stale.etag : undefined;
        try {
          const response = await request(
            etag
              ? { ...requestOptions, headers: { ...requestOptions.headers, "if-none-match": etag } }
              : requestOptions,
          );
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
            return {
              type: "not-found",
              url,
              body: (error as RequestError).response?.data ?? null,
            } satisfies CacheEntry;
          }
          throw error;
        }
      },
    );
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

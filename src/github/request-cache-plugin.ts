import type { Octokit, OctokitOptions } from "@octokit/core";
import { RequestError } from "@octokit/request-error";
import { REPO_CONFIG_PATH } from "../config.js";
import type {
  CacheEntry,
  CacheKind,
  CachedResponse,
  EntryLoader,
  EvictionScope,
  GitHubCache,
} from "./github-cache.js";

type Describe = (
  match: RegExpMatchArray,
  ref: string | null,
) => { kind: CacheKind; subject?: string | undefined };

/**
 * The reads worth caching, matched on the request's path (paginated calls arrive as full URLs,
 * not route templates): their kind, and the object they are about. Later pages of a list come
 * through `Link` headers as `/repositories/{id}/…` and are not cached.
 */
const CACHEABLE: Array<[RegExp, Describe]> = [
  [/^\/repos\/([^/]+)\/([^/]+)$/, () => ({ kind: "repo" })],
  [
    /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/,
    // Read at a ref, the config file is a file like any other: a push to that ref evicts files,
    // and the config only for the default branch.
    (m, ref) => ({
      kind: decodeURIComponent(m[3] ?? "") === REPO_CONFIG_PATH && !ref ? "config" : "file",
    }),
  ],
  [/^\/repos\/([^/]+)\/([^/]+)\/labels$/, () => ({ kind: "labels" })],
  [
    /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/,
    (m) => ({ kind: "permission", subject: m[3] }),
  ],
  [/^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/, (m) => ({ kind: "issue", subject: m[3] })],
  [/^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/, (m) => ({ kind: "pull", subject: m[3] })],
];

// GitHub Enterprise Server serves the API under /api/v3.
const pathOf = (url: URL) => url.pathname.replace(/^\/api\/v3(?=\/)/, "");

function classify(url: string) {
  const parsed = new URL(url);
  const path = pathOf(parsed);
  for (const [pattern, describe] of CACHEABLE) {
    const match = pattern.exec(path);
    if (!match) continue;
    const { kind, subject } = describe(match, parsed.searchParams.get("ref"));
    return {
      repo: decodeURIComponent(`${match[1]}/${match[2]}`).toLowerCase(),
      kind,
      subject: subject === undefined ? undefined : decodeURIComponent(subject).toLowerCase(),
    };
  }
  return undefined;
}

/**
 * What a write may have changed, as evictions: what this installation reads next must be GitHub's
 * answer after the write, not one cached before it (the webhook saying so comes later). Comments
 * and reactions change nothing cached; an issue's or pull request's subresources change it (and
 * the repository's labels, when a label write may have created one); any other write to a
 * repository may change anything read of it. Writes outside `/repos/…` (installation tokens)
 * change no repository. `cache` tells which labels the repository has.
 */
function writeEvictions(
  { method, url, body }: { method: string; url: string; body?: unknown },
  installation: string,
  cache: GitHubCache,
): EvictionScope[] {
  const match = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(pathOf(new URL(url)));
  if (!match) return [];
  const repo = decodeURIComponent(`${match[1]}/${match[2]}`).toLowerCase();
  const rest = match[3] ?? "";
  if (/^\/(issues|pulls)\/comments(\/|$)/.test(rest)) return [];
  const thread = /^\/(?:issues|pulls)\/(\d+)(\/.*)?$/.exec(rest);
  // A reply or a reaction on a thread changes nothing Talos reads of it (its comment count):
  // every command's reply would otherwise cost the next command a read of the issue.
  if (thread && /^\/(comments|reactions)(\/|$)/.test(thread[2] ?? "")) return [];
  // A merge changes the base branch's files, and maybe the config: the fallback below.
  if (thread && thread[2] !== "/merge") {
    const subject = thread[1] ?? "";
    const scopes: EvictionScope[] = [
      { installation, repo, kind: "issue", subject },
      { installation, repo, kind: "pull", subject },
    ];
    const labels = { installation, repo, kind: "labels" } as const;
    // Removing a label never creates one.
    if (
      thread[2]?.startsWith("/labels") &&
      method !== "DELETE" &&
      mayCreateLabel(body, cache.peek(labels))
    )
      scopes.push(labels);
    return scopes;
  }
  if (/^\/labels(\/|$)/.test(rest)) {
    // A label's new name, color or description shows in every issue that carries it.
    return rest === "/labels"
      ? [{ installation, repo, kind: "labels" }]
      : [
          { installation, repo, kind: "labels" },
          { installation, repo, kind: "issue" },
          { installation, repo, kind: "pull" },
        ];
  }
  return [{ installation, repo }];
}

/**
 * Whether adding or setting an issue's labels (`body`) may have created a label: GitHub creates
 * one the repository lacks, names compared case-insensitively. Only when every label list held
 * (`lists`, the first pages read) shows every name sent did it create none; a body of another
 * shape, no list held, or one list without a name (maybe read before the write) may have.
 * Triage applies only existing labels, and had dropped the list with every label it applied.
 * Another instance's lists need no eviction then: a list missing an existing label predates its
 * creation, which the `label.created` webhook evicts everywhere.
 * https://docs.github.com/en/rest/issues/labels#add-labels-to-an-issue
 */
function mayCreateLabel(body: unknown, lists: CacheEntry[]): boolean {
  // `{ labels: [...] }`, or the list alone; a single label may be a string; a label, `{ name }`.
  const sent = isObject(body) && !Array.isArray(body) ? body.labels : body;
  const names = (Array.isArray(sent) ? sent : [sent]).map((label: unknown) =>
    isObject(label) ? label.name : label,
  );
  if (!names.every((name): name is string => typeof name === "string")) return true;
  if (names.length === 0) return false;
  if (lists.length === 0) return true;
  return lists.some((list) => {
    const data = list.type === "response" ? list.response.data : undefined;
    if (!Array.isArray(data)) return true;
    const known = new Set(
      data.map((label: unknown) => (isObject(label) ? String(label.name).toLowerCase() : "")),
    );
    return names.some((name) => !known.has(name.toLowerCase()));
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
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
    if (requestOptions.method === "HEAD") return request(requestOptions);
    if (requestOptions.method !== "GET") {
      try {
        return await request(requestOptions);
      } finally {
        // After the write, even a failed one (a 5xx or a timeout may come after GitHub made the
        // change): a read in flight meanwhile may have read the old state, and this drops it too.
        const write = octokit.request.endpoint.parse(requestOptions);
        for (const scope of writeEvictions(write, talos.installation, cache)) cache.evict(scope);
      }
    }
    const { url, headers } = octokit.request.endpoint.parse(requestOptions);
    const classified = classify(url);
    // `cache-control: no-cache` asks for GitHub's current answer (a pull request's head).
    if (!classified || headers["cache-control"] === "no-cache") return request(requestOptions);
    // `max-age=0` asks for it too, and keeps it for the reads after (see holdsRepository).
    const refresh = headers["cache-control"] === "max-age=0";

    const scope = { installation: talos.installation, ...classified };
    const load: EntryLoader = async (stale) => {
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
    };
    const entry = await cache.fetch(scope, `GET ${url} ${headers.accept ?? ""}`, load, { refresh });
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

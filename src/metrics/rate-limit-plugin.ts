import type { Octokit, OctokitOptions } from "@octokit/core";
import type { Logger } from "pino";
import { getClientLog, rateLimitWaitMs } from "../github/octokit.js";
import type { Metrics } from "./create-metrics.js";

type Headers = Record<string, string | number | undefined>;

interface RequestOptions {
  method: string;
  url: string;
}

/** Below this share of the limit, a structured warning is logged. */
const LOW_REMAINING_SHARE = 0.1;

/**
 * Rate-limit bookkeeping shared by every client of the process: the gauge per installation and
 * resource, and which of them are already below the warning threshold (so the warning is logged
 * when remaining drops under it, not on every response after). It forgets all of an
 * installation's series when it is uninstalled.
 */
export class RateLimitTracker {
  readonly #metrics: Metrics;
  readonly #low = new Set<string>();
  // Each installation's resources with a series, so that an uninstall can remove them.
  readonly #resources = new Map<string, Set<string>>();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  record(installation: string, headers: Headers | undefined, log: Logger): void {
    const limit = Number(headers?.["x-ratelimit-limit"]);
    const remaining = Number(headers?.["x-ratelimit-remaining"]);
    if (
      !Number.isFinite(limit) ||
      !Number.isFinite(remaining) ||
      headers?.["x-ratelimit-remaining"] === undefined
    )
      return;
    const resource = String(headers?.["x-ratelimit-resource"] ?? "core");
    const resources = this.#resources.get(installation) ?? new Set<string>();
    this.#resources.set(installation, resources.add(resource));
    this.#metrics.githubRateLimitRemaining.set({ installation, resource }, remaining);
    this.#metrics.githubRateLimitLimit.set({ installation, resource }, limit);
    const key = `${installation}/${resource}`;
    if (remaining < limit * LOW_REMAINING_SHARE) {
      if (this.#low.has(key)) return;
      this.#low.add(key);
      // Runs inside the request's hook: a missing or junk reset header (a proxy, a GitHub
      // Enterprise Server) must not throw RangeError from toISOString and fail the request.
      const reset = new Date(Number(headers?.["x-ratelimit-reset"]) * 1000);
      log.warn(
        {
          installation,
          resource,
          limit,
          remaining,
          used: Number(headers?.["x-ratelimit-used"]),
          reset: Number.isNaN(reset.getTime()) ? undefined : reset.toISOString(),
        },
        "GitHub rate limit below 10% of the limit",
      );
    } else {
      this.#low.delete(key);
    }
  }

  /**
   * An uninstalled installation's series go, its rate-limit gauges and its model token counts
   * (the only other metric by installation): kept, they would pile up with every install and
   * uninstall of a public app until a restart.
   */
  async forget(installation: string): Promise<void> {
    for (const resource of this.#resources.get(installation) ?? []) {
      this.#metrics.githubRateLimitRemaining.remove({ installation, resource });
      this.#metrics.githubRateLimitLimit.remove({ installation, resource });
      this.#low.delete(`${installation}/${resource}`);
    }
    this.#resources.delete(installation);
    // Counted by run-agent, not through here: the counter's own series say which kinds were used.
    const tokens = this.#metrics.llmTokens;
    for (const { labels } of (await tokens.get()).values)
      if (labels.installation === installation) tokens.remove(labels);
  }
}

export interface RateLimitPluginOptions {
  talos?: { metrics: Metrics; rateLimits: RateLimitTracker; installation: string };
}

/**
 * An Octokit plugin that records every response's `x-ratelimit-*` headers per installation, and
 * request counts and durations by route template, through `hook.after` and `hook.error`.
 */
export function rateLimitPlugin(octokit: Octokit, options: OctokitOptions): void {
  const talos = (options as RateLimitPluginOptions).talos;
  if (!talos) return;
  const started = new WeakMap<object, number>();
  const finish = (
    request: RequestOptions,
    status: number | string,
    headers: Headers | undefined,
  ) => {
    const labels = { method: request.method, route: toRouteTemplate(request.url) };
    const start = started.get(request);
    if (start !== undefined) {
      talos.metrics.githubRequestDuration.observe(labels, (performance.now() - start) / 1000);
    }
    talos.metrics.githubRequests.inc({ ...labels, status: String(status) });
    talos.rateLimits.record(talos.installation, headers, getClientLog(octokit));
  };
  octokit.hook.before("request", (request) => {
    started.set(request, performance.now());
  });
  octokit.hook.after("request", (response, request) => {
    finish(request, response.status, response.headers as Headers);
  });
  octokit.hook.error("request", (error, request) => {
    const failure = error as { status?: number; response?: { headers?: Headers } };
    finish(request, failure.status ?? "error", failure.response?.headers);
    const throttled = (options as { throttle?: { enabled?: boolean } }).throttle?.enabled !== false;
    if (!(throttled && seenByThrottling(error))) noteUnseenLimit(error, request);
    throw error;
  });

  /**
   * A rate limit the throttling plugin passed on without its handlers (which count and log each
   * one): counted and logged here the same way, so an "abuse detection" 403 or a bare
   * `retry-after` shows on the dashboard too. It is not retried here; its caller may wait.
   */
  const noteUnseenLimit = (error: unknown, request: RequestOptions) => {
    const waitMs = rateLimitWaitMs(error, Date.now());
    if (waitMs === undefined) return;
    const message = error instanceof Error ? error.message.slice(0, 500) : "";
    const kind = /\bAPI rate limit\b/i.test(message) ? "primary" : "secondary";
    talos.metrics.githubThrottled.inc({ kind });
    getClientLog(octokit).warn(
      {
        kind,
        retryAfter: Math.ceil(waitMs / 1000),
        method: request.method,
        route: toRouteTemplate(request.url),
        installation: talos.installation,
        retry: false,
      },
      `GitHub ${kind} rate limit hit`,
    );
  };
}

/**
 * Whether @octokit/plugin-throttling (v11) handled this refusal as a rate limit, as its `failed`
 * handler tells them: "secondary rate" in the message, a spent primary limit, or GraphQL's
 * RATE_LIMITED. Those went through its onRateLimit or onSecondaryRateLimit.
 */
function seenByThrottling(error: unknown): boolean {
  const failure = error as {
    status?: number;
    message?: unknown;
    response?: { headers?: Headers; data?: { errors?: unknown } };
  };
  if (failure.status !== 403 && failure.status !== 429) return false;
  if (/\bsecondary rate\b/i.test(String(failure.message ?? ""))) return true;
  if (failure.response?.headers?.["x-ratelimit-remaining"] === "0") return true;
  const errors = failure.response?.data?.errors;
  return (
    Array.isArray(errors) && errors.some((e) => (e as { type?: unknown })?.type === "RATE_LIMITED")
  );
}

/**
 * The route template keeps label values bounded. Octokit passes the template
 * (`/repos/{owner}/{repo}/issues`) except for full URLs such as pagination links, where ids and
 * names are folded into placeholders.
 */
export function toRouteTemplate(url: string): string {
  if (url.includes("{")) return url.split("?")[0] ?? url;
  const path =
    url
      .replace(/^https?:\/\/[^/]+/, "")
      .replace(/^\/api\/v3/, "")
      .split("?")[0] ?? "";
  return path
    .replace(/^\/repos\/[^/]+\/[^/]+/, "/repos/{owner}/{repo}")
    .replace(/^\/repositories\/\d+/, "/repositories/{repository_id}")
    .replace(/\/contents\/.*$/, "/contents/{path}")
    .replace(
      /\/(issues|pulls|comments|installations)\/\d+(?=\/|$)/g,
      (_all, noun: string) => `/${noun}/{${PLACEHOLDERS[noun]}}`,
    )
    .replace(/\/\d+(?=\/|$)/g, "/{id}");
}

const PLACEHOLDERS: Record<string, string> = {
  issues: "issue_number",
  pulls: "pull_number",
  comments: "comment_id",
  installations: "installation_id",
};

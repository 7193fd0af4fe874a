import type { Octokit } from "@octokit/core";
import Bottleneck from "bottleneck";
import { ProbotOctokit } from "probot";
import { systemClock, type Clock } from "../clock.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { rateLimitPlugin, type RateLimitTracker } from "../metrics/rate-limit-plugin.js";
import type { GitHubCache } from "./github-cache.js";
import { getClientLog, retryAfterMsOf } from "./octokit.js";
import { configMemoPlugin, createConfigMemo } from "./config-memo-plugin.js";
import { requestCachePlugin } from "./request-cache-plugin.js";

export interface GitHubLimits {
  /** The longest wait for a rate limit (primary reset or secondary `retry-after`) worth retrying. */
  maxRetryWaitSeconds: number;
  /** Retries after a rate limit or a 5xx, per request. */
  maxRetries: number;
  /** Spacing of writes, and of writes that notify people (comments), per installation. */
  writeIntervalMs: number;
  notificationIntervalMs: number;
}

export interface OctokitClassOptions {
  /** Absent: no caching (the benchmark's naive baseline). */
  cache: GitHubCache | undefined;
  metrics: Metrics;
  /** The process's rate-limit series, which an uninstall prunes. */
  rateLimits: RateLimitTracker;
  limits: GitHubLimits;
  /** Tests switch throttling and retries off; production never does. */
  throttle?: boolean;
  retry?: boolean;
  /** How long an attempt may wait for GitHub's answer; tests shorten it. See REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  /** What a `retry-after` date is counted from (see withRetryAfterInSeconds). */
  clock?: Pick<Clock, "now">;
  /**
   * With REDIS_URL: the write queues' datastore, so that the spacing of an installation's writes
   * holds across every instance, and the prefix of their keys.
   */
  cluster?: { connection: Bottleneck.IORedisConnection; prefix: string } | undefined;
}

interface RequestOptions {
  method: string;
  url: string;
  request?: Record<string, unknown>;
}

// Creating content is not idempotent: a blind retry after a 5xx or a rate limit can post a
// second comment. Those requests are retried only by upsertReply, which first looks for the
// comment by its marker.
const CONTENT_CREATION = new Set([
  "POST /repos/{owner}/{repo}/issues",
  "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
  "POST /repos/{owner}/{repo}/pulls/{pull_number}/reviews",
  "POST /repos/{owner}/{repo}/pulls/{pull_number}/comments",
]);

export function isContentCreation(request: RequestOptions): boolean {
  return CONTENT_CREATION.has(`${request.method} ${request.url}`);
}

// Every 4xx is final to the retry plugin, 429 included: rate limits are the throttling plugin's
// (onLimit), which it wraps. Retried here too, a 429 the throttling gave up on (a wait past the
// bound, a primary reset an hour away) was sent again 1, 4 and 9 s later, and one it retried was
// retried again on top: the retry storm GitHub bans integrations for.
const DO_NOT_RETRY = Array.from({ length: 100 }, (_, i) => 400 + i);

/** Stops the retry plugin from re-sending content-creating requests; see CONTENT_CREATION. */
function contentCreationPolicy(octokit: Octokit): void {
  octokit.hook.before("request", (options) => {
    if (isContentCreation(options as RequestOptions))
      options.request = { ...options.request, retries: 0 };
  });
}

// GitHub stops working on any request after 10 s and answers with a "Server Error":
// https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#timeouts
// An attempt still unanswered long after that is on a dead connection, and by the time it is
// aborted GitHub is done with it: a look-up for a comment it may have created then finds it.
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * `retry-after` as the whole seconds it names. The throttling plugin reads it with `Number()`: an
 * HTTP date, or a header sent twice ("600, 600"), was NaN, so it waited its fallback minute and
 * sent the request again, minutes before GitHub allowed (found by a review). Read here as every
 * other caller reads it (retryAfterMsOf); one that is neither form is left as it came.
 */
function withRetryAfterInSeconds(headers: Headers, now: number): Headers {
  const value = headers.get("retry-after");
  if (value === null || /^\s*\d+\s*$/.test(value.slice(0, 100))) return headers;
  const ms = retryAfterMsOf(value, now);
  if (ms === undefined) return headers;
  const normalized = new Headers(headers);
  normalized.set("retry-after", String(Math.ceil(ms / 1000)));
  return normalized;
}

/** Statuses whose response has no body, which `new Response` refuses one for. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Aborts each attempt of a request (a retry gets its own) that GitHub has not answered whole
 * within `ms` of its being sent. The timer runs from the fetch, under the queues, so a write
 * waiting for its turn is not cut short. The body is read here, under the timer, because Octokit
 * reads a body cut short (a dropped connection, an abort) as empty data without an error: the
 * cache kept that `""` as a repository, and revived it at each 304 (found by a review), and a
 * body that stalled after its headers held the job for good. Here either is an error, retried
 * as a lost connection is. The request ends with the timer: whatever tries again (the retry
 * plugin, upsertReply, the job runner) never runs beside it.
 */
function abortUnanswered(ms: number, clock: Pick<Clock, "now">) {
  return (octokit: Octokit): void => {
    octokit.hook.wrap("request", (request, options) => {
      const send = options.request?.fetch as typeof fetch | undefined;
      options.request = {
        ...options.request,
        fetch: async (input: Parameters<typeof fetch>[0], init: RequestInit = {}) => {
          const deadline = new AbortController();
          const timer = setTimeout(() => {
            const message = `GitHub did not answer ${options.method} ${options.url} within ${ms} ms`;
            deadline.abort(new DOMException(message, "TimeoutError"));
          }, ms);
          const signal = init.signal
            ? AbortSignal.any([init.signal, deadline.signal])
            : deadline.signal;
          try {
            const response = await (send ?? globalThis.fetch)(input, { ...init, signal });
            const body = NULL_BODY_STATUSES.has(response.status)
              ? null
              : await response.arrayBuffer();
            const whole = new Response(body, {
              status: response.status,
              statusText: response.statusText,
              headers: withRetryAfterInSeconds(response.headers, clock.now()),
            });
            // Where GitHub's redirects led (a transferred repository): callers read it.
            Object.defineProperties(whole, {
              url: { value: response.url },
              redirected: { value: response.redirected },
            });
            return whole;
          } finally {
            clearTimeout(timer);
          }
        },
      };
      return request(options);
    });
  };
}

// What the throttling plugin gives its jobs when it queues through Redis itself.
const TURN_EXPIRATION_MS = 60_000;

/**
 * A queue in Redis counts a job as running until its process says it finished: one that died in
 * between would hold its installation's writes on every instance for good. Jobs in these queues
 * (the throttling plugin's empty ones, which only take a turn) therefore expire, as the plugin's
 * would with a `connection`. Queues that run requests must not: see createOctokitClass.
 */
function expireJobs(group: Bottleneck.Group, ms: number): Bottleneck.Group {
  group.on("created", (limiter) => {
    const defaults = limiter as unknown as { jobDefaults: Record<string, unknown> };
    defaults.jobDefaults = { ...defaults.jobDefaults, expiration: ms };
  });
  return group;
}

/**
 * Refuses the client's writes once `lease` is aborted: a shared queue's job whose lease this
 * instance lost, which another instance may run now. A write asked for then fails at once; one
 * already waiting in its installation's write queue (or retried) is checked again as it is sent,
 * by the fetch under every plugin. Reads go on.
 */
export function fenceWrites(octokit: Octokit, lease: AbortSignal): void {
  octokit.hook.wrap("request", async (request, options) => {
    if (options.method === "GET" || options.method === "HEAD") return request(options);
    lease.throwIfAborted();
    const send = options.request?.fetch as typeof fetch | undefined;
    options.request = {
      ...options.request,
      fetch: (...args: Parameters<typeof fetch>) => {
        lease.throwIfAborted();
        return (send ?? globalThis.fetch)(...args);
      },
    };
    return request(options);
  });
}

/**
 * The one place GitHub clients are configured: Probot's Octokit with the rate-limit metrics,
 * cache, request timeout and config memo plugins, explicit throttling and retry settings, and
 * write queues per installation. Plugins registered later wrap earlier ones, so a cache hit skips
 * throttling, retries and metrics, and the metrics see each request after its retries.
 */
export function createOctokitClass(options: OctokitClassOptions): typeof ProbotOctokit {
  const { cache, metrics, limits, rateLimits } = options;
  const configs = createConfigMemo();
  // Made once, with the cluster's datastore when there is one: whichever client is made first
  // (Probot's, the CLI's) must not decide that the spacing is this process's alone.
  const { cluster } = options;
  const shared = cluster ? { connection: cluster.connection } : {};
  const id = (name: string) => (cluster ? `${cluster.prefix}-${name}` : `talos-${name}`);
  const expireTurns = (group: Bottleneck.Group) =>
    cluster ? expireJobs(group, TURN_EXPIRATION_MS) : group;
  let queues: Record<"global" | "auth" | "search" | "write" | "notifications", Bottleneck.Group>;
  const getQueues = () =>
    (queues ??= {
      // Reads are limited per process, as the throttling plugin's own groups limit them (10 at
      // once, tokens one at a time, a search every 2 s). Through Redis each request cost a few
      // more round trips: 8 ms of CPU per `/talos ask` in the cluster bench (12.4 s → 10.0 s for
      // 300), for a limit (100 concurrent requests) that a few instances stay far below. Writes
      // are spaced across the cluster: those are what GitHub's secondary limits count.
      // A Group's `timeout` is how long an idle installation's queue (and its Redis keys) is kept,
      // not a limit on a job: requests are limited by abortUnanswered.
      global: new Bottleneck.Group({ id: id("global"), maxConcurrent: 10, timeout: 120_000 }),
      auth: new Bottleneck.Group({ id: id("auth"), maxConcurrent: 1, timeout: 120_000 }),
      search: new Bottleneck.Group({
        id: id("search"),
        maxConcurrent: 1,
        minTime: 2_000,
        timeout: 120_000,
      }),
      write: expireTurns(
        new Bottleneck.Group({
          id: id("write"),
          maxConcurrent: 1,
          minTime: limits.writeIntervalMs,
          timeout: 120_000,
          ...shared,
        }),
      ),
      notifications: expireTurns(
        new Bottleneck.Group({
          id: id("notifications"),
          maxConcurrent: 1,
          minTime: limits.notificationIntervalMs,
          timeout: 120_000,
          ...shared,
        }),
      ),
    });

  type Options = NonNullable<ConstructorParameters<typeof ProbotOctokit>[0]> & {
    throttle?: Record<string, unknown>;
    auth?: { installationId?: number | string; token?: string };
  };
  return ProbotOctokit.plugin(
    contentCreationPolicy,
    rateLimitPlugin,
    requestCachePlugin,
    abortUnanswered(options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, options.clock ?? systemClock),
    configMemoPlugin,
  ).defaults((o: Options) => {
    const installation = o.auth?.installationId
      ? String(o.auth.installationId)
      : o.auth?.token
        ? "token"
        : "app";
    const onLimit =
      (kind: "primary" | "secondary") =>
      (
        retryAfter: number,
        request: RequestOptions,
        octokit: Octokit,
        retryCount: number,
      ): boolean => {
        metrics.githubThrottled.inc({ kind });
        const retry =
          retryCount < limits.maxRetries &&
          retryAfter <= limits.maxRetryWaitSeconds &&
          !isContentCreation(request);
        getClientLog(octokit).warn(
          {
            kind,
            retryAfter,
            method: request.method,
            route: request.url,
            installation,
            retryCount,
            retry,
          },
          `GitHub ${kind} rate limit hit`,
        );
        return retry;
      };
    return {
      ...o,
      talos: { cache, metrics, rateLimits, installation, configs },
      retry: {
        enabled: options.retry !== false,
        retries: limits.maxRetries,
        doNotRetry: DO_NOT_RETRY,
      },
      throttle:
        options.throttle === false
          ? { ...o.throttle, enabled: false }
          : {
              ...o.throttle,
              // Probot's Redis connection (with REDIS_URL) would make the plugin give every job
              // a 60 s expiration, those that run the requests too: the job then fails while
              // its request goes on, and a retry could post a comment twice. The queues that
              // need one have it (expireJobs), and the requests a real timeout.
              connection: undefined,
              // Bottleneck queues are keyed by this id; per installation, so one busy installation
              // does not hold up another's writes.
              id: `talos-${installation}`,
              ...getQueues(),
              onRateLimit: onLimit("primary"),
              onSecondaryRateLimit: onLimit("secondary"),
            },
    };
  });
}

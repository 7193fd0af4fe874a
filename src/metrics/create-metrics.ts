import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Talos's Prometheus metrics, in a registry of their own (not prom-client's global one), so that
 * two app instances in one process, as in tests, never share series.
 */
export interface Metrics {
  registry: Registry;
  githubRequests: Counter<"method" | "route" | "status">;
  githubRequestDuration: Histogram<"method" | "route">;
  githubRateLimitRemaining: Gauge<"installation" | "resource">;
  githubRateLimitLimit: Gauge<"installation" | "resource">;
  githubThrottled: Counter<"kind">;
  cacheRequests: Counter<"kind" | "result">;
  cacheBytes: Gauge;
  llmTokens: Counter<"installation" | "kind" | "direction">;
  llmRequestDuration: Histogram<"outcome">;
  memoryAddDuration: Histogram;
  memoryFlushes: Counter;
  memoryFlushDuration: Histogram;
  memoryRecords: Gauge;
  memoryPendingRecords: Gauge;
  markdownFallbacks: Counter<"operation" | "reason">;
  jobs: Counter<"kind" | "outcome">;
  jobsRefused: Counter<"reason">;
  webhookRedeliveries: Counter<"outcome">;
  jobsQueued: Gauge;
  jobDuration: Histogram<"kind">;
  budgetRefusals: Counter<"scope">;
  reviewFiles: Histogram<"kind" | "outcome">;
  reviewComments: Counter<"outcome">;
  pullRequestRuns: Counter<"kind" | "outcome">;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    githubRequests: new Counter({
      name: "talos_github_requests_total",
      help: "GitHub API requests sent, by method, route template and response status",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    githubRequestDuration: new Histogram({
      name: "talos_github_request_duration_seconds",
      help: "GitHub API request duration as the client sees it, throttling waits included",
      labelNames: ["method", "route"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    githubRateLimitRemaining: new Gauge({
      name: "talos_github_rate_limit_remaining",
      help: "x-ratelimit-remaining from the last GitHub response, per installation and resource",
      labelNames: ["installation", "resource"],
      registers,
    }),
    // With the remaining count, the share left: the alert rules fire below 10%.
    githubRateLimitLimit: new Gauge({
      name: "talos_github_rate_limit_limit",
      help: "x-ratelimit-limit from the last GitHub response, per installation and resource",
      labelNames: ["installation", "resource"],
      registers,
    }),
    githubThrottled: new Counter({
      name: "talos_github_throttled_total",
      help: "GitHub rate limits hit, by kind (primary or secondary)",
      labelNames: ["kind"],
      registers,
    }),
    cacheRequests: new Counter({
      name: "talos_cache_requests_total",
      help: "Cacheable GitHub reads, by kind and by how they were served",
      labelNames: ["kind", "result"],
      registers,
    }),
    cacheBytes: new Gauge({
      name: "talos_cache_bytes",
      help: "Bytes the GitHub read cache holds, as the JSON length of its entries (bounded by TALOS_CACHE_MAX_MB)",
      registers,
    }),
    llmTokens: new Counter({
      name: "talos_llm_tokens_total",
      help: "Tokens the language model reported (or, where it reports none, estimated), by installation, kind of work (ask, summarize, triage, review, pr_summary, chat) and direction (input or output)",
      labelNames: ["installation", "kind", "direction"],
      registers,
    }),
    llmRequestDuration: new Histogram({
      name: "talos_llm_request_duration_seconds",
      help: "Language model call duration, retries included, by outcome (ok or error)",
      labelNames: ["outcome"],
      buckets: [0.25, 0.5, 1, 2, 5, 10, 20, 40, 80],
      registers,
    }),
    memoryAddDuration: new Histogram({
      name: "talos_memory_add_duration_seconds",
      help: "Time for a memory to become durable and searchable, embedding included",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    }),
    memoryFlushes: new Counter({
      name: "talos_memory_flushes_total",
      help: "Batches written from the memory log into the vectra index files",
      registers,
    }),
    memoryFlushDuration: new Histogram({
      name: "talos_memory_flush_duration_seconds",
      help: "Time to write one batch into the vectra index files",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    memoryRecords: new Gauge({
      name: "talos_memory_records",
      help: "Memories held by the open repository memories",
      registers,
    }),
    memoryPendingRecords: new Gauge({
      name: "talos_memory_pending_records",
      help: "Memories in the log that the vectra index files do not hold yet",
      registers,
    }),
    markdownFallbacks: new Counter({
      name: "talos_markdown_fallbacks_total",
      help: "Markdown parses of untrusted text treated as plain text, by operation (safe, command) and reason (deadline, error, unsafe)",
      labelNames: ["operation", "reason"],
      registers,
    }),
    jobs: new Counter({
      name: "talos_jobs_total",
      help: "Job runs, by handler kind and outcome (done, retry, parked, gone, lost: its lease went to another instance)",
      labelNames: ["kind", "outcome"],
      registers,
    }),
    jobsRefused: new Counter({
      name: "talos_jobs_refused_total",
      help: "Deliveries refused instead of journaled, by reason (queue-full, installation-full, stopping, error)",
      labelNames: ["reason"],
      registers,
    }),
    webhookRedeliveries: new Counter({
      name: "talos_webhook_redeliveries_total",
      help: "Deliveries missed while Talos was down, at start: asked for again (asked), refused by GitHub (refused), or left for the next start (left)",
      labelNames: ["outcome"],
      registers,
    }),
    jobsQueued: new Gauge({
      name: "talos_jobs_queued",
      help: "Jobs counted against TALOS_JOB_QUEUE_MAX: in the journal (waiting, running or parked), or with REDIS_URL in the shared queue (waiting, running or delayed)",
      registers,
    }),
    jobDuration: new Histogram({
      name: "talos_job_duration_seconds",
      help: "Time to run one job, model calls included",
      labelNames: ["kind"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    budgetRefusals: new Counter({
      name: "talos_budget_refusals_total",
      help: "Model calls refused because a daily token budget was spent, by scope (installation, repository, job)",
      labelNames: ["scope"],
      registers,
    }),
    reviewFiles: new Histogram({
      name: "talos_review_files",
      help: "Files per pull-request run (kind: review or pr_summary) by outcome: reviewed, or skipped (over the token budget, no patch, ignored, removed, beyond GitHub's 3,000)",
      labelNames: ["kind", "outcome"],
      buckets: [0, 1, 5, 10, 25, 50, 100, 300, 1000, 3000],
      registers,
    }),
    reviewComments: new Counter({
      name: "talos_review_comments_total",
      help: "Inline review comments the model proposed, by outcome: posted, or dropped (not_in_diff, unknown_file, range_spans_hunks, duplicate, over_limit, malformed; suggestion_dropped counts suggestions removed from kept comments)",
      labelNames: ["outcome"],
      registers,
    }),
    pullRequestRuns: new Counter({
      name: "talos_pull_request_runs_total",
      help: "Pull-request summary and review runs (kind) by outcome: posted, current (already at the head: a burst collapsed), stale (the head moved during the run), closed, over-budget (the hour's automation budget), token-budget (the day's token budget), and others",
      labelNames: ["kind", "outcome"],
      registers,
    }),
  };
}

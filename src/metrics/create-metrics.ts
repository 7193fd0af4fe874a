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
  githubThrottled: Counter<"kind">;
  cacheRequests: Counter<"kind" | "result">;
  llmTokens: Counter<"kind">;
  llmRequestDuration: Histogram<"outcome">;
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
    llmTokens: new Counter({
      name: "talos_llm_tokens_total",
      help: "Tokens the language model reported (or, where it reports none, estimated), by kind: input or output",
      labelNames: ["kind"],
      registers,
    }),
    llmRequestDuration: new Histogram({
      name: "talos_llm_request_duration_seconds",
      help: "Language model call duration, retries included, by outcome (ok or error)",
      labelNames: ["outcome"],
      buckets: [0.25, 0.5, 1, 2, 5, 10, 20, 40, 80],
      registers,
    }),
  };
}

import { pino } from "pino";
import { cleanUntrustedText, createFence } from "../src/agent/untrusted-text.js";
import { hasCommandCandidate, parseCommand } from "../src/commands/parse-command.js";
import { createSecretScrubber } from "../src/create-logger.js";
import { stripSearchQualifiers } from "../src/github/create-repo-client.js";
import { checkSafeMarkdown } from "../src/markdown/check-safe-markdown.js";
import { createMarkdownParser } from "../src/markdown/create-markdown-parser.js";
import { MarkdownWorkers } from "../src/markdown/markdown-workers.js";
import { toSafeMarkdown, toSafePlainText } from "../src/markdown/to-safe-markdown.js";
import { createLocalEmbedder } from "../src/memory/local-embedder.js";
import { measureGrowth, type Growth } from "../test/helpers/hostile-input.js";
import { runHostileThread } from "../test/helpers/hostile-server.js";
import { buildDist } from "../test/helpers/server-process.js";
import { printTable, summarize } from "./stats.js";

// The bar of the security issue: no function over user text blocks the event loop this long on
// 65,536 characters (GitHub's comment limit), and /healthz answers within this throughout.
const TARGET_MS = 50;
const HEALTH_TARGET_MS = 200;
const SCRUB_SECRETS = ["sk-live-secret-key-1234567890"];
const OPTIONS = { repo: "acme/widgets", references: [1] };

interface Subject {
  name: string;
  /** Where it runs on the server: on the event loop, or in a Markdown worker. */
  where: "event loop" | "worker";
  run: (text: string) => unknown;
  /** The original Talos's version of the same job, where it had one. */
  naive?: (text: string) => unknown;
}

export interface HostileBenchOptions {
  json: boolean;
  /** The larger input length; default 65,536. Tests pass less. */
  length?: number;
  /** Start the server for the /healthz part (default true). */
  server?: boolean;
}

export async function runHostileBench(options: HostileBenchOptions) {
  const length = options.length ?? 65_536;
  const parser = createMarkdownParser();
  const workers = new MarkdownWorkers({ deadlineMs: 30_000, log: pino({ level: "silent" }) });
  const embedder = createLocalEmbedder();
  const fence = createFence(createSecretScrubber(SCRUB_SECRETS));
  const subjects: Subject[] = [
    {
      name: "cleanUntrustedText",
      where: "event loop",
      run: cleanUntrustedText,
      naive: naiveCleanUntrustedText,
    },
    {
      name: "secret scrubber",
      where: "event loop",
      run: createSecretScrubber(SCRUB_SECRETS),
      naive: naiveScrub,
    },
    { name: "fence.wrap", where: "event loop", run: (t) => fence.wrap("comment", t) },
    { name: "hasCommandCandidate", where: "event loop", run: (t) => hasCommandCandidate(t) },
    { name: "stripSearchQualifiers", where: "event loop", run: stripSearchQualifiers },
    { name: "local embedder", where: "event loop", run: (t) => embedder.embed([t]) },
    {
      name: "toSafePlainText (fallback)",
      where: "event loop",
      run: (t) => toSafePlainText(t, OPTIONS),
    },
    {
      name: "workers.toSafeMarkdown",
      where: "event loop",
      run: (t) => workers.toSafeMarkdown(t, OPTIONS),
    },
    {
      name: "workers.parseCommand",
      where: "event loop",
      run: (t) => workers.parseCommand(`/talos help\n${t}`, {}),
    },
    {
      name: "toSafeMarkdown",
      where: "worker",
      run: (t) => toSafeMarkdown(t, OPTIONS, parser),
      naive: naiveCleanModelOutput,
    },
    {
      name: "checkSafeMarkdown",
      where: "worker",
      run: (t) => checkSafeMarkdown(t, OPTIONS, parser),
    },
    {
      name: "parseCommand",
      where: "worker",
      run: (t) => parseCommand(`/talos help\n${t}`, {}, parser),
    },
  ];

  const rows = [];
  try {
    for (const subject of subjects) {
      const growth = await measureGrowth(subject.run, { length: length / 4 });
      const small = await measureGrowth(subject.run, { length: length / 64 });
      const naive = subject.naive
        ? await measureGrowth(subject.naive, { length: length / 64 })
        : undefined;
      const worst = slowest(growth, "msAt4n");
      const worstSmall = slowest(small, "msAt4n").msAt4n;
      const worstNaive = naive ? slowest(naive, "msAt4n").msAt4n : undefined;
      rows.push({
        function: subject.name,
        where: subject.where,
        worstFragment: worst.fragment,
        worstMs: worst.msAt4n,
        // Below 5 ms the ratio is noise (as in the tests' linear-time bar).
        maxGrowth: Math.max(...growth.filter((g) => g.msAt4n >= 5).map((g) => g.ratio), 0),
        targetMet: subject.where === "worker" ? null : worst.msAt4n <= TARGET_MS,
        smallMs: worstSmall,
        naiveSmallMs: worstNaive ?? null,
        naiveFragment: naive ? slowest(naive, "msAt4n").fragment : null,
        speedup: worstNaive === undefined ? null : worstNaive / Math.max(worstSmall, 1e-3),
      });
    }
  } finally {
    await workers.close();
  }

  const server = [];
  if (options.server !== false) {
    buildDist();
    for (const helpLine of [false, true]) {
      const result = await runHostileThread({ helpLine });
      const health = summarize(result.health);
      server.push({
        comment: helpLine ? "hostile, with a /talos help line" : "hostile",
        statuses: result.statuses,
        summaryPosted: result.summary !== undefined,
        helpAnswered: result.helpAnswered,
        healthChecks: result.health.length,
        healthFailures: result.healthFailures,
        healthMaxMs: Math.max(...result.health),
        healthP99Ms: health.p99,
        healthP50Ms: health.p50,
        targetMet: result.healthFailures === 0 && Math.max(...result.health) <= HEALTH_TARGET_MS,
      });
    }
  }

  const result = { length, targetMs: TARGET_MS, healthTargetMs: HEALTH_TARGET_MS, rows, server };
  if (!options.json) print(result);
  return result;
}

function slowest(growth: Growth[], key: "ms" | "msAt4n"): Growth {
  return growth.reduce((a, b) => (b[key] > a[key] ? b : a));
}

function print(result: Awaited<ReturnType<typeof runHostileBench>>): void {
  const { length, rows, server } = result;
  console.log(
    `Every function that reads user text, on each hostile fragment repeated to ${length.toLocaleString("en")} characters (the slowest shown; fastest of at least 5 runs). "event loop" rows block the server while they run; "worker" rows run in a Markdown worker with a deadline.\n`,
  );
  printTable(
    rows.map((r) => ({
      function: r.function,
      runs: r.where,
      [`slowest input (${length.toLocaleString("en")})`]: JSON.stringify(r.worstFragment),
      ms: r.worstMs,
      [`≤ ${TARGET_MS} ms`]: r.targetMet === null ? "n/a" : r.targetMet ? "met" : "NOT MET",
      "growth ×4n": r.maxGrowth,
      [`ms at ${(length / 16).toLocaleString("en")}`]: r.smallMs,
      "naive ms": r.naiveSmallMs ?? "-",
      "naive slowest input": r.naiveFragment === null ? "-" : JSON.stringify(r.naiveFragment),
      "× naive speed": r.speedup === null ? "-" : `${r.speedup.toFixed(r.speedup < 10 ? 2 : 0)}×`,
    })),
  );
  console.log(
    `\nnaive = the original Talos's regex cleaners, timed at ${(length / 16).toLocaleString("en")} characters (larger inputs take seconds to minutes). growth ×4n = the largest time ratio from ${(length / 4).toLocaleString("en")} to ${length.toLocaleString("en")} characters over the fragments that take 5 ms or more (4 is linear, 16 quadratic; 0: none does). toSafeMarkdown does more than the naive cleaner (a full CommonMark parse), off the event loop.`,
  );
  if (server.length === 0) return;
  console.log(
    `\nThe server (node dist/main.js, GitHub and OpenAI stand-ins): a ${length.toLocaleString("en")}-character hostile comment from a maintainer, then /talos summarize, GET /healthz every 10 ms meanwhile.\n`,
  );
  printTable(
    server.map((s) => ({
      comment: s.comment,
      deliveries: s.statuses.join(", "),
      "summary posted": s.summaryPosted ? "yes" : "no",
      "help answered": s.helpAnswered ? "yes" : "no",
      "health checks": s.healthChecks,
      failed: s.healthFailures,
      "p50 ms": s.healthP50Ms,
      "p99 ms": s.healthP99Ms,
      "max ms": s.healthMaxMs,
      [`≤ ${HEALTH_TARGET_MS} ms`]: s.targetMet ? "met" : "NOT MET",
    })),
  );
}

// --- The original Talos's cleaners (src/agent/untrusted-text.ts, clean-model-output.ts and the
// scrubber's patterns before the security issue), kept here as the naive baseline. ------------

const NAIVE_TAGS =
  "a|abbr|b|bdi|bdo|blockquote|br|caption|center|cite|code|dd|del|details|dfn|div|dl|dt|em|font|h[1-6]|hr|i|img|ins|kbd|li|mark|ol|p|picture|pre|q|rp|rt|ruby|s|samp|small|source|span|strike|strong|sub|summary|sup|table|tbody|td|tfoot|th|thead|time|tr|tt|u|ul|var|video|wbr";
const NAIVE_RULES: Array<[RegExp, string]> = [
  [/<!--[\s\S]*?(?:-->|$)/g, ""],
  [/<(script|style|template|noscript|iframe|object)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, ""],
  [
    new RegExp(
      `<(${NAIVE_TAGS})\\b[^>]*(?:\\bhidden\\b|display\\s*:\\s*none|visibility\\s*:\\s*hidden|aria-hidden\\s*=\\s*["']?true)[^>]*>[\\s\\S]*?<\\/\\1\\s*>`,
      "gi",
    ),
    "",
  ],
  [/<img\b[^>]*>/gi, ""],
  [/^[ \t]*\[[^\]\n]*\]:[ \t]*(?:#|<>)(?:[ \t].*)?$/gm, ""],
  [new RegExp(`</?(?:${NAIVE_TAGS})\\b[^>]*>`, "gi"), ""],
  [/\n{3,}/g, "\n\n"],
];

function naiveCleanUntrustedText(text: string): string {
  let out = text.replace(/\r\n?/g, "\n");
  for (const [pattern, replacement] of NAIVE_RULES) out = out.replace(pattern, replacement);
  return out.trim();
}

const NAIVE_SECRETS: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, "[REDACTED]"],
  [/\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{22,})\b/g, "[REDACTED]"],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, "[REDACTED]"],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, "[REDACTED]"],
  [/\b(bearer|token|basic)\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,}/gi, "$1 [REDACTED]"],
];

function naiveScrub(text: string): string {
  let out = text;
  for (const [pattern, replacement] of NAIVE_SECRETS) out = out.replace(pattern, replacement);
  return out;
}

function naiveCleanModelOutput(text: string): string {
  const parts = text
    .replace(/\r\n?/g, "\n")
    .split(/(^(?:```|~~~)[^\n]*\n[\s\S]*?(?:^(?:```|~~~)[ \t]*$|(?![\s\S]))|`[^`\n]+`)/m);
  return parts
    .map((part, i) =>
      i % 2 === 1
        ? part
        : part
            .replace(/&/g, "&amp;")
            .replace(/</g, "&lt;")
            .replace(/(?<!^[ \t]*(?:>[ \t]*)*)>/gm, "&gt;")
            .replace(
              /(^|[^\w`/.-])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\/[A-Za-z0-9_.-]+)?)/g,
              "$1`@$2`",
            ),
    )
    .join("")
    .trim();
}

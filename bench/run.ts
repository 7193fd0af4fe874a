// `npm run bench -- <suite> [--json]`: prints a table, or with --json one JSON object on the last line.
import { runClusterBench } from "./cluster-bench.js";
import { runEventsBench } from "./events-bench.js";
import { runGitHubBench } from "./github-bench.js";
import { runGlobsBench } from "./globs-bench.js";
import { runHostileBench } from "./hostile-bench.js";
import { runMemoryBench } from "./memory-bench.js";
import { runMemorySyncBench } from "./memory-sync-bench.js";
import { runPromptsBench } from "./prompts-bench.js";
import { runReviewBench } from "./review-bench.js";
import { runSimilarBench } from "./similar-bench.js";
import { runSimilarSqlBench } from "./similar-sql-bench.js";
import { runStartBench } from "./start-bench.js";

const SUITES: Record<string, (options: { json: boolean }) => Promise<unknown>> = {
  prompts: runPromptsBench,
  github: runGitHubBench,
  memory: runMemoryBench,
  hostile: runHostileBench,
  review: runReviewBench,
  globs: runGlobsBench,
  // Needs Redis (TALOS_TEST_REDIS_URL, default the machine's); says so and skips without it.
  cluster: runClusterBench,
  // Needs PostgreSQL (TALOS_TEST_DATABASE_URL); `--writes=N` times N writes instead of 200.
  "memory-sync": ({ json }) => runMemorySyncBench({ json, writes: numberFlag("--writes") }),
  start: ({ json }) => runStartBench({ json, records: numberFlag("--records") }),
  // `--events=N` sends N deliveries per app instead of 20,000.
  events: ({ json }) => runEventsBench({ json, events: numberFlag("--events") }),
  // `--split=dev|test` reports one split; `--tune` grid-searches the fusion on dev.
  similar: ({ json }) =>
    runSimilarBench({
      json,
      tune: flags.includes("--tune"),
      splits: stringFlag("--split")?.split(",") as Array<"dev" | "test"> | undefined,
    }),
  // The SQL path (PGlite with pgvector) against the local store, on the first 150 test
  // duplicates in time order; `--limit=N` asks the first N, `--all` all 431 (about half an hour).
  "similar-sql": ({ json }) =>
    runSimilarSqlBench({ json, limit: numberFlag("--limit"), all: flags.includes("--all") }),
};

const [suite, ...flags] = process.argv.slice(2);
const run = suite ? SUITES[suite] : undefined;
if (!run) {
  console.error(
    `bench: choose a suite: ${Object.keys(SUITES).join(", ")} (and --json for machine output)`,
  );
  process.exit(2);
}
const json = flags.includes("--json");
const result = await run({ json });
if (json) console.log(JSON.stringify(result));

function numberFlag(name: string): number | undefined {
  const value = flags.find((flag) => flag.startsWith(`${name}=`))?.slice(name.length + 1);
  return value === undefined ? undefined : Number(value);
}

function stringFlag(name: string): string | undefined {
  return flags.find((flag) => flag.startsWith(`${name}=`))?.slice(name.length + 1);
}

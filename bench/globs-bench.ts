import { createGlobMatcher, matchGlob } from "../src/pulls/match-glob.js";
import { printTable } from "./stats.js";

// A pull request lists up to 3,000 files; `review.ignore` and `.gitattributes` (1,000 rules
// read) are matched against each one, at each pass (a summary makes two, a review one more).
const FILES = 3_000;
const GLOB_COUNTS = [20, 200, 1_000];

export interface GlobsBenchOptions {
  json: boolean;
  /** Files per pull request; 3,000 by default. Tests pass fewer. */
  files?: number;
}

/** Paths as a monorepo's pull request has them. */
function paths(count: number): string[] {
  return Array.from(
    { length: count },
    (_, i) => `packages/pkg${i % 40}/src/module${i % 9}/file${i}.${["ts", "tsx", "json"][i % 3]}`,
  );
}

/**
 * What maintainers list: generated directories, extensions, lockfiles, a few with classes; a
 * tenth match some of the files.
 */
function globs(count: number): string[] {
  const shapes = [
    (i: number) => `generated/out${i}/**`,
    (i: number) => `*.gen${i}.ts`,
    (i: number) => `packages/pkg${i}/dist/**`,
    (i: number) => `**/fixtures${i}/*.json`,
    (i: number) => `vendor${i}/`,
    (i: number) => `schema[0-9]${i}.json`,
    (i: number) => `packages/pkg${i % 40}/src/module${i % 9}/file${i}.ts`,
    () => `docs/**/*.md`,
    () => `*.snap`,
    (i: number) => `packages/*/src/module${i % 9}/*.json`,
  ];
  return Array.from({ length: count }, (_, i) => shapes[i % shapes.length]!(i));
}

/** Each path against the list as `review.ignore` is applied: ms, and the paths matched. */
function time(
  build: (list: string[]) => (path: string) => boolean,
  list: string[],
  files: string[],
) {
  const started = performance.now();
  const matches = build(list);
  let matched = 0;
  for (const path of files) if (matches(path)) matched++;
  return { ms: performance.now() - started, matched };
}

/** The naive way: each glob built again for each path (matchGlob per pair). */
const perPair = (list: string[]) => (path: string) => list.some((glob) => matchGlob(glob, path));

/** The globs built once (what selectFiles does), each with its literal ends checked first. */
const builtOnce = (list: string[]) => {
  const matchers = list.map(createGlobMatcher);
  return (path: string) => matchers.some((matches) => matches(path));
};

/**
 * `npm run bench -- globs`: a glob list against a pull request's files, each glob built once and
 * its literal ends checked first, against the naive baseline that builds each glob again for
 * each file (matchGlob per pair, as selectFiles and the classifier did).
 */
export async function runGlobsBench(options: GlobsBenchOptions) {
  const files = paths(options.files ?? FILES);
  // Warm up both paths, so that neither pays the JIT in the timed runs.
  time(perPair, globs(50), files.slice(0, 200));
  time(builtOnce, globs(50), files.slice(0, 200));
  const rows = GLOB_COUNTS.map((count) => {
    const list = globs(count);
    const naive = time(perPair, list, files);
    const checked = time(builtOnce, list, files);
    if (naive.matched !== checked.matched)
      throw new Error(`globs: ${checked.matched} files matched, the baseline ${naive.matched}`);
    return {
      globs: count,
      files: files.length,
      matched: checked.matched,
      naiveMs: naive.ms,
      builtOnceMs: checked.ms,
      speedup: naive.ms / checked.ms,
      nsPerPair: (checked.ms * 1e6) / (count * files.length),
    };
  });
  const result = { rows };
  if (options.json) {
    console.log(JSON.stringify(result));
    return result;
  }
  console.log(`globs: each glob list against ${files.length} paths, as review.ignore is applied\n`);
  printTable(
    rows.map((r) => ({
      globs: r.globs,
      files: r.files,
      "files matched": r.matched,
      "naive ms (built per pair)": r.naiveMs,
      "built once ms": r.builtOnceMs,
      "naive / built once": `${r.speedup.toFixed(1)}×`,
      "ns per pair": r.nsPerPair,
    })),
  );
  return result;
}

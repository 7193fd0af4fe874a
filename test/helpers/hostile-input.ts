import { expect } from "vitest";

/**
 * Fragments of every construct a function over user text looks for, repeated to build hostile
 * input: tag openers and attributes, comment openers, backticks and fences, brackets and link
 * openers, emphasis runs, quotes, entities, mentions, references, URLs, secret shapes, command
 * prefixes, and the characters that end a line. A function that scans for a construct and
 * backtracks when it is not closed is slow on repeats of its opener.
 */
export const HOSTILE_FRAGMENTS: readonly string[] = [
  "<b hidden ",
  "<div hidden>",
  '<span style="display:none">',
  "<script>",
  "</",
  "<",
  "<a ",
  "<a href='",
  '<img alt="',
  "<details>\n",
  "<pre>",
  "<!--",
  "<!-- talos:",
  "<?",
  "<!X ",
  "?>",
  "> ```a\n",
  "`a\nb",
  "\n\n",
  "-->",
  "`",
  "``a",
  "```\n",
  "~~~\n",
  "[",
  "]",
  "[a](",
  "](",
  "![",
  "[//]: # ",
  '[a]: b "',
  "<x a<",
  "*",
  "_",
  "*_",
  "**a",
  "a_b_",
  "~~",
  '"',
  "'",
  "''a",
  "&#",
  "&amp",
  "\\",
  "|",
  "> ",
  "- ",
  "1. ",
  "#",
  "    ",
  "\n",
  "\r\n",
  "a\n",
  "@a",
  "@",
  "#1",
  "www.",
  "http://",
  "https://a",
  "-----BEGIN RSA PRIVATE KEY-----",
  "eyJ-",
  "eyJabcdefgh.",
  "ghp_",
  "sk-",
  "token ",
  "bearer a",
  'repo:"',
  "\u200b",
  "/talos help\n",
  "a",
  " ",
];

/**
 * Long runs of one character between word characters (a, then the run, then b): a pattern such
 * as `/'+$/` rescans such a run from each of its characters, where repeats of a short fragment
 * never have a long run.
 */
export const HOSTILE_RUNS: readonly string[] = ["'", "-", "_", "*", "`", "@", "#", ".", " ", "<"];

/** `fragment` repeated to exactly `length` characters. */
export function hostileText(fragment: string, length: number): string {
  return fragment.repeat(Math.ceil(length / fragment.length)).slice(0, length);
}

/** Every fragment in turn, to `length`: constructs opened inside one another. */
export function mixedHostileText(length: number): string {
  return hostileText(HOSTILE_FRAGMENTS.join(""), length);
}

/**
 * How long `fn(input)` keeps the event loop busy, in ms: the call itself, and for a promise the
 * longest stretch without a turn of the event loop until it settles (work sent to a worker
 * costs the main thread next to nothing).
 */
export async function measureBlockingMs(
  fn: (text: string) => unknown,
  input: string,
): Promise<number> {
  const before = performance.eventLoopUtilization();
  const started = performance.now();
  const result = fn(input);
  const sync = performance.now() - started;
  if (!(result instanceof Promise)) return sync;
  // Work done elsewhere (a worker thread) while the loop waits is not the loop's: count the time
  // the main thread's loop was active until the result came back. (Counting the longest gap
  // between ticks instead measured the machine: on a busy 2-core runner a longer wait meets a
  // longer preemption.)
  await result;
  return Math.max(sync, performance.eventLoopUtilization(before).active);
}

/** The least blocking of a few runs: the others include collections and a busy machine. */
async function fastest(fn: (text: string) => unknown, input: string): Promise<number> {
  let best = Infinity;
  const started = performance.now();
  for (let run = 0; run < 20 && (run < 5 || performance.now() - started < 100); run++) {
    best = Math.min(best, await measureBlockingMs(fn, input));
  }
  return best;
}

export interface GrowthOptions {
  fragments?: readonly string[];
  /** Characters for a-run-b inputs; HOSTILE_RUNS by default. */
  runs?: readonly string[];
  /** The smaller input length; the larger is four times it. Default 16,384 (65,536 at 4n). */
  length?: number;
  /** Measure only the inputs of these names (a Growth's `fragment`), built as the first time. */
  only?: readonly string[];
}

export interface Growth {
  fragment: string;
  ms: number;
  msAt4n: number;
  ratio: number;
}

/** Time at n and at 4n for every fragment (and the mix), the fastest of a few runs each. */
export async function measureGrowth(
  fn: (text: string) => unknown,
  options: GrowthOptions = {},
): Promise<Growth[]> {
  const n = options.length ?? 16_384;
  const inputs = new Map<string, (length: number) => string>();
  for (const fragment of options.fragments ?? HOSTILE_FRAGMENTS)
    inputs.set(fragment, (length) => hostileText(fragment, length));
  inputs.set("(mixed)", mixedHostileText);
  for (const run of options.runs ?? HOSTILE_RUNS)
    inputs.set(`a${run}${run}${run}b`, (length) => `a${run.repeat(length - 2)}b`);
  const growth: Growth[] = [];
  for (const [fragment, input] of inputs) {
    if (options.only && !options.only.includes(fragment)) continue;
    await fn(input(256)); // compiled before it is timed
    const ms = await fastest(fn, input(n));
    const msAt4n = await fastest(fn, input(4 * n));
    growth.push({ fragment, ms, msAt4n, ratio: msAt4n / Math.max(ms, 1e-3) });
  }
  return growth;
}

// Linear work grows 4× from n to 4n, quadratic 16×; the margin absorbs a noisy machine.
const MAX_GROWTH = 10;
// Below this, at 4n, the timings are noise (a collection, a busy core): quadratic work on
// 65,536 characters takes seconds.
const NOISE_FLOOR_MS = 5;

/**
 * The bar for every function that reads text a user wrote (cleaners, parsers, tokenizers): on
 * hostile input of every fragment, the time it blocks the event loop grows linearly from n to 4n
 * characters (65,536 by default, GitHub's comment limit). No absolute time is asserted here:
 * `npm run bench -- hostile` reports those.
 */
export async function expectLinearTime(
  fn: (text: string) => unknown,
  options: GrowthOptions = {},
): Promise<void> {
  const flagged = (growth: Growth[]) =>
    growth.filter((g) => g.msAt4n >= NOISE_FLOOR_MS && g.ratio > MAX_GROWTH);
  let superLinear = flagged(await measureGrowth(fn, options));
  // A busy machine preempts a run now and then (a 2-core runner under load stalls the main
  // thread for 5-12 ms); work that really is super-linear stays flagged when measured again.
  for (let round = 0; round < 2 && superLinear.length > 0; round++) {
    // The same inputs again: named as fragments, a flagged run (`a---b`) or the mix had been
    // measured as other text, and a slow one passed on the retry.
    superLinear = flagged(
      await measureGrowth(fn, { ...options, only: superLinear.map((g) => g.fragment) }),
    );
  }
  expect(
    superLinear.map(
      (g) =>
        `${JSON.stringify(g.fragment)}: ${g.ms.toFixed(2)} ms → ${g.msAt4n.toFixed(2)} ms (×${g.ratio.toFixed(1)})`,
    ),
  ).toEqual([]);
}

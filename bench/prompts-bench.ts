import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { systemClock } from "../src/clock.js";
import {
  nodeFileSystem,
  parsePrompt,
  PromptLibrary,
  renderPrompt,
  type PromptFileSystem,
} from "../src/prompts/prompt-library.js";
import { printTable, summarize } from "./stats.js";

const DIRECTORY = fileURLToPath(new URL("../prompts/", import.meta.url));
const EVENTS = 2_000;
const WARM_UP = 50;

/** Counts the file system calls made through it. */
function countingFs() {
  const counts = { reads: 0, stats: 0, readdirs: 0 };
  const fs: PromptFileSystem = {
    readFile: (path) => (counts.reads++, nodeFileSystem.readFile(path)),
    stat: (path) => (counts.stats++, nodeFileSystem.stat(path)),
    readdir: (path) => (counts.readdirs++, nodeFileSystem.readdir(path)),
  };
  return { fs, counts };
}

// What an `ask` event renders: the system prompt and the task.
const VALUES = {
  system: {
    repository: "acme/widgets",
    repository_context: "Its default branch is main; it is public.",
    today: "2026-11-24",
    untrusted_tag: "untrusted-0123456789ab",
  },
  ask: {
    thread: "Issue #7 ...\n".repeat(200),
    question: "Why does saving crash on Windows?",
    memories: "Talos remembers nothing relevant to this question.",
  },
};

/**
 * The original Talos's loader: list the prompt directory and read and parse every file on every
 * event, then render.
 */
async function renderNaively(fs: PromptFileSystem): Promise<string[]> {
  const prompts = new Map();
  for (const entry of (await fs.readdir(DIRECTORY)).filter(
    (e) => e.endsWith(".md") && e !== "README.md",
  )) {
    const name = entry.slice(0, -3);
    prompts.set(name, parsePrompt(name, entry, await fs.readFile(`${DIRECTORY}${entry}`)));
  }
  return [
    renderPrompt(prompts.get("system"), VALUES.system),
    renderPrompt(prompts.get("ask"), VALUES.ask),
  ];
}

async function measure(
  render: () => Promise<string[]>,
  counts: { reads: number; stats: number; readdirs: number },
) {
  for (let i = 0; i < WARM_UP; i++) await render();
  const before = { ...counts };
  const samples: number[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const start = performance.now();
    await render();
    samples.push(performance.now() - start);
  }
  return {
    ...summarize(samples),
    readsPerEvent: (counts.reads - before.reads) / EVENTS,
    statsPerEvent: (counts.stats - before.stats) / EVENTS,
    listingsPerEvent: (counts.readdirs - before.readdirs) / EVENTS,
  };
}

export async function runPromptsBench({ json }: { json: boolean }) {
  const naiveFs = countingFs();
  const naive = await measure(() => renderNaively(naiveFs.fs), naiveFs.counts);

  const cachedFs = countingFs();
  const library = await PromptLibrary.open({
    directory: DIRECTORY,
    clock: systemClock,
    checkIntervalMs: 2_000,
    log: pino({ level: "silent" }),
    fs: cachedFs.fs,
  });
  const cached = await measure(
    async () => [
      await library.render("system", VALUES.system),
      await library.render("ask", VALUES.ask),
    ],
    cachedFs.counts,
  );

  const speedup = naive.mean / cached.mean;
  const result = { suite: "prompts", events: EVENTS, promptsPerEvent: 2, naive, cached, speedup };
  if (!json) {
    console.log(
      `prompts: ${EVENTS} events (system + ask prompt each) after ${WARM_UP} warm-up events\n`,
    );
    printTable(
      [
        ["naive: read the directory every event", naive],
        ["cached: mtime-checked PromptLibrary", cached],
      ].map(([name, r]) => {
        const s = r as typeof naive;
        return {
          loader: name as string,
          "mean µs": s.mean * 1000,
          "p50 µs": s.p50 * 1000,
          "p99 µs": s.p99 * 1000,
          "file reads/event": s.readsPerEvent,
          "stats/event": s.statsPerEvent,
          "dir listings/event": s.listingsPerEvent,
        };
      }),
    );
    console.log(`\ncached rendering is ${speedup.toFixed(1)}× faster than the naive loader`);
  }
  return result;
}

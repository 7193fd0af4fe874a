import { pino } from "pino";
import { MarkdownWorkers } from "../../src/markdown/markdown-workers.js";

// One pool of Markdown workers per test file: starting a worker from TypeScript sources takes a
// few hundred milliseconds, too long to pay in every test. test/setup.ts closes it.
let shared: MarkdownWorkers | undefined;

export function testMarkdownWorkers(): MarkdownWorkers {
  // A generous deadline: a loaded machine must not turn a test's command into plain text. The
  // deadline itself is tested in test/markdown/markdown-workers.test.ts.
  shared ??= new MarkdownWorkers({ deadlineMs: 30_000, log: pino({ level: "silent" }) });
  return shared;
}

export async function closeTestMarkdownWorkers(): Promise<void> {
  await shared?.close();
  shared = undefined;
}

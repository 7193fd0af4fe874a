import { loadavg } from "node:os";
import { relative } from "node:path";
import type { Reporter, TestCase, TestModule } from "vitest/node";

/** How often the watchdog prints its line: a CI run of 15 minutes gets three. */
const INTERVAL_MS = Number(process.env.TALOS_TEST_WATCHDOG_MS) || 5 * 60_000;

interface Running {
  since: number;
  test?: string;
  testSince?: number;
}

/**
 * CI's watchdog (.ci/run): every five minutes, one line on stderr with the machine's load and
 * each test file still running, how long it has run and which of its tests runs now. A CI run
 * that is stopped for taking too long then shows, in its last lines, what it was waiting for and
 * how busy the machine was; without it, the log just ended with the last file that passed.
 */
export default class WatchdogReporter implements Reporter {
  readonly #running = new Map<string, Running>();
  #timer: NodeJS.Timeout | undefined;
  #root = process.cwd();

  onInit(vitest: { config: { root: string } }): void {
    this.#root = vitest.config.root;
    this.#timer = setInterval(() => this.#report(), INTERVAL_MS);
    this.#timer.unref();
  }

  onTestModuleStart(module: TestModule): void {
    this.#running.set(module.moduleId, { since: Date.now() });
  }

  onTestCaseReady(test: TestCase): void {
    const running = this.#running.get(test.module.moduleId);
    if (running) Object.assign(running, { test: test.fullName, testSince: Date.now() });
  }

  onTestModuleEnd(module: TestModule): void {
    this.#running.delete(module.moduleId);
  }

  onTestRunEnd(): void {
    clearInterval(this.#timer);
  }

  #report(): void {
    const now = Date.now();
    const files = [...this.#running].map(([id, running]) => {
      const test = running.test
        ? `, now "${running.test}" for ${age(now, running.testSince!)}`
        : "";
      return `${relative(this.#root, id)} for ${age(now, running.since)}${test}`;
    });
    const load = loadavg()
      .map((n) => n.toFixed(2))
      .join(" ");
    process.stderr.write(
      `[watchdog] ${new Date(now).toISOString()} load ${load}; running: ${files.join("; ") || "none"}\n`,
    );
  }
}

const age = (now: number, since: number) => `${Math.round((now - since) / 1000)} s`;

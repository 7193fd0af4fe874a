import { afterAll, describe, expect, it } from "vitest";
import { parseCommand } from "../../src/commands/parse-command.js";
import {
  MarkdownWorkers,
  MarkdownWorkersClosedError,
} from "../../src/markdown/markdown-workers.js";
import { toSafeMarkdown, toSafePlainText } from "../../src/markdown/to-safe-markdown.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { expectLinearTime, HOSTILE_FRAGMENTS, hostileText } from "../helpers/hostile-input.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";
import { parseEnv } from "../../src/config.js";
import { createServices } from "../../src/create-services.js";

const options = { repo: "acme/widgets", references: [3] };
// markdown-it's slowest input found: about a quarter of a second for 65,536 characters here.
const SLOW = hostileText("![", 65_536);

describe("Markdown workers", () => {
  const pools: MarkdownWorkers[] = [];
  afterAll(() => Promise.all(pools.map((pool) => pool.close())));

  async function pool(deadlineMs: number) {
    const logs = await captureLogs("debug");
    const metrics = createMetrics();
    const workers = new MarkdownWorkers({ deadlineMs, metrics, log: logs.log });
    pools.push(workers);
    const fallbacks = async () =>
      (await metrics.markdownFallbacks.get()).values.map((v) => [v.labels, v.value]);
    return { workers, logs, fallbacks };
  }

  it("answer as the pure functions do, in another thread", async () => {
    const { workers } = await pool(30_000);
    const texts = [
      "Hi @octocat, see #3 and #4 <!-- talos:x -->",
      "```\n/talos help\n```\n/talos ask why?",
      // An escaped prefix is no command, in the worker as in the pure function.
      "\\/talos review\n\n```\n/talos help\n```",
    ];
    for (const text of texts) {
      expect(await workers.toSafeMarkdown(text, options)).toBe(toSafeMarkdown(text, options));
      expect(await workers.parseCommand(text, { slug: "talos-bot" })).toEqual(
        parseCommand(text, { slug: "talos-bot" }),
      );
    }
  });

  it("treat a parse that misses its deadline as plain text, and carry on with a new worker", async () => {
    const { workers, logs, fallbacks } = await pool(50);
    const withCommand = `${SLOW.slice(0, 60_000)}\n/talos help`;
    // Warm: the first worker's start is not the text's fault.
    expect(await workers.parseCommand("/talos help", {})).toEqual({ name: "help", args: "" });

    const [safe, command] = await Promise.all([
      workers.toSafeMarkdown(SLOW, options),
      workers.parseCommand(withCommand, {}),
    ]);

    expect(safe).toBe(toSafePlainText(SLOW, options));
    expect(command).toBeNull();
    expect(await fallbacks()).toEqual(
      expect.arrayContaining([
        [{ operation: "safe", reason: "deadline" }, 1],
        [{ operation: "command", reason: "deadline" }, 1],
      ]),
    );
    expect(logs.lines().filter((l) => String(l.msg).includes("missed its deadline"))).toHaveLength(
      2,
    );
    // The pool replaced the workers it terminated.
    expect(await workers.parseCommand("/talos config", {})).toEqual({ name: "config", args: "" });
  }, 30_000);

  it("never parse a comment without a line that could be a command", async () => {
    const { workers } = await pool(1);
    // A 1 ms deadline would fail any parse; none happens.
    expect(await workers.parseCommand(SLOW, {})).toBeNull();
    expect(await workers.parseCommand("please run /talos help", {})).toBeNull();
  });

  it("fall back when a worker cannot start, and try again only on the next request", async () => {
    const logs = await captureLogs("debug");
    const metrics = createMetrics();
    const workers = new MarkdownWorkers({
      deadlineMs: 30_000,
      metrics,
      log: logs.log,
      entry: new URL("./no-such-worker.ts", import.meta.url),
    });
    pools.push(workers);
    expect(await workers.toSafeMarkdown("hi @octocat", options)).toBe("hi `@octocat`");
    expect(await workers.parseCommand("/talos help", {})).toBeNull();
    const failures = logs.lines().filter((l) => l.msg === "a Markdown worker failed");
    // One start per request that found no worker, not a loop of restarts.
    expect(failures.length).toBeLessThanOrEqual(4);
    expect((await metrics.markdownFallbacks.get()).values).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: { operation: "safe", reason: "error" } }),
      ]),
    );
  });

  it("show a GitHub Enterprise Server's images with GHE_HOST, through the services as built", async () => {
    const image = "![shot](https://media.ghe.example.com/user/1/a.png)";
    const { log } = await captureLogs("warn");
    const ghe = await createServices({
      env: parseEnv({ GHE_HOST: "ghe.example.com:8443", TALOS_DATA_DIR: makeDataDir() }),
      log,
      ephemeralJobs: true,
    });
    const dotCom = await createServices({
      env: parseEnv({ TALOS_DATA_DIR: makeDataDir() }),
      log,
      ephemeralJobs: true,
    });
    try {
      expect(await ghe.markdown.toSafeMarkdown(image, options)).toBe(
        "![shot](<https://media.ghe.example.com/user/1/a.png>)",
      );
      expect(await dotCom.markdown.toSafeMarkdown(image, options)).toBe("shot");
    } finally {
      await ghe.close();
      await dotCom.close();
    }
  }, 60_000);

  it("refuse every parse once closed, those under way and waiting included, rather than hang or fall back", async () => {
    const logs = await captureLogs("debug");
    const metrics = createMetrics();
    // One worker: one parse under way, one waiting for it.
    const workers = new MarkdownWorkers({ deadlineMs: 30_000, size: 1, metrics, log: logs.log });
    pools.push(workers);
    expect(await workers.parseCommand("/talos help", {})).toEqual({ name: "help", args: "" });
    const asked = Promise.allSettled([
      workers.toSafeMarkdown(SLOW, options),
      workers.parseCommand(`${SLOW.slice(0, 60_000)}\n/talos help`, {}),
    ]);
    await workers.close();

    const [underWay, waiting] = await asked;
    expect(underWay).toEqual({
      status: "rejected",
      reason: expect.any(MarkdownWorkersClosedError),
    });
    expect(waiting).toEqual({ status: "rejected", reason: expect.any(MarkdownWorkersClosedError) });
    const stopping = {
      name: "MarkdownWorkersClosedError",
      message: expect.stringMatching(/^Talos is stopping/),
    };
    await expect(workers.toSafeMarkdown("hi @octocat", options)).rejects.toMatchObject(stopping);
    await expect(workers.parseCommand("/talos help", {})).rejects.toMatchObject(stopping);
    // A comment without a line that could be a command needs no worker: still no command.
    expect(await workers.parseCommand("thanks!", {})).toBeNull();
    // No text was at fault: no fallback counted.
    expect((await metrics.markdownFallbacks.get()).values).toEqual([]);
  });

  it("keep the event loop free while they parse hostile text", async () => {
    const { workers } = await pool(30_000);
    const markdownFragments = HOSTILE_FRAGMENTS.filter((f) => /[<`[\]*_>|#!\\-]/.test(f));
    // What a worker costs the event loop does not depend on the text's shape: Markdown
    // fragments are enough, and runs of one character (for regex scans) are left out.
    await expectLinearTime((text) => workers.toSafeMarkdown(text, options), {
      fragments: markdownFragments,
      runs: [],
    });
    await expectLinearTime((text) => workers.parseCommand(`/talos help\n${text}`, {}), {
      fragments: markdownFragments,
      runs: [],
    });
  }, 300_000);
});

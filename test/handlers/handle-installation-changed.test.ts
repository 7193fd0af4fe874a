import { existsSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import type { Context } from "probot";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { createInstallationChangedHandler } from "../../src/handlers/handle-installation-changed.js";
import type { BackfillRunner } from "../../src/memory/backfill-runner.js";
import { MemoryLockedError } from "../../src/memory/directory-lock.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import type { MemoryNamespace } from "../../src/memory/memory-registry.js";
import { MemoryRegistry } from "../../src/memory/memory-registry.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { holdLockInChild } from "../helpers/hold-lock-in-child.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory } from "../helpers/test-memory.js";

const repository = (id: number) => ({ id, full_name: `acme/repo-${id}` });

describe("repositories removed from an installation", () => {
  it("deletes the memory of every removed repository, even when one's deletion fails", async () => {
    const memories = new MemoryRegistry({
      directory: join(makeDataDir(), "memory"),
      embedder: createLocalEmbedder(),
      batchSize: 10_000,
      flushMs: 600_000,
      clock: systemClock,
      log: pino({ level: "silent" }),
      metrics: createMetrics(),
    });
    for (const id of [1, 2]) {
      const memory = await memories.open({
        installation: 7,
        repository: id,
        name: `acme/repo-${id}`,
      });
      await memory.add(issueMemory(1, `memory ${id}`, { repo: `acme/repo-${id}` }));
    }
    await memories.closeAll();
    const cancelled: MemoryNamespace[] = [];
    const backfill = {
      cancel: async (namespace: MemoryNamespace) => void cancelled.push(namespace),
    } as unknown as BackfillRunner;
    const handle = createInstallationChangedHandler({
      backfill,
      memory: memories,
      suspensions: {} as never,
      rateLimits: { forget: async () => undefined },
      clock: systemClock,
    });
    const context = {
      name: "installation_repositories",
      payload: {
        action: "removed",
        installation: { id: 7, account: { login: "acme" } },
        repositories_removed: [repository(1), repository(2)],
      },
      log: pino({ level: "silent" }),
    } as unknown as Context<"installation_repositories">;

    // Another process (a `talos memory` command, say) holds the first one's memory.
    const child = await holdLockInChild(memories.directoryOf({ installation: 7, repository: 1 }));
    try {
      await expect(handle(context)).rejects.toThrow(MemoryLockedError);
    } finally {
      child.kill("SIGKILL");
    }

    // The second's memory is gone, and its backfill stopped, all the same; the event's retry
    // deletes the first's.
    expect(cancelled.map((n) => n.repository)).toEqual([1, 2]);
    expect(existsSync(memories.directoryOf({ installation: 7, repository: 2 }))).toBe(false);
    expect(existsSync(memories.directoryOf({ installation: 7, repository: 1 }))).toBe(true);
  });
});

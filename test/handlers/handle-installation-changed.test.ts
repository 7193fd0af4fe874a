import { existsSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import type { Context } from "probot";
import { describe, expect, it, onTestFinished } from "vitest";
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

function registry() {
  return new MemoryRegistry({
    directory: join(makeDataDir(), "memory"),
    embedder: createLocalEmbedder(),
    batchSize: 10_000,
    flushMs: 600_000,
    clock: systemClock,
    log: pino({ level: "silent" }),
    metrics: createMetrics(),
  });
}

/** A GitHub that must not be asked. */
const noReadmission = {
  holds: async () => expect.unreachable("GitHub asked whether the installation holds it"),
};

function installationRepositories(action: "added" | "removed", ids: number[]) {
  return {
    name: "installation_repositories",
    payload: {
      action,
      installation: { id: 7, account: { login: "acme" } },
      [`repositories_${action}`]: ids.map(repository),
    },
    log: pino({ level: "silent" }),
  } as unknown as Context<"installation_repositories">;
}

describe("repositories removed from an installation", () => {
  it("deletes the memory of every removed repository, even when one's deletion fails", async () => {
    const memories = registry();
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
      readmission: noReadmission,
      suspensions: {} as never,
      rateLimits: { forget: async () => undefined },
      clock: systemClock,
    });
    const context = installationRepositories("removed", [1, 2]);

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

describe("repositories added to an installation", () => {
  const ref = (id: number) => ({ repository: id, name: `acme/repo-${id}` });

  /** The handler over a registry where repository 1 was removed; GitHub's answers by id. */
  async function addedAfterRemoval(holds: (id: number) => boolean | Error) {
    const memories = registry();
    onTestFinished(() => memories.closeAll());
    await (
      await memories.open({ installation: 7, ...ref(1) })
    ).add(issueMemory(1, "old", { repo: "acme/repo-1" }));
    await memories.delete({ installation: 7, repository: 1 });
    const asked: number[] = [];
    const queued: number[] = [];
    const handle = createInstallationChangedHandler({
      backfill: {
        enqueue: (target: MemoryNamespace) => void queued.push(target.repository),
      } as unknown as BackfillRunner,
      memory: memories,
      readmission: {
        holds: async (_installation, { id }) => {
          asked.push(id);
          const answer = holds(id);
          if (answer instanceof Error) throw answer;
          return answer;
        },
      },
      suspensions: {} as never,
      rateLimits: { forget: async () => undefined },
      clock: systemClock,
    });
    return { memories, handle, asked, queued };
  }

  it("asks GitHub about a removed repository only, and backfills the others at once", async () => {
    const { memories, handle, asked, queued } = await addedAfterRemoval(() => false);

    await handle(installationRepositories("added", [1, 2]));

    expect(asked).toEqual([1]);
    expect(queued).toEqual([2]);
    // The event is older than the removal: the installation no longer holds repository 1.
    expect(await memories.isRefused({ installation: 7, repository: 1 })).toBe(true);
    expect(await memories.isRefused({ installation: 7, repository: 2 })).toBe(false);
  });

  it("readmits a removed repository, empty, when GitHub says the installation holds it again", async () => {
    const { memories, handle, queued } = await addedAfterRemoval(() => true);

    await handle(installationRepositories("added", [1]));

    expect(queued).toEqual([1]);
    const memory = await memories.open({ installation: 7, ...ref(1) });
    expect(await memory.list()).toEqual([]);
  });

  it("fails, to be retried, when GitHub cannot answer, after backfilling the others", async () => {
    const unreachable = new Error("GitHub answered 502");
    const { memories, handle, queued } = await addedAfterRemoval(() => unreachable);

    await expect(handle(installationRepositories("added", [1, 2]))).rejects.toBe(unreachable);

    expect(queued).toEqual([2]);
    expect(await memories.isRefused({ installation: 7, repository: 1 })).toBe(true);
  });
});

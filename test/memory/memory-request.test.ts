import { describe, expect, it } from "vitest";
import { memoryRequestHandler } from "../../src/memory/memory-request.js";
import type { MemoryService } from "../../src/memory/memory-service.js";

describe("memoryRequestHandler: `talos memory` beside a running server", () => {
  const namespace = { installation: 7, repository: 101, name: "acme/widgets" };

  it("stops the repository's backfill before deleting its memory, as its removal does", async () => {
    const calls: string[] = [];
    const service = {
      delete: async (n: { installation: number }) => (calls.push(`delete ${n.installation}`), true),
    } as unknown as MemoryService;
    const handle = memoryRequestHandler(service, {
      cancel: async (n) => void calls.push(`cancel ${n.installation}`),
    });
    expect(await handle({ kind: "memory", op: "delete", namespace })).toBe(true);
    expect(calls).toEqual(["cancel 7", "delete 7"]);
  });

  it("refuses a request of another shape, doing nothing", async () => {
    const used: string[] = [];
    const service = new Proxy({} as MemoryService, {
      get: (_, key) => {
        used.push(String(key));
        return async () => true;
      },
    });
    const handle = memoryRequestHandler(service, {
      cancel: async () => void used.push("cancel"),
    });
    for (const request of [
      { kind: "memory", op: "drop-everything" },
      { kind: "memory", op: "delete", namespace: { ...namespace, repository: -1 } },
      { kind: "memory", op: "search", namespace, query: "x", k: 0 },
    ])
      await expect(handle(request)).rejects.toThrow();
    expect(used).toEqual([]);
  });
});

import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { RequestHandler } from "../server-requests.js";
import type { BackfillState } from "./backfill-repository.js";
import type { BackfillRunner } from "./backfill-runner.js";
import type { MemoryNamespace } from "./memory-registry.js";
import type { MemoryService } from "./memory-service.js";
import { MEMORY_KINDS, type MemoryStats } from "./memory-store.js";

/*
 * `talos memory …` beside a running server on disk: the server holds the memory directories (and
 * opens any of them at the next event), so the command asks it (server-requests.ts), and it
 * reads or changes its own memory. Each request is safe to answer twice: a server that stopped in
 * the middle of one answers it again at its next start.
 */

const Id = z.number().int().positive();
const Namespace = z.object({ installation: Id, repository: Id, name: z.string().max(300) });

const MemoryRequest = z.discriminatedUnion("op", [
  z.object({ op: z.literal("list") }),
  z.object({ op: z.literal("stats"), namespaces: z.array(Namespace).max(1_000_000) }),
  z.object({
    op: z.literal("search"),
    namespace: Namespace,
    query: z.string().max(100_000),
    k: z.number().int().min(1).max(10_000),
    kinds: z.array(z.enum(MEMORY_KINDS)).optional(),
  }),
  z.object({
    op: z.literal("export"),
    namespace: Namespace,
    // A page at a time: one answer with every record would hold them all in the server's RAM,
    // and as one string (a few hundred MB is past V8's longest).
    cursor: z.string().max(200).optional(),
  }),
  z.object({ op: z.enum(["compact", "delete"]), namespace: Namespace }),
]);
export type MemoryRequest = z.infer<typeof MemoryRequest>;

/** A namespace's statistics with its backfill's progress, or why that cannot be read. */
export type NamespaceStatsAnswer = MemoryStats & {
  backfill: BackfillState | { error: string } | null;
};

/**
 * The server's side: each request done on its own memory, as a look (MemoryService.look: the
 * stores it opens are the first closed, not those the server's events use); a deletion stops
 * the repository's backfill first, as the repository's removal does.
 */
export function memoryRequestHandler(
  service: MemoryService,
  backfill: Pick<BackfillRunner, "cancel">,
): RequestHandler {
  return async (body) => {
    const request = MemoryRequest.parse(body);
    switch (request.op) {
      case "list": {
        const [namespaces, legacy] = await Promise.all([service.list(), service.listLegacy()]);
        return { namespaces, legacy };
      }
      case "stats": {
        const rows: NamespaceStatsAnswer[] = [];
        for (const namespace of request.namespaces) {
          const progress = await readBackfill(service, namespace);
          rows.push({ ...(await service.look(namespace, (m) => m.stats())), backfill: progress });
        }
        return rows;
      }
      case "search":
        return service.look(request.namespace, (memory) =>
          memory.search(request.query, {
            k: request.k,
            ...(request.kinds ? { kinds: request.kinds } : {}),
          }),
        );
      case "export":
        return service.look(request.namespace, (memory) => memory.listPage(request.cursor));
      case "compact": {
        const bytesBefore = await sizeOf(service.locationOf(request.namespace));
        return service.look(request.namespace, async (memory) => {
          await memory.flush();
          return { ...(await memory.stats()), bytesBefore };
        });
      }
      case "delete":
        await backfill.cancel(request.namespace);
        return service.delete(request.namespace);
    }
  };
}

/** One damaged backfill.json is shown as such; the others still are. */
export function readBackfill(
  service: Pick<MemoryService, "readBackfillState">,
  namespace: MemoryNamespace,
): Promise<BackfillState | { error: string } | null> {
  return service.readBackfillState(namespace).then(
    (state) => state ?? null,
    (error: unknown) => ({ error: (error as Error).message }),
  );
}

/**
 * The bytes of a memory's files (its lock left out). A file its server replaced as this read
 * (a compaction) counts as nothing: the figure is for people.
 */
export async function sizeOf(directory: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(directory)) {
    if (!name.startsWith("."))
      bytes += await stat(join(directory, name)).then(
        (s) => s.size,
        (error: NodeJS.ErrnoException) => {
          if (error.code === "ENOENT") return 0;
          throw error;
        },
      );
  }
  return bytes;
}

import { afterAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/database/database.js";
import { MemoryDeletedError } from "../../src/memory/memory-store.js";
import { freshSchema, requirePostgres } from "../helpers/shared-services.js";
import { issueMemory } from "../helpers/test-memory.js";
import {
  afterQueries,
  asSuperuser,
  namedUrl,
  openDatabase,
  openMemory,
  uniqueName,
  waitingForLock,
} from "./database-helpers.js";

const available = await requirePostgres("the review's PostgreSQL tests");

describe.runIf(available)("PostgreSQL memory: a repository deleted while its memory opens", () => {
  const schema = freshSchema("talos_review");
  const opened: Database[] = [];
  const open = async (url?: string) => {
    const database = await openDatabase(schema, url);
    opened.push(database);
    return database;
  };
  afterAll(async () => {
    for (const database of opened) await database.close();
    await asSuperuser((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  });

  it("leaves no memory row behind, and nothing that outlives the installation's deletion", async () => {
    const deleter = uniqueName("review_deleter");
    const [dbA, dbB] = [await open(namedUrl(deleter)), await open()];
    const [a, b] = [await openMemory(dbA), await openMemory(dbB)];
    const ref = { installation: 7001, repository: 1, name: "acme/widgets" };
    // B's first open of the memory (a job of the repository) stops once it has looked for the
    // memory's row and found none, until A's deletion of the repository has ended or waits.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let paused!: () => void;
    const pausedAfterLook = new Promise<void>((resolve) => (paused = resolve));
    let once = true;
    afterQueries(dbB, async (sql) => {
      if (!once || !sql.includes("SELECT generation, name, model, dimension")) return;
      once = false;
      paused();
      await released;
    });
    const opening = b.open(ref).then(
      () => "opened",
      (error: unknown) => (error instanceof MemoryDeletedError ? "refused" : error),
    );
    await pausedAfterLook;
    let deleted = false;
    const deleting = a.delete(ref).finally(() => (deleted = true));
    await waitingForLock(deleter, () => deleted);
    release();
    expect(["opened", "refused"]).toContain(await opening);
    await deleting;
    const rowsOf = (table: string) =>
      asSuperuser(
        async (client) =>
          (
            await client.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM "${schema}".${table} WHERE installation_id = $1`,
              [ref.installation],
            )
          ).rows[0]!.n,
      );
    const afterDeletion = await rowsOf("memory_repositories");
    // Then the repository is added back to the installation, written to, and the app uninstalled.
    await a.readmit(ref);
    await (await b.open(ref)).add({ ...issueMemory(1, "Crash on save"), repo: ref.name });
    await a.deleteInstallation(ref.installation);
    expect({
      memoriesAfterDeletion: afterDeletion,
      memoriesAfterUninstall: await rowsOf("memory_repositories"),
      recordsAfterUninstall: await rowsOf("memory_records"),
    }).toEqual({ memoriesAfterDeletion: 0, memoriesAfterUninstall: 0, recordsAfterUninstall: 0 });
    await a.closeAll();
    await b.closeAll();
  });
});

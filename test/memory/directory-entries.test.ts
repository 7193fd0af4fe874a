import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { exists, isDirectory } from "../../src/memory/directory-entries.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";

describe("exists and isDirectory: only a missing path reads as missing", () => {
  const root = mkdtempSync(join(tmpdir(), "talos-entries-"));
  const file = join(root, "file");
  writeFileSync(file, "x");
  // A path stat cannot follow (as EACCES is, which root, running these tests, never meets):
  // read as missing, a deletion reported nothing to delete and left the memory on disk.
  const loop = join(root, "loop");
  symlinkSync(loop, loop);

  it("answers for a path that is there or is not", async () => {
    expect(await exists(root)).toBe(true);
    expect(await exists(file)).toBe(true);
    expect(await exists(join(root, "missing"))).toBe(false);
    expect(await exists(join(file, "below-a-file"))).toBe(false);
    expect(await isDirectory(root)).toBe(true);
    expect(await isDirectory(file)).toBe(false);
    expect(await isDirectory(join(root, "missing"))).toBe(false);
  });

  it("throws for a path it cannot read, rather than calling it missing", async () => {
    await expect(exists(loop)).rejects.toMatchObject({ code: "ELOOP" });
    await expect(isDirectory(loop)).rejects.toMatchObject({ code: "ELOOP" });
  });
});

const WIDGETS = { installation: 7, repository: 2, name: "acme/widgets" };

describe("one unreadable stray entry in the memory directory", () => {
  it("does not stop every memory from being listed and opened (migrate)", async () => {
    const root = makeDataDir();
    const first = createTestRegistry(root);
    await first.open(WIDGETS);
    await first.closeAll();
    // A stray symlink loop beside the repositories of installation 7 (non-numeric: scanned as a
    // name-keyed owner directory by moveLegacyMemoriesAside).
    const stray = join(root, "7", "stray");
    symlinkSync(stray, stray);

    const registry = createTestRegistry(root);
    try {
      // Skipped: once a stat error other than ENOENT threw, it stopped the start's migration,
      // which every registry call waits for.
      expect((await registry.list()).map((n) => n.repository)).toEqual([2]);
    } finally {
      await registry.closeAll().catch(() => undefined);
    }
  });

  it("does not stop the listing of the other name-keyed memories waiting (resume, talos memory)", async () => {
    const root = makeDataDir();
    mkdirSync(join(root, ".legacy", "7", "acme", "gadgets"), { recursive: true });
    const loop = join(root, ".legacy", "7", "acme", "loop");
    symlinkSync(loop, loop);
    const registry = createTestRegistry(root);
    try {
      expect((await registry.listLegacy()).map((l) => l.name)).toEqual(["acme/gadgets"]);
    } finally {
      await registry.closeAll().catch(() => undefined);
    }
  });
});

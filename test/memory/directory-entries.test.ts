import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { exists, isDirectory } from "../../src/memory/directory-entries.js";

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

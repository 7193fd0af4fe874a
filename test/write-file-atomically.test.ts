import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { writeFileAtomically } from "../src/write-file-atomically.js";
import { makeDataDir } from "./helpers/test-app.js";

/** FileHandle is not exported: its prototype, from a handle (in a directory of its own). */
async function fileHandlePrototype(): Promise<FileHandle> {
  const probe = await open(join(makeDataDir(), "probe"), "w");
  await probe.close();
  return Object.getPrototypeOf(probe) as FileHandle;
}

describe("writeFileAtomically", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("removes its temporary file when writing it fails, and leaves the file as it was", async () => {
    const directory = makeDataDir();
    const file = join(directory, "state.json");
    await writeFileAtomically(file, "old");
    const prototype = await fileHandlePrototype();
    const writeFile = prototype.writeFile;
    vi.spyOn(prototype, "writeFile").mockImplementation(async function (
      this: FileHandle,
      ...args: Parameters<FileHandle["writeFile"]>
    ) {
      // A full disk: part of it is written, then the write fails.
      await writeFile.call(this, String(args[0]).slice(0, 3));
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    });
    await expect(writeFileAtomically(file, "new content")).rejects.toThrow("ENOSPC");
    expect(readdirSync(directory)).toEqual(["state.json"]);
    expect(readFileSync(file, "utf8")).toBe("old");
  });

  it("writes pieces in order, more than one writev call takes (IOV_MAX is 1,024)", async () => {
    const file = join(makeDataDir(), "pieces.bin");
    const pieces = Array.from({ length: 2_500 }, (_, i) => Buffer.from(`${i},`));
    await writeFileAtomically(file, pieces);
    expect(readFileSync(file).equals(Buffer.concat(pieces))).toBe(true);
  });

  it("takes a short write of pieces for a failure, and leaves the file as it was", async () => {
    const directory = makeDataDir();
    const file = join(directory, "state.bin");
    await writeFileAtomically(file, "old");
    const prototype = await fileHandlePrototype();
    const writev = prototype.writev;
    // What a nearly full disk does: writes what fits and says how much.
    vi.spyOn(prototype, "writev").mockImplementation(function (
      this: FileHandle,
      buffers: readonly NodeJS.ArrayBufferView[],
      position?: number,
    ) {
      return writev.call(this, buffers.slice(0, 1), position);
    });
    await expect(
      writeFileAtomically(file, [Buffer.from("new "), Buffer.from("content")]),
    ).rejects.toThrow("wrote 4 of 11 bytes at 0");
    expect(readdirSync(directory)).toEqual(["state.bin"]);
    expect(readFileSync(file, "utf8")).toBe("old");
  });

  it("removes its temporary file when the rename fails", async () => {
    const directory = makeDataDir();
    // A directory with a file in it cannot be renamed over.
    const target = join(directory, "target");
    mkdirSync(target);
    writeFileSync(join(target, "inside"), "");
    await expect(writeFileAtomically(target, "content")).rejects.toThrow();
    expect(readdirSync(directory)).toEqual(["target"]);
  });
});

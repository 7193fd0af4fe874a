import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { DataDirectoryInUseError, lockDataDirectory } from "../src/lock-data-directory.js";
import { lockDirectory } from "../src/memory/directory-lock.js";
import { requestsDirectory } from "../src/server-requests.js";
import { writeFileAtomically } from "../src/write-file-atomically.js";
import { captureLogs, makeDataDir } from "./helpers/test-app.js";

describe("lockDataDirectory: one server per TALOS_DATA_DIR", () => {
  it("waits for a command holding the data directory, then takes it", async () => {
    const dataDir = makeDataDir();
    const release = await lockDirectory(dataDir);
    const logs = await captureLogs("info");
    let released = false;
    setTimeout(() => void release().then(() => (released = true)), 300);
    await lockDataDirectory(dataDir, logs.log);
    expect(released).toBe(true);
    expect(logs.text()).toContain("TALOS_DATA_DIR is held by a command; waiting for it to finish");
    await expect(lockDirectory(dataDir)).rejects.toThrow("is in use by process");
  });

  it("gives up on a command that keeps it past the wait, naming the process", async () => {
    const dataDir = makeDataDir();
    onTestFinished(await lockDirectory(dataDir));
    const logs = await captureLogs("info");
    await expect(lockDataDirectory(dataDir, logs.log, { commandWaitMs: 200 })).rejects.toThrow(
      new DataDirectoryInUseError(
        `TALOS_DATA_DIR: ${dataDir} is in use by process ${process.pid}; stop it first (or remove ${join(dataDir, ".lock")} if it is gone); each server needs a data directory of its own`,
      ),
    );
  });

  it("refuses a running server's data directory at once", async () => {
    const dataDir = makeDataDir();
    onTestFinished(await lockDirectory(dataDir));
    // What a serving server writes (server-requests.ts).
    mkdirSync(requestsDirectory(dataDir), { recursive: true });
    await writeFileAtomically(
      join(requestsDirectory(dataDir), "server.json"),
      JSON.stringify({ pid: process.pid, host: hostname() }),
    );
    const logs = await captureLogs("info");
    await expect(lockDataDirectory(dataDir, logs.log)).rejects.toThrow(DataDirectoryInUseError);
    // Without the wait a command is given.
    expect(logs.text()).not.toContain("waiting");
  });
});

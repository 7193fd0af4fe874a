import { spawn } from "node:child_process";
import { readdirSync, watch } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AtomicFileStorage, readSegment } from "../../src/memory/vectra-files.js";
import { ROOT } from "../helpers/server-process.js";
import { makeDataDir } from "../helpers/test-app.js";
import { openTestStore } from "../helpers/test-memory.js";

const ROUNDS = 16;

interface Round {
  acked: string[];
  /** A flush was under way when the process died: a temporary file or more than one log file. */
  midFlush: boolean;
}

/** Runs the child until it is killed with SIGKILL, at a random moment or as a flush writes. */
function runAndKill(directory: string, prefix: string, onFlush: boolean): Promise<Round> {
  return new Promise((resolve, reject) => {
    // One process (tsx as a loader, not its wrapper CLI), so SIGKILL kills the writer itself.
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "test/helpers/memory-crash-child.ts"), directory, prefix],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const acked: string[] = [];
    let buffer = "";
    let errors = "";
    let watcher: ReturnType<typeof watch> | undefined;
    const kill = () => child.kill("SIGKILL");
    child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "ready") {
          if (onFlush) {
            watcher = watch(directory, (_event, name) => {
              if (name?.endsWith(".tmp")) kill();
            });
            setTimeout(kill, 2_000);
          } else {
            setTimeout(kill, 20 + Math.random() * 300);
          }
        } else if (line.startsWith("ack ")) {
          acked.push(line.slice(4));
        }
      }
    });
    child.on("exit", (code, signal) => {
      watcher?.close();
      if (signal !== "SIGKILL") return reject(new Error(`child exited with ${code}: ${errors}`));
      const names = readdirSync(directory);
      const midFlush =
        names.some((n) => n.endsWith(".tmp")) ||
        names.filter((n) => n.startsWith("log-")).length > 1;
      resolve({ acked, midFlush });
    });
  });
}

describe("the memory store under SIGKILL", () => {
  it("finds every acknowledged memory exactly once after each restart", async () => {
    const directory = makeDataDir();
    const acknowledged: string[] = [];
    let midFlushKills = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { acked, midFlush } = await runAndKill(directory, `r${round}`, round % 2 === 1);
      acknowledged.push(...acked);
      if (midFlush) midFlushKills++;

      const store = await openTestStore(directory);
      const ids = (await store.list()).map((r) => r.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(acknowledged.filter((id) => !ids.includes(id))).toEqual([]);
      await store.close();

      // On disk too: each memory is in exactly one vectra index file.
      const storage = new AtomicFileStorage();
      const onDisk: string[] = [];
      for (const name of readdirSync(directory).filter((n) => n.startsWith("segment-"))) {
        onDisk.push(...(await readSegment(storage, join(directory, name))).map((item) => item.id));
      }
      expect(onDisk.length).toBe(new Set(onDisk).size);
      expect(acknowledged.filter((id) => !onDisk.includes(id))).toEqual([]);
    }
    expect(acknowledged.length).toBeGreaterThan(ROUNDS * 10);
    expect(midFlushKills).toBeGreaterThan(0);
  }, 180_000);
});

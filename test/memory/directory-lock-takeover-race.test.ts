import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import type * as FsPromises from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { makeDataDir } from "../helpers/test-app.js";

// Two lockers find a lock whose owner died here. The second is descheduled before it ages the
// lock (as a second process may be): should it age it, it does so once the first holds it. It
// had then taken the first's fresh lock over too; the takeover is one process's at a time now,
// and the owner is read again under it.
let firstHolds: () => void = () => {};
const firstHeld = new Promise<void>((resolve) => (firstHolds = resolve));
let agings = 0;
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof FsPromises>();
  return {
    ...real,
    default: real,
    utimes: async (...args: Parameters<typeof real.utimes>) => {
      if (args[1] === 0 && ++agings === 2) await firstHeld;
      return real.utimes(...args);
    },
  };
});

const { LOCK_NAME, lockDirectory } = await import("../../src/memory/directory-lock.js");

describe("taking over a dead owner's lock", () => {
  it("lets only one of two lockers take over a lock left by a dead process", async () => {
    const directory = makeDataDir();
    const lock = join(directory, LOCK_NAME);
    mkdirSync(lock);
    writeFileSync(
      join(lock, "owner.json"),
      JSON.stringify({ pid: 4_000_000, host: hostname(), since: new Date().toISOString() }),
    );
    const compromised: Error[] = [];
    const first = lockDirectory(directory, { onCompromised: (e) => compromised.push(e) });
    const second = lockDirectory(directory, { onCompromised: (e) => compromised.push(e) });
    const releaseFirst = await first;
    firstHolds();
    const secondResult = await second.then(
      (release) => release,
      (error: unknown) => error,
    );
    // The first holds the lock it just took and named: the second must be refused.
    expect(existsSync(lock)).toBe(true);
    expect(secondResult).toBeInstanceOf(Error);
    await releaseFirst();
    if (typeof secondResult === "function") await (secondResult as () => Promise<void>)();
  });
});

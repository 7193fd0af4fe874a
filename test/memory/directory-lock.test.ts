import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LOCK_NAME, lockDirectory, MemoryLockedError } from "../../src/memory/directory-lock.js";
import { holdLockInChild } from "../helpers/hold-lock-in-child.js";
import { makeDataDir } from "../helpers/test-app.js";

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.on("exit", () => resolve());
  });
}

/** A lock as another process leaves it: the directory, its owner, and its last refresh. */
function plantLock(directory: string, owner: object | undefined, refreshedMsAgo: number) {
  const lock = join(directory, LOCK_NAME);
  mkdirSync(lock);
  if (owner) writeFileSync(join(lock, "owner.json"), JSON.stringify(owner));
  const at = new Date(Date.now() - refreshedMsAgo);
  utimesSync(lock, at, at);
  return lock;
}

describe("the memory directory lock", () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) child.kill("SIGKILL");
  });

  it("lets one locker in; the second fails naming the directory and the owner, until the first releases", async () => {
    const directory = makeDataDir();
    const release = await lockDirectory(directory);
    const lock = join(directory, LOCK_NAME);
    expect(JSON.parse(readFileSync(join(lock, "owner.json"), "utf8"))).toMatchObject({
      pid: process.pid,
      host: hostname(),
    });

    const second = await lockDirectory(directory).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(MemoryLockedError);
    expect((second as Error).message).toBe(
      `${directory} is in use by process ${process.pid}; stop it first (or remove ${lock} if it is gone)`,
    );

    await release();
    expect(existsSync(lock)).toBe(false);
    await (
      await lockDirectory(directory)
    )();
  });

  it("keeps out while another live process holds it, and takes over at once when that process is killed", async () => {
    const directory = makeDataDir();
    const child = await holdLockInChild(directory);
    children.push(child);

    await expect(lockDirectory(directory)).rejects.toThrow(
      `${directory} is in use by process ${child.pid}; stop it first`,
    );

    // SIGKILL: no exit handler runs, the lock stays behind, fresh.
    child.kill("SIGKILL");
    await exited(child);
    expect(existsSync(join(directory, LOCK_NAME))).toBe(true);
    const release = await lockDirectory(directory);
    expect(JSON.parse(readFileSync(join(directory, LOCK_NAME, "owner.json"), "utf8")).pid).toBe(
      process.pid,
    );
    await release();
  });

  it("takes over at once a lock whose owner has exited but is not yet reaped (a zombie)", async () => {
    // The inner shell exits a second later, when its parent has become `sleep`, which never
    // reaps it (had it exited before the exec, the shell could have reaped it).
    const parent = spawn("sh", ["-c", 'sh -c "sleep 1" & echo $!; exec sleep 30'], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    children.push(parent);
    const [line] = (await once(parent.stdout, "data")) as [Buffer];
    const pid = Number(line.toString().trim());
    await vi.waitFor(
      () => {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        expect(stat.charAt(stat.lastIndexOf(")") + 2)).toBe("Z");
      },
      { timeout: 10_000, interval: 50 },
    );
    // kill(pid, 0) still finds it.
    expect(() => process.kill(pid, 0)).not.toThrow();

    const directory = makeDataDir();
    plantLock(directory, { pid, host: hostname(), since: new Date().toISOString() }, 0);
    const release = await lockDirectory(directory);
    expect(JSON.parse(readFileSync(join(directory, LOCK_NAME, "owner.json"), "utf8")).pid).toBe(
      process.pid,
    );
    await release();
  }, 20_000);

  it("takes over a lock from another host only once nobody has refreshed it for the stale time", async () => {
    const elsewhere = { pid: process.pid, host: "another-host", since: "2026-11-24T00:00:00Z" };
    const fresh = makeDataDir();
    const lock = plantLock(fresh, elsewhere, 0);
    // The pid means nothing on another host: this process's own pid is not a reason to take it.
    await expect(lockDirectory(fresh)).rejects.toThrow(
      `${fresh} is in use by process ${process.pid} on another-host; stop it first (or remove ${lock} if it is gone)`,
    );

    const stale = makeDataDir();
    plantLock(stale, elsewhere, 60_000);
    const release = await lockDirectory(stale);
    expect(JSON.parse(readFileSync(join(stale, LOCK_NAME, "owner.json"), "utf8")).host).toBe(
      hostname(),
    );
    await release();
  });

  it("gives a lock without its owner's name a moment to get one, then judges that owner", async () => {
    const directory = makeDataDir();
    const lock = plantLock(directory, undefined, 0);
    // The owner names itself while the second locker waits: a live process (this one, since
    // this run started), so the lock is held.
    const owner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    setTimeout(() => writeFileSync(join(lock, "owner.json"), JSON.stringify(owner)), 300);
    await expect(lockDirectory(directory)).rejects.toThrow(
      `${directory} is in use by process ${process.pid}; stop it first`,
    );
  });

  it("takes over a lock still nameless 2 s after it was made: its maker died in between", async () => {
    const directory = makeDataDir();
    plantLock(directory, undefined, 1_500);
    const started = Date.now();
    const release = await lockDirectory(directory);
    // It waited for the rest of the 2 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    const owner = JSON.parse(readFileSync(join(directory, LOCK_NAME, "owner.json"), "utf8"));
    expect(owner.pid).toBe(process.pid);
    await release();
  });

  it("takes over a lock of a previous run that had this process's pid", async () => {
    const directory = makeDataDir();
    const before = new Date(Date.now() - process.uptime() * 1000 - 60_000).toISOString();
    plantLock(directory, { pid: process.pid, host: hostname(), since: before }, 0);
    const release = await lockDirectory(directory);
    await release();
  });

  it("reports a lock taken over while held, instead of ending the process", async () => {
    const directory = makeDataDir();
    const onCompromised = vi.fn();
    const release = await lockDirectory(directory, { staleMs: 2_000, onCompromised });
    // Someone decided it was stale and replaced it: its refresh time is no longer ours.
    const at = new Date(Date.now() - 60_000);
    utimesSync(join(directory, LOCK_NAME), at, at);
    await vi.waitFor(() => expect(onCompromised).toHaveBeenCalledOnce(), { timeout: 10_000 });
    expect(onCompromised.mock.calls[0]![0]).toMatchObject({ code: "ECOMPROMISED" });
    await release();
  });

  it("stays held across its refreshes: writing its owner does not look like a takeover", async () => {
    const directory = makeDataDir();
    const onCompromised = vi.fn();
    // Refreshed every second; held for three refreshes.
    const release = await lockDirectory(directory, { staleMs: 2_000, onCompromised });
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(onCompromised).not.toHaveBeenCalled();
    expect(existsSync(join(directory, LOCK_NAME, "owner.json"))).toBe(true);
    await release();
    expect(existsSync(join(directory, LOCK_NAME))).toBe(false);
  });
});

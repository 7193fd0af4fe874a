import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import type { NewJob } from "../../src/jobs/job-queue.js";
import { createFakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

const HOUR = 3_600_000;

function job(id: string, thread = "1/10#1"): NewJob {
  return { id, kind: "comment", event: "issue_comment.created", thread, payload: { id } };
}

async function openJournal(file: string, clock: FakeClock, maxQueued = 1) {
  const logs = await captureLogs("warn");
  return JobJournal.open({
    file,
    maxQueued,
    retentionMs: 72 * HOUR,
    maxFinished: 1_000,
    clock,
    log: logs.log,
  });
}

async function fileHandlePrototype(directory: string): Promise<FileHandle> {
  const probe = await open(join(directory, "probe"), "w");
  const prototype = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  return prototype;
}

const noSpace = () =>
  Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });

const gate = () => {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
};

describe("a copy of a delivery accepted while the first copy's failed add is cut back", () => {
  afterEach(() => vi.restoreAllMocks());

  it("does not run the second copy before its own add is durable", async () => {
    const directory = makeDataDir();
    const journal = await openJournal(join(directory, "journal.log"), createFakeClock(), 100);
    const prototype = await fileHandlePrototype(directory);
    const appendFile = prototype.appendFile;
    const truncate = prototype.truncate;
    const datasync = prototype.datasync;
    let adds = 0;
    // The first add of X fails (a full disk); the second is written, its fdatasync slow.
    vi.spyOn(prototype, "appendFile").mockImplementation(async function (
      this: FileHandle,
      ...args: Parameters<FileHandle["appendFile"]>
    ) {
      if (String(args[0]).includes(`"op":"add","id":"X"`) && adds++ === 0) throw noSpace();
      return appendFile.apply(this, args);
    });
    const cutting = gate();
    let truncating = false;
    vi.spyOn(prototype, "truncate").mockImplementation(async function (
      this: FileHandle,
      ...args: Parameters<FileHandle["truncate"]>
    ) {
      truncating = true;
      await cutting.promise;
      return truncate.apply(this, args);
    });
    const syncing = gate();
    vi.spyOn(prototype, "datasync").mockImplementation(async function (this: FileHandle) {
      await syncing.promise;
      return datasync.call(this);
    });

    const first = journal.enqueue(job("X"));
    const firstSettled = first.then(
      () => "accepted",
      () => "failed",
    );
    while (!truncating) await new Promise((r) => setTimeout(r, 1));
    // The copy arrives while the failed write is being cut off the file.
    const second = journal.enqueue(job("X"));
    cutting.open();
    expect(await firstSettled).toBe("failed");
    // The second copy's add is still being fdatasynced: not accepted yet, so not to run.
    // (claimNext picks its job before its first await; its start then waits behind the sync.)
    const claiming = journal.claimNext();
    syncing.open();
    const claimed = await claiming;
    await second;
    expect(claimed?.id).toBeUndefined();
    vi.restoreAllMocks();
    await journal.close();
  });
});

describe("a delivery accepted again after its parked job expired", () => {
  it("is still there after a restart whose clock was stepped back (an NTP correction)", async () => {
    const clock = createFakeClock();
    const file = join(makeDataDir(), "journal.log");
    const journal = await openJournal(file, clock);
    await journal.enqueue(job("bad", "a"));
    expect((await journal.claimNext())?.id).toBe("bad");
    await journal.fail("bad", "malformed", undefined);
    clock.advance(73 * HOUR);
    // The queue is full: the parked job, past the retention, is forgotten, and "late" taken.
    expect(await journal.enqueue(job("late", "b"))).toEqual({ status: "accepted" });
    expect((await journal.claimNext())?.id).toBe("late");
    await journal.complete("late");
    // The parked delivery, sent again: accepted (a 2xx), so Talos owes it a run.
    expect(await journal.enqueue(job("bad", "a"))).toEqual({ status: "accepted" });
    await journal.close();

    // The clock was 2 hours fast and is corrected before the restart.
    const stepped = createFakeClock(clock.now() - 2 * HOUR);
    const reopened = await openJournal(file, stepped);
    const jobs = reopened.list();
    await reopened.close();
    expect(jobs.map(({ id, parked, attempts }) => ({ id, parked, attempts }))).toEqual([
      { id: "bad", parked: undefined, attempts: 0 },
    ]);
  });

  it("is accepted when it comes again, without waiting for a full queue or a restart", async () => {
    const clock = createFakeClock();
    const journal = await openJournal(join(makeDataDir(), "journal.log"), clock, 100);
    await journal.enqueue(job("bad", "a"));
    expect((await journal.claimNext())?.id).toBe("bad");
    await journal.fail("bad", "malformed", undefined);
    clock.advance(73 * HOUR);
    // It had been a duplicate until the queue filled up or the process restarted.
    expect(await journal.enqueue(job("bad", "a"))).toEqual({ status: "accepted" });
    expect(journal.list().map(({ id, parked }) => ({ id, parked }))).toEqual([
      { id: "bad", parked: undefined },
    ]);
    await journal.close();
  });
});

import { appendFileSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import type * as FsPromises from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { NewJob } from "../../src/jobs/job-queue.js";
import { createFakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

// fs.copyFile's work is libuv's, out of a spy's reach: the module is mocked to run a hook while a
// copy is under way, as a real copy of a large journal takes many turns of the event loop.
const hooks: { onCopy?: (() => void) | undefined } = {};
vi.mock("node:fs/promises", async (importOriginal) => {
  const original = await importOriginal<typeof FsPromises>();
  return {
    ...original,
    copyFile: async (...args: Parameters<typeof original.copyFile>) => {
      const hook = hooks.onCopy;
      hooks.onCopy = undefined;
      await new Promise((resolve) => setImmediate(resolve));
      hook?.();
      return original.copyFile(...args);
    },
  };
});

const { JobJournal } = await import("../../src/jobs/job-journal.js");

const HOUR = 3_600_000;

function job(id: string, thread: string): NewJob {
  return { id, kind: "k", event: "issues.edited", thread, installation: 1, payload: { id } };
}

async function openJournal(file: string, clock: FakeClock) {
  const logs = await captureLogs("warn");
  return JobJournal.open({
    file,
    maxQueued: 100,
    retentionMs: 72 * HOUR,
    maxFinished: 1_000,
    clock,
    log: logs.log,
  });
}

describe("a compaction that first copies a damaged journal aside", () => {
  // The copy was awaited before the snapshot was taken: a record applied during it was both in
  // the snapshot and appended after it (found by a review).
  it("writes a start applied during the copy once, so a restart counts each attempt once", async () => {
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const clock = createFakeClock();
    const first = await openJournal(file, clock);
    await first.enqueue(job("retried", "a"));
    await first.enqueue(job("other", "b"));
    await first.close();
    appendFileSync(file, '{"op":"add","identifier":"from-another-version"}\n');
    // No room for the copy at the start (a directory by its name): the unread line stays.
    const copy = join(
      directory,
      `journal.log.damaged-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`,
    );
    mkdirSync(copy);
    const journal = await openJournal(file, clock);
    expect(journal.damagedCopy).toBeUndefined();
    rmdirSync(copy);

    let claims = 0;
    let claimedDuringCopy: ReturnType<typeof journal.claimNext> | undefined;
    // The failed job starts again while the copy is made: its start applied, its line pending.
    hooks.onCopy = () => {
      claims++;
      claimedDuringCopy = journal.claimNext();
    };
    // Two lines each: the file outgrows what it holds, and is compacted.
    for (let i = 0; i < 600 && !claimedDuringCopy; i++) {
      claims++;
      await journal.claimNext();
      await journal.fail("retried", "GitHub 502", 0);
    }
    expect((await claimedDuringCopy)?.id).toBe("retried");
    expect(journal.damagedCopy).toBe(copy);
    expect(readFileSync(copy, "utf8")).toContain("from-another-version");
    const counted = journal.list().map(({ id, attempts }) => ({ id, attempts }));
    expect(counted).toEqual([
      { id: "retried", attempts: claims },
      { id: "other", attempts: 0 },
    ]);
    await journal.close();

    const reopened = await openJournal(file, clock);
    expect(reopened.list().map(({ id, attempts }) => ({ id, attempts }))).toEqual(counted);
    await reopened.close();
  });
});

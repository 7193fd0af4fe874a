import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";
import { createFakeClock } from "../helpers/fake-clock.js";

describe("a compaction cut short by a crash", () => {
  // A compaction's temporary is named for its process, and was removed only when the write
  // threw: each SIGKILL or OOM kill while one was written left a journal-sized file for good.
  it("removes the temporary a killed compaction left once the server starts again", async () => {
    const logs = await captureLogs("warn");
    const directory = join(makeDataDir(), "jobs");
    mkdirSync(directory, { recursive: true });
    const file = join(directory, "journal.log");
    const record = { op: "add", id: "d1", kind: "work", event: "issues.opened", thread: "t" };
    const line = `${JSON.stringify({ ...record, payload: {}, acceptedAt: 1, attempts: 0 })}\n`;
    writeFileSync(file, line);
    // What a compaction killed between creating its temporary and renaming it leaves: part of
    // the snapshot, under the dead process's pid (no process reuses it as this one's).
    const leftover = `journal.log.999999.0badf00d.tmp`;
    writeFileSync(join(directory, leftover), line + line.slice(0, 20));

    const journal = await JobJournal.open({
      file,
      maxQueued: 100,
      retentionMs: 3_600_000,
      maxFinished: 100,
      clock: createFakeClock(),
      log: logs.log,
    });
    onTestFinished(() => journal.close());

    expect(journal.list().map((job) => job.id)).toEqual(["d1"]);
    expect(readdirSync(directory).sort()).toEqual(["journal.log"]);
  });
});

import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import type { NewJob } from "../../src/jobs/job-queue.js";
import { createFakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

const HOUR = 3_600_000;

function job(id: string, thread = "1/10#1", installation = 1): NewJob {
  return {
    id,
    kind: "comment",
    event: "issue_comment.created",
    thread,
    repository: installation === 1 ? "octo/hello" : "other/repo",
    installation,
    payload: { id },
  };
}

async function openJournal(
  file: string,
  options: {
    clock?: FakeClock;
    maxQueued?: number;
    maxQueuedBytes?: number;
    installationShare?: number;
    maxFinished?: number;
  } = {},
) {
  const logs = await captureLogs("warn");
  const journal = await JobJournal.open({
    file,
    maxQueued: options.maxQueued ?? 100,
    maxQueuedBytes: options.maxQueuedBytes,
    installationShare: options.installationShare,
    retentionMs: 72 * HOUR,
    maxFinished: options.maxFinished ?? 1_000,
    clock: options.clock ?? createFakeClock(),
    log: logs.log,
  });
  return { journal, logs };
}

/** FileHandle is not exported: its prototype, from a handle, to make its writes fail. */
async function fileHandlePrototype(directory: string): Promise<FileHandle> {
  const probe = await open(join(directory, "probe"), "w");
  const prototype = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  return prototype;
}

const noSpace = () =>
  Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });

describe("the job journal", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("keeps an accepted job, its attempts and its payload across a restart", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file);
    expect(await first.journal.enqueue(job("d1"))).toEqual({ status: "accepted" });
    const claimed = await first.journal.claimNext();
    expect(claimed).toMatchObject({ id: "d1", attempts: 1 });
    // No complete(): the process died while the job ran.
    await first.journal.close();

    const second = await openJournal(file);
    expect(second.journal.list()).toMatchObject([{ id: "d1", attempts: 1, payload: { id: "d1" } }]);
    expect(await second.journal.claimNext()).toMatchObject({ id: "d1", attempts: 2 });
    await second.journal.complete("d1");
    await second.journal.close();

    const third = await openJournal(file);
    expect(third.journal.list()).toEqual([]);
    // Finished, it is still known (a redelivery asked for at start would be a duplicate).
    expect(await third.journal.has("d1")).toBe(true);
    expect(await third.journal.has("d2")).toBe(false);
    expect(await third.journal.enqueue(job("d1"))).toEqual({ status: "duplicate" });
    await third.journal.close();
  });

  it("accepts concurrent copies of one delivery once", async () => {
    const { journal } = await openJournal(join(makeDataDir(), "journal.log"));
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => journal.enqueue(job("same"))));
    expect(results.filter((r) => r.status === "accepted")).toHaveLength(1);
    expect(results.filter((r) => r.status === "duplicate")).toHaveLength(4);
    expect(journal.list()).toHaveLength(1);
    await journal.close();
  });

  it("runs one job per thread at a time, in arrival order", async () => {
    const { journal } = await openJournal(join(makeDataDir(), "journal.log"));
    await journal.enqueue(job("a1", "a"));
    await journal.enqueue(job("a2", "a"));
    await journal.enqueue(job("b1", "b"));
    expect((await journal.claimNext())?.id).toBe("a1");
    expect((await journal.claimNext())?.id).toBe("b1");
    expect(await journal.claimNext()).toBeUndefined(); // a2 waits for a1
    await journal.complete("a1");
    expect((await journal.claimNext())?.id).toBe("a2");
    await journal.close();
  });

  it("holds a failed job until its retry time, and never runs a parked one", async () => {
    const clock = createFakeClock();
    const { journal } = await openJournal(join(makeDataDir(), "journal.log"), { clock });
    await journal.enqueue(job("retry", "a"));
    await journal.enqueue(job("later", "a"));
    await journal.enqueue(job("park", "b"));
    await journal.claimNext();
    await journal.claimNext();
    await journal.fail("retry", "GitHub 502", clock.now() + 30_000);
    await journal.fail("park", "malformed", undefined);
    // The thread keeps its order: "later" waits behind the job that will be retried.
    expect(await journal.claimNext()).toBeUndefined();
    expect(journal.nextRetryAt()).toBe(clock.now() + 30_000);
    clock.advance(30_000);
    expect(await journal.claimNext()).toMatchObject({ id: "retry", attempts: 2 });
    expect(journal.list().find((j) => j.id === "park")?.parked?.error).toBe("malformed");
    await journal.close();
  });

  it("makes a parked job wait again as if just accepted, in its thread's order, across a restart", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file);
    await first.journal.enqueue(job("parked", "a"));
    await first.journal.claimNext();
    await first.journal.spend("parked", 700);
    await first.journal.fail("parked", "TypeError: cannot read properties of undefined", undefined);
    await first.journal.enqueue(job("later", "a"));
    // Not parked, or unknown: nothing to retry.
    expect(await first.journal.retryParked("later")).toBe(false);
    expect(await first.journal.retryParked("unknown")).toBe(false);
    expect(await first.journal.retryParked("parked")).toBe(true);
    await first.journal.close();
    expect(readFileSync(file, "utf8")).toContain('"op":"retry","id":"parked"');

    const second = await openJournal(file);
    // Its runs, their tokens and its error are forgotten; it is still ahead of its thread's later job.
    expect(await second.journal.claimNext()).toMatchObject({ id: "parked", attempts: 1 });
    const [retried] = second.journal.list();
    expect(retried?.parked).toBeUndefined();
    expect(retried?.spentTokens).toBeUndefined();
    expect(await second.journal.claimNext()).toBeUndefined();
    await second.journal.complete("parked");
    expect(await second.journal.claimNext()).toMatchObject({ id: "later" });
    await second.journal.close();
  });

  it("keeps the tokens a job's runs spent, a crashed run's included, until the job ends", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file);
    await first.journal.enqueue(job("spender"));
    await first.journal.claimNext();
    await first.journal.spend("spender", 600);
    await first.journal.fail("spender", "GitHub 502", 0);
    expect(await first.journal.claimNext()).toMatchObject({ attempts: 2, spentTokens: 600 });
    await first.journal.spend("spender", 300);
    // No fail(): the process was killed after the second run's model call.
    await first.journal.close();
    expect(readFileSync(file, "utf8")).toContain('{"op":"spend","id":"spender","tokens":300}');

    // Opening rewrites the file: the count is in the job's snapshot from then on.
    const second = await openJournal(file);
    expect(await second.journal.claimNext()).toMatchObject({ attempts: 3, spentTokens: 900 });
    await second.journal.complete("spender");
    // Too late to count: the job is finished, and its count gone with it.
    await second.journal.spend("spender", 50);
    await second.journal.close();
    expect(readFileSync(file, "utf8")).not.toContain('"tokens":50');
    const third = await openJournal(file);
    expect(third.journal.list()).toEqual([]);
    await third.journal.close();
  });

  it("keeps the steps a job's runs finished for its next runs, across restarts, until it ends or is retried by hand", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file);
    await first.journal.enqueue(job("stepper"));
    expect((await first.journal.claimNext())?.stepsDone).toBeUndefined();
    await first.journal.stepDone("stepper", "triage");
    await first.journal.stepDone("stepper", "triage");
    await first.journal.fail("stepper", "embeddings: 503", 0);
    expect(await first.journal.claimNext()).toMatchObject({ attempts: 2, stepsDone: ["triage"] });
    await first.journal.stepDone("unknown", "triage");
    await first.journal.close();

    // Replayed, then in the job's snapshot once the next open has rewritten the file.
    for (let i = 0; i < 2; i++) {
      const reopened = await openJournal(file);
      expect(reopened.journal.list()).toMatchObject([{ id: "stepper", stepsDone: ["triage"] }]);
      await reopened.journal.close();
    }
    const last = await openJournal(file);
    await last.journal.claimNext();
    await last.journal.fail("stepper", "malformed", undefined);
    expect(await last.journal.retryParked("stepper")).toBe(true);
    // Retried by hand: as if just accepted.
    expect((await last.journal.claimNext())?.stepsDone).toBeUndefined();
    await last.journal.complete("stepper");
    await last.journal.stepDone("stepper", "late");
    await last.journal.close();
    expect(readFileSync(file, "utf8")).not.toContain('"step":"late"');
  });

  it("takes a step back that the disk would not take: the next run does it again", async () => {
    const directory = makeDataDir();
    const { journal } = await openJournal(join(directory, "journal.log"));
    await journal.enqueue(job("stepper"));
    await journal.claimNext();
    const prototype = await fileHandlePrototype(directory);
    vi.spyOn(prototype, "appendFile").mockRejectedValue(noSpace());
    await expect(journal.stepDone("stepper", "triage")).rejects.toThrow("ENOSPC");
    vi.restoreAllMocks();
    await journal.fail("stepper", "embeddings: 503", 0);
    // It was kept in memory, and a retry in this process skipped the step a restart would redo.
    expect((await journal.claimNext())?.stepsDone).toBeUndefined();
    await journal.close();
  });

  it("refuses jobs over its bound, and remembers which repositories were refused", async () => {
    const file = join(makeDataDir(), "journal.log");
    const { journal } = await openJournal(file, { maxQueued: 2 });
    await journal.enqueue(job("j1"));
    await journal.enqueue(job("j2"));
    expect(await journal.enqueue(job("j3"))).toEqual({ status: "refused", reason: "queue-full" });
    await journal.close();
    const reopened = await openJournal(file, { maxQueued: 2 });
    expect(reopened.journal.refused()).toMatchObject([
      { id: "j3", repository: "octo/hello", reason: "queue-full" },
    ]);
    await reopened.journal.close();
  });

  it("refuses a job over its bound when the disk is full too, rather than failing", async () => {
    const directory = makeDataDir();
    const { journal, logs } = await openJournal(join(directory, "journal.log"), { maxQueued: 1 });
    await journal.enqueue(job("j1"));
    const prototype = await fileHandlePrototype(directory);
    vi.spyOn(prototype, "appendFile").mockRejectedValue(noSpace());
    // The refusal is what the runner counts (jobs_refused); its record is only for `talos jobs`.
    expect(await journal.enqueue(job("j2"))).toEqual({ status: "refused", reason: "queue-full" });
    expect(logs.text()).toContain("ENOSPC");
    vi.restoreAllMocks();
    await journal.close();
  });

  it("refuses a delivery whose payload would take the jobs held past their size bound, across a restart too", async () => {
    const file = join(makeDataDir(), "journal.log");
    // A payload of about 820 bytes each; room for two and a small one.
    const heavy = (id: string) => ({ ...job(id, id), payload: { id, text: "x".repeat(800) } });
    const { journal } = await openJournal(file, { maxQueuedBytes: 2_200 });
    expect(await journal.enqueue(heavy("h1"))).toEqual({ status: "accepted" });
    expect(await journal.enqueue(heavy("h2"))).toEqual({ status: "accepted" });
    expect(await journal.enqueue(heavy("h3"))).toEqual({ status: "refused", reason: "queue-full" });
    // A small one still fits; a finished job's payload no longer counts.
    expect(await journal.enqueue(job("small", "s"))).toEqual({ status: "accepted" });
    await journal.claimNext();
    await journal.complete("h1");
    expect(await journal.enqueue(heavy("h4"))).toEqual({ status: "accepted" });
    await journal.close();

    // Weighed again from the file at start.
    const reopened = await openJournal(file, { maxQueuedBytes: 2_200 });
    expect(reopened.journal.list().map((j) => j.id)).toEqual(["h2", "small", "h4"]);
    expect(await reopened.journal.enqueue(heavy("h5"))).toEqual({
      status: "refused",
      reason: "queue-full",
    });
    await reopened.journal.close();
  });

  it("gives one installation only its share of the bound, across a restart, parked jobs counted until they expire", async () => {
    const file = join(makeDataDir(), "journal.log");
    const clock = createFakeClock();
    const options = { clock, maxQueued: 10, installationShare: 0.3 };
    const { journal } = await openJournal(file, options);
    for (const id of ["a1", "a2", "a3"]) await journal.enqueue(job(id, id));
    // Its share is 3 of the 10 places: the fourth is refused, another installation's is not.
    expect(await journal.enqueue(job("a4", "a4"))).toEqual({
      status: "refused",
      reason: "installation-full",
    });
    expect(await journal.enqueue(job("b1", "b1", 2))).toEqual({ status: "accepted" });
    // A finished job gives its place back; a parked one keeps it until it expires.
    await journal.claimNext();
    await journal.complete("a1");
    await journal.claimNext();
    await journal.fail("a2", "malformed", undefined);
    expect(await journal.enqueue(job("a5", "a5"))).toEqual({ status: "accepted" });
    expect((await journal.enqueue(job("a6", "a6"))).status).toBe("refused");
    await journal.close();

    // Counted again from the file at start.
    const reopened = await openJournal(file, options);
    expect(await reopened.journal.enqueue(job("a7", "a7"))).toEqual({
      status: "refused",
      reason: "installation-full",
    });
    expect(reopened.journal.refused().map((r) => [r.id, r.reason])).toEqual([
      ["a4", "installation-full"],
      ["a6", "installation-full"],
      ["a7", "installation-full"],
    ]);
    clock.advance(73 * HOUR);
    expect(await reopened.journal.enqueue(job("a8", "a8"))).toEqual({ status: "accepted" });
    await reopened.journal.close();
  });

  it("gives an installation the whole share it was set: 0.29 of 100 places is 29 jobs, not 28", async () => {
    const { journal } = await openJournal(join(makeDataDir(), "journal.log"), {
      maxQueued: 100,
      installationShare: 0.29,
    });
    // 100 × 0.29 is 28.999999999999996 in floating point.
    for (let i = 1; i <= 29; i++)
      expect(await journal.enqueue(job(`a${i}`, `t${i}`))).toEqual({ status: "accepted" });
    expect((await journal.enqueue(job("a30", "t30"))).status).toBe("refused");
    await journal.close();
  });

  it("gives one installation only its share of the payloads' size, yet never refuses its first job for it", async () => {
    const file = join(makeDataDir(), "journal.log");
    const heavy = (id: string, installation: number) => ({
      ...job(id, id, installation),
      payload: { id, text: "x".repeat(800) },
    });
    // A share of 400 bytes: less than one heavy payload.
    const { journal } = await openJournal(file, { maxQueuedBytes: 4_000, installationShare: 0.1 });
    expect(await journal.enqueue(heavy("a1", 1))).toEqual({ status: "accepted" });
    expect(await journal.enqueue(heavy("a2", 1))).toEqual({
      status: "refused",
      reason: "installation-full",
    });
    expect(await journal.enqueue(heavy("b1", 2))).toEqual({ status: "accepted" });
    await journal.claimNext();
    await journal.complete("a1");
    expect(await journal.enqueue(heavy("a3", 1))).toEqual({ status: "accepted" });
    await journal.close();
  });

  it("weighs a payload in UTF-8 bytes, as it is written: 750 CJK characters are 2,250 bytes", async () => {
    const file = join(makeDataDir(), "journal.log");
    const { journal } = await openJournal(file, { maxQueuedBytes: 2_200 });
    const cjk = { ...job("cjk"), payload: { id: "cjk", text: "落".repeat(750) } };
    // Counted in UTF-16 units it weighed about 770, and three times that went to disk.
    expect(await journal.enqueue(cjk)).toEqual({ status: "refused", reason: "queue-full" });
    const latin = { ...job("latin"), payload: { id: "latin", text: "x".repeat(700) } };
    expect(await journal.enqueue(latin)).toEqual({ status: "accepted" });
    await journal.close();
    expect(statSync(file).size).toBeLessThan(2_200);
  });

  it("weighs a held job the same after restarts as when it was accepted, its state in its line or not", async () => {
    const heavy = { ...job("a", "a"), payload: { id: "a", text: "x".repeat(800) } };
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file, { maxQueuedBytes: 2_200 });
    expect(await first.journal.enqueue(heavy)).toEqual({ status: "accepted" });
    expect((await first.journal.claimNext())?.id).toBe("a");
    // Parked with an error of 500 characters, which the next open's rewrite puts in its line.
    await first.journal.fail("a", "e".repeat(500), undefined);
    await first.journal.close();
    await (await openJournal(file)).journal.close();
    // The line it is weighed from now holds its attempts and error: they weighed 550 bytes more,
    // and a second job that fitted beside it when it was accepted was refused.
    const again = await openJournal(file, { maxQueuedBytes: 2_200 });
    expect(again.journal.list().map((j) => j.id)).toEqual(["a"]);
    const second = { ...heavy, id: "b", thread: "b", payload: { id: "b", text: "x".repeat(800) } };
    expect(await again.journal.enqueue(second)).toEqual({ status: "accepted" });
    await again.journal.close();
  });

  it("ignores a partly written last line and malformed lines, with a warning", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file);
    await first.journal.enqueue(job("ok"));
    await first.journal.close();
    appendFileSync(file, 'not json\n{"op":"add","id":"torn","payl');
    const second = await openJournal(file);
    expect(second.journal.list().map((j) => j.id)).toEqual(["ok"]);
    expect(second.logs.text()).toContain("partly written line");
    expect(second.logs.text()).toContain("malformed line");
    await second.journal.close();
  });

  it("keeps a copy of a journal with malformed lines before its rewrite drops them; a torn last line alone is no damage", async () => {
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const clock = createFakeClock();
    const first = await openJournal(file, { clock });
    await first.journal.enqueue(job("ok"));
    await first.journal.close();
    appendFileSync(file, '{"op":"add","id":"torn","payl');
    const torn = await openJournal(file, { clock });
    expect(torn.journal.malformedLines).toBe(0);
    await torn.journal.close();
    expect(readdirSync(directory).sort()).toEqual(["journal.log"]);

    // A line of another version, or a disk fault: it cannot be read, nor run, but is not thrown away.
    const damage = '{"op":"add","identifier":"from-another-version"}\n';
    appendFileSync(file, damage);
    const before = readFileSync(file, "utf8");
    const second = await openJournal(file, { clock });
    expect(second.journal.list().map((j) => j.id)).toEqual(["ok"]);
    expect(second.journal.malformedLines).toBe(1);
    const copy = `journal.log.damaged-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`;
    expect(second.journal.damagedCopy).toBe(join(directory, copy));
    expect(readdirSync(directory).sort()).toEqual(["journal.log", copy]);
    expect(readFileSync(join(directory, copy), "utf8")).toBe(before);
    expect(readFileSync(file, "utf8")).not.toContain("from-another-version");
    expect(second.logs.lines()).toContainEqual(
      expect.objectContaining({
        msg: "the job journal had lines that cannot be read: they were skipped, and the file as it was is kept",
        lines: 1,
        copy: join(directory, copy),
      }),
    );
    await second.journal.close();
    // Rewritten without it: the next start finds no damage, and makes no second copy.
    const third = await openJournal(file, { clock });
    expect(third.journal.malformedLines).toBe(0);
    await third.journal.close();
    expect(readdirSync(directory)).toHaveLength(2);
  });

  it("reads lines longer than its reads (a chunk at a time), multi-byte characters cut between chunks included", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file);
    // 3 MB of 3-byte characters, offset by one byte: the 1 MiB chunks cut some in two.
    const text = `x${"語".repeat(1_000_000)}`;
    await first.journal.enqueue({ ...job("big"), payload: { text } });
    await first.journal.enqueue(job("after", "2"));
    await first.journal.close();
    appendFileSync(file, '{"op":"add","id":"torn","payl');

    const second = await openJournal(file);
    const jobs = second.journal.list();
    expect(jobs.map((j) => j.id)).toEqual(["big", "after"]);
    expect((jobs[0]!.payload as { text: string }).text === text).toBe(true);
    expect(second.logs.text()).toContain("partly written line");
    expect(second.logs.text()).not.toContain("malformed line");
    await second.journal.close();
  });

  it("stays bounded: finished jobs are compacted and forgotten after the retention", async () => {
    const clock = createFakeClock();
    const file = join(makeDataDir(), "journal.log");
    const { journal } = await openJournal(file, { clock, maxFinished: 100 });
    for (let i = 0; i < 1_500; i++) {
      await journal.enqueue(job(`d${i}`, `t${i}`));
      await journal.claimNext();
      await journal.complete(`d${i}`);
    }
    await journal.close();
    const lines = readFileSync(file, "utf8").split("\n").length;
    expect(lines).toBeLessThan(3 * 1_500);
    clock.advance(73 * HOUR);
    const reopened = await openJournal(file, { clock, maxFinished: 100 });
    // Past the retention, an old delivery id is new again (GitHub redelivers for 3 days only).
    expect(await reopened.journal.enqueue(job("d1499"))).toEqual({ status: "accepted" });
    await reopened.journal.close();
    expect(readFileSync(file, "utf8").split("\n").length).toBeLessThan(10);
  });

  it("takes a delivery redelivered past the retention as a new one before any rewrite, across a restart too", async () => {
    // As with REDIS_URL. Finished ids were forgotten only when the file was rewritten (a start,
    // or a compaction once the file doubled): until then a redelivery was skipped (found by a
    // review).
    const file = join(makeDataDir(), "journal.log");
    const clock = createFakeClock();
    const { journal } = await openJournal(file, { clock });
    await journal.enqueue(job("d1"));
    await journal.claimNext();
    await journal.complete("d1");
    clock.advance(72 * HOUR);
    expect(await journal.has("d1")).toBe(true);
    clock.advance(1);
    expect(await journal.has("d1")).toBe(false);
    expect(await journal.enqueue(job("d1"))).toEqual({ status: "accepted" });
    await journal.close();
    // Its add follows its `done` in the file: the restart keeps the job accepted.
    const reopened = await openJournal(file, { clock });
    expect(reopened.journal.list().map((j) => j.id)).toEqual(["d1"]);
    await reopened.journal.close();
  });

  it("never runs a delivery whose add failed, nor lets it hold up its thread", async () => {
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const { journal } = await openJournal(file);
    await failAddOf(directory, "A");
    // The delivery, and in the same tick the runner's pump, woken by another job's end.
    const enqueued = journal.enqueue(job("A", "issue"));
    const claimed = journal.claimNext();
    await expect(enqueued).rejects.toThrow("ENOSPC");
    // Its sender was told it failed (GitHub may redeliver it): it must not run.
    expect(await claimed).toBeUndefined();
    expect(journal.list()).toEqual([]);
    vi.restoreAllMocks();

    // The next comment runs: the thread is not held by a run nobody will end.
    expect(await journal.enqueue(job("B", "issue"))).toEqual({ status: "accepted" });
    expect(await journal.claimNext()).toMatchObject({ id: "B", attempts: 1 });
    await journal.complete("B");
    await journal.close();
    const reopened = await openJournal(file);
    expect(await reopened.journal.enqueue(job("A", "issue"))).toEqual({ status: "accepted" });
    expect(reopened.journal.list()).toMatchObject([{ id: "A", attempts: 0 }]);
    await reopened.journal.close();
  });

  it("keeps out of a rewrite a delivery whose add failed just before it", async () => {
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const { journal } = await openJournal(file);
    const prototype = await failAddOf(directory, "A");
    // The partial add cannot be cut off, so the next write (B's) rewrites the file.
    vi.spyOn(prototype, "truncate").mockRejectedValue(new Error("EIO: i/o error, ftruncate"));
    const enqueued = [journal.enqueue(job("A", "a")), journal.enqueue(job("B", "b"))];
    await expect(enqueued[0]).rejects.toThrow("ENOSPC");
    expect(await enqueued[1]).toEqual({ status: "accepted" });
    vi.restoreAllMocks();
    await journal.close();
    const reopened = await openJournal(file);
    expect(reopened.journal.list().map((j) => j.id)).toEqual(["B"]);
    await reopened.journal.close();
  });

  it("goes on appending when a compaction fails, and leaves no temporary file", async () => {
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const { journal, logs } = await openJournal(file);
    await journal.enqueue(job("retried", "a"));
    const prototype = await fileHandlePrototype(directory);
    const writev = prototype.writev;
    // A disk too full for a snapshot of the journal (written in pieces, one writev), with room
    // left for a record (appended).
    const snapshots = vi.spyOn(prototype, "writev").mockImplementation(async function (
      this: FileHandle,
      ...args: Parameters<FileHandle["writev"]>
    ) {
      await writev.call(this, [(args[0][0] as Uint8Array).subarray(0, 10)], args[1]);
      throw noSpace();
    });
    // Two lines each: the file outgrows what it holds, and is compacted.
    for (let i = 0; i < 600; i++) {
      await journal.claimNext();
      await journal.fail("retried", "GitHub 502", 0);
    }
    expect(await journal.enqueue(job("late", "b"))).toEqual({ status: "accepted" });
    // Tried once, not again on every write.
    expect(snapshots).toHaveBeenCalledTimes(1);
    expect(logs.text()).toContain("cannot compact the job journal");
    expect(readdirSync(directory).filter((name) => name.endsWith(".tmp"))).toEqual([]);

    // Room again: a later compaction succeeds.
    vi.restoreAllMocks();
    for (let i = 0; i < 600; i++) {
      await journal.claimNext();
      await journal.fail("retried", "GitHub 502", 0);
    }
    expect(readFileSync(file, "utf8").split("\n").length).toBeLessThan(1_000);
    await journal.close();
    const reopened = await openJournal(file);
    expect(reopened.journal.list()).toMatchObject([
      { id: "retried", attempts: 1_200 },
      { id: "late", attempts: 0 },
    ]);
    await reopened.journal.close();
  });

  it("starts on a disk too full for its rewrite, appending to the journal as read", async () => {
    // A running server in that state only logs that it cannot compact; a restart (a deploy, an
    // OOM kill) had failed, and the journaled jobs waited for someone to free space by hand.
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const clock = createFakeClock();
    const first = await openJournal(file, { clock });
    await first.journal.enqueue(job("kept", "a"));
    await first.journal.close();
    // A line of another version, then a record a crash cut short.
    appendFileSync(
      file,
      '{"op":"add","identifier":"from-another-version"}\n{"op":"add","id":"torn","pay',
    );
    // Room for a record (appended), none for a copy of the file or a snapshot of it.
    const prototype = await fileHandlePrototype(directory);
    const snapshots = vi.spyOn(prototype, "writev").mockRejectedValue(noSpace());
    // The copy cannot be written either: a directory by its name stands in for the full disk
    // (fs.copyFile's writes are libuv's, out of a spy's reach).
    const copy = join(
      directory,
      `journal.log.damaged-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`,
    );
    mkdirSync(copy);

    const second = await openJournal(file, { clock });
    expect(snapshots).not.toHaveBeenCalled();
    expect(second.journal.list().map((j) => j.id)).toEqual(["kept"]);
    expect(second.journal.malformedLines).toBe(1);
    expect(second.journal.damagedCopy).toBeUndefined();
    expect(second.logs.text()).toContain(
      "cannot rewrite the job journal at start; appending to it",
    );
    expect(await second.journal.enqueue(job("new", "b"))).toEqual({ status: "accepted" });
    expect((await second.journal.claimNext())?.id).toBe("kept");
    await second.journal.complete("kept");
    await second.journal.close();
    // The torn record was cut off, not joined to the next; the unread line is still there.
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain('"torn"');
    expect(text).toContain("from-another-version");

    // Room again: the next start copies the damaged file and rewrites it, with nothing lost.
    vi.restoreAllMocks();
    rmdirSync(copy);
    const third = await openJournal(file, { clock });
    expect(third.journal.list()).toMatchObject([{ id: "new", attempts: 0 }]);
    expect(await third.journal.has("kept")).toBe(true);
    expect(third.journal.damagedCopy).toBe(copy);
    expect(readFileSync(copy, "utf8")).toContain("from-another-version");
    expect(readFileSync(file, "utf8")).not.toContain("from-another-version");
    await third.journal.close();
  });

  it("copies the lines it could not read aside before a later compaction drops them", async () => {
    // Started on a full disk, it kept the unread line in the file; room again, the first
    // compaction had rewritten the file without it, and no copy was ever made (found by a review).
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const clock = createFakeClock();
    const first = await openJournal(file, { clock });
    await first.journal.enqueue(job("retried", "a"));
    await first.journal.close();
    appendFileSync(file, '{"op":"add","identifier":"from-another-version"}\n');
    const copy = join(
      directory,
      `journal.log.damaged-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`,
    );
    mkdirSync(copy);
    const { journal } = await openJournal(file, { clock });
    expect(journal.damagedCopy).toBeUndefined();

    rmdirSync(copy);
    // Two lines each: the file outgrows what it holds, and is compacted.
    for (let i = 0; i < 600; i++) {
      await journal.claimNext();
      await journal.fail("retried", "GitHub 502", 0);
    }
    expect(journal.damagedCopy).toBe(copy);
    expect(readFileSync(copy, "utf8")).toContain("from-another-version");
    expect(readFileSync(file, "utf8")).not.toContain("from-another-version");
    await journal.close();
  });

  it("starts when only its snapshot does not fit, appending after the last whole record", async () => {
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const first = await openJournal(file);
    await first.journal.enqueue(job("kept", "a"));
    await first.journal.close();
    appendFileSync(file, '{"op":"add","id":"torn","pay');
    const prototype = await fileHandlePrototype(directory);
    const snapshots = vi.spyOn(prototype, "writev").mockRejectedValue(noSpace());

    const second = await openJournal(file);
    expect(snapshots).toHaveBeenCalledTimes(1);
    expect(second.logs.text()).toContain(
      "cannot rewrite the job journal at start; appending to it",
    );
    expect(readdirSync(directory).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    expect(await second.journal.enqueue(job("new", "b"))).toEqual({ status: "accepted" });
    await second.journal.close();
    vi.restoreAllMocks();
    const third = await openJournal(file);
    expect(third.journal.list().map((j) => j.id)).toEqual(["kept", "new"]);
    expect(third.journal.malformedLines).toBe(0);
    await third.journal.close();
  });

  it("keeps a delivery accepted after a rewrite that failed forgot its earlier finish: a restart runs it", async () => {
    // The rewrite had forgotten the finished id, its `done` still in the file, and the replay
    // then ignored the add that followed it: an acknowledged delivery was lost (found by a review).
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const clock = createFakeClock();
    const first = await openJournal(file, { clock, maxFinished: 1 });
    for (const id of ["d1", "d2"]) {
      await first.journal.enqueue(job(id, id));
      await first.journal.claimNext();
      await first.journal.complete(id);
    }
    await first.journal.close();
    // A disk too full for the start's rewrite: the server starts, appending to the file as read.
    const prototype = await fileHandlePrototype(directory);
    vi.spyOn(prototype, "writev").mockRejectedValue(noSpace());

    const second = await openJournal(file, { clock, maxFinished: 1 });
    // d1 is past `maxFinished`: the journal no longer knows it, and accepts it anew.
    expect(await second.journal.has("d1")).toBe(false);
    expect(await second.journal.enqueue(job("d1", "d1"))).toEqual({ status: "accepted" });
    // d2 is still remembered: a duplicate, never appended, so not run after a restart either.
    expect(await second.journal.enqueue(job("d2", "d2"))).toEqual({ status: "duplicate" });
    await second.journal.close();
    vi.restoreAllMocks();

    const third = await openJournal(file, { clock, maxFinished: 1 });
    expect(third.journal.list().map((j) => j.id)).toEqual(["d1"]);
    expect(await third.journal.enqueue(job("d2", "d2"))).toEqual({ status: "duplicate" });
    await third.journal.close();
  });

  it("writes a record applied during a compaction once, so a restart counts each attempt once", async () => {
    const file = join(makeDataDir(), "journal.log");
    const { journal, logs } = await openJournal(file);
    await journal.enqueue(job("b", "b"));
    await journal.enqueue(job("c", "c"));
    let compactions = 0;
    let size = statSync(file).size;
    // Every compaction is checked: only one that starts with the first claim's write has the
    // second claim applied while it runs, and the next compaction would hide what it wrote.
    for (let i = 0; i < 2_000 && compactions < 4; i++) {
      await Promise.all([journal.claimNext(), journal.claimNext()]);
      await Promise.all([journal.fail("b", "GitHub 502", 0), journal.fail("c", "GitHub 502", 0)]);
      const grown = statSync(file).size;
      if (grown < size) {
        compactions++;
        // As a restart would read it (`talos jobs` reads it beside the server the same way).
        const reader = await JobJournal.open({
          file,
          readOnly: true,
          maxQueued: 100,
          retentionMs: 72 * HOUR,
          maxFinished: 1_000,
          clock: createFakeClock(),
          log: logs.log,
        });
        expect(reader.list().map((j) => j.attempts)).toEqual([i + 1, i + 1]);
      }
      size = grown;
    }
    expect(compactions).toBe(4);
    await journal.close();
  });

  it("counts no attempt for a claim whose start could not be written (a full disk)", async () => {
    const directory = makeDataDir();
    const file = join(directory, "journal.log");
    const { journal } = await openJournal(file);
    await journal.enqueue(job("waiting"));
    const prototype = await fileHandlePrototype(directory);
    vi.spyOn(prototype, "appendFile").mockRejectedValue(noSpace());
    // The runner tries again every few seconds while the disk stays full.
    for (let i = 0; i < 3; i++) await expect(journal.claimNext()).rejects.toThrow("ENOSPC");
    vi.restoreAllMocks();
    // The job never ran: this is its first attempt, not its fourth (which would park it).
    expect(await journal.claimNext()).toMatchObject({ id: "waiting", attempts: 1 });
    await journal.close();
    const reopened = await openJournal(file);
    expect(reopened.journal.list()).toMatchObject([{ id: "waiting", attempts: 1 }]);
    await reopened.journal.close();
  });

  it("counts a run GitHub refused for a rate limit apart from the attempts, across restarts; a crashed run still counts", async () => {
    const file = join(makeDataDir(), "journal.log");
    const first = await openJournal(file);
    await first.journal.enqueue(job("limited"));
    await first.journal.claimNext();
    await first.journal.fail("limited", "403 secondary rate limit", 0, true);
    expect(await first.journal.claimNext()).toMatchObject({ attempts: 1, rateLimitedRuns: 1 });
    await first.journal.fail("limited", "403 secondary rate limit", 0, true);
    await first.journal.claimNext();
    // No fail(): the process was killed during the third run, which counts as an attempt.
    await first.journal.close();

    // Replayed, then in the job's snapshot once the next open has rewritten the file.
    for (let i = 0; i < 2; i++) {
      const reopened = await openJournal(file);
      expect(reopened.journal.list()).toMatchObject([
        { id: "limited", attempts: 1, rateLimitedRuns: 2 },
      ]);
      await reopened.journal.close();
    }
    const last = await openJournal(file);
    expect(await last.journal.claimNext()).toMatchObject({ attempts: 2, rateLimitedRuns: 2 });
    await last.journal.fail("limited", "malformed", undefined);
    // Retried by hand, it starts afresh.
    expect(await last.journal.retryParked("limited")).toBe(true);
    const retried = await last.journal.claimNext();
    expect(retried).toMatchObject({ attempts: 1 });
    expect(retried?.rateLimitedRuns).toBeUndefined();
    await last.journal.close();
  });

  it("forgets a parked job after the retention without a restart, so parked jobs cannot fill the queue", async () => {
    const clock = createFakeClock();
    const file = join(makeDataDir(), "journal.log");
    const { journal } = await openJournal(file, { clock, maxQueued: 1 });
    await journal.enqueue(job("bad", "a"));
    await journal.claimNext();
    await journal.fail("bad", "malformed", undefined);
    expect(await journal.enqueue(job("early", "b"))).toEqual({
      status: "refused",
      reason: "queue-full",
    });
    clock.advance(73 * HOUR);
    // A restart would have forgotten it by now; a server that runs on must too.
    expect(await journal.enqueue(job("late", "b"))).toEqual({ status: "accepted" });
    expect(journal.list().map((j) => j.id)).toEqual(["late"]);
    await journal.close();
  });
});

/**
 * A full disk as delivery `id`'s add is written: part of it goes in, then the write fails.
 * Returns FileHandle's prototype, for further failures.
 */
async function failAddOf(directory: string, id: string): Promise<FileHandle> {
  const prototype = await fileHandlePrototype(directory);
  const appendFile = prototype.appendFile;
  vi.spyOn(prototype, "appendFile").mockImplementation(async function (
    this: FileHandle,
    ...args: Parameters<FileHandle["appendFile"]>
  ) {
    if (String(args[0]).includes(`"op":"add","id":"${id}"`)) {
      await appendFile.call(this, String(args[0]).slice(0, 10));
      throw noSpace();
    }
    return appendFile.apply(this, args);
  });
  return prototype;
}

describe("the job journal's bookkeeping", () => {
  afterEach(() => vi.restoreAllMocks());

  it("does not take claims whose start could not be written (a full disk) for runs a crash cut short", async () => {
    const directory = makeDataDir();
    const { journal } = await openJournal(join(directory, "journal.log"));
    await journal.enqueue(job("X", "x"));
    await journal.enqueue(job("Y", "y"));
    const prototype = await fileHandlePrototype(directory);
    vi.spyOn(prototype, "appendFile").mockRejectedValue(noSpace());
    // The runner claims again every few seconds while the disk is full.
    for (let i = 0; i < 2; i++) await expect(journal.claimNext()).rejects.toThrow("ENOSPC");
    vi.restoreAllMocks();
    expect(await journal.claimNext()).toMatchObject({ id: "X", attempts: 1 });
    // Its run is its first: two "cut short" would run every job one at a time.
    expect(journal.list().find((j) => j.id === "X")?.unsettledRuns).toBe(1);
    expect(journal.needsIsolation()).toBe(false);
    await journal.close();
  });

  // A clock stepped back before the restart (an NTP correction) had made the forgotten job
  // unexpired again, and the new one was dropped.
  it.each([
    ["the same clock", 0],
    ["a clock stepped back two hours", 2 * HOUR],
  ])(
    "keeps across a restart (%s) a delivery accepted again after its parked job expired",
    async (_, stepBack) => {
      const clock = createFakeClock();
      const file = join(makeDataDir(), "journal.log");
      const { journal } = await openJournal(file, { clock, maxQueued: 1 });
      await journal.enqueue(job("bad", "a"));
      expect((await journal.claimNext())?.id).toBe("bad");
      await journal.fail("bad", "malformed", undefined);
      clock.advance(73 * HOUR);
      // The queue is full: the parked job, past the retention, is forgotten, and "late" taken.
      expect(await journal.enqueue(job("late", "b"))).toEqual({ status: "accepted" });
      expect((await journal.claimNext())?.id).toBe("late");
      await journal.complete("late");
      // Its cause fixed, the parked delivery is sent again: a new delivery, accepted (a 2xx).
      expect(await journal.enqueue(job("bad", "a"))).toEqual({ status: "accepted" });
      await journal.close();

      // A restart before the next compaction: the accepted job is there, waiting.
      const restartClock = createFakeClock(clock.now() - stepBack);
      const { journal: reopened } = await openJournal(file, { clock: restartClock, maxQueued: 1 });
      const jobs = reopened.list();
      await reopened.close();
      expect(jobs.map(({ id, parked, attempts }) => ({ id, parked, attempts }))).toEqual([
        { id: "bad", parked: undefined, attempts: 0 },
      ]);
    },
  );

  it("forgets an expired parked job when its delivery comes again, without waiting for a full queue or a restart", async () => {
    const clock = createFakeClock();
    const { journal } = await openJournal(join(makeDataDir(), "journal.log"), { clock });
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

const gate = () => {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
};

describe("a copy of a delivery accepted while the first copy's failed add is cut back", () => {
  afterEach(() => vi.restoreAllMocks());

  it("does not run the second copy before its own add is durable", async () => {
    const directory = makeDataDir();
    const { journal } = await openJournal(join(directory, "journal.log"));
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

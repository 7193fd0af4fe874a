import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { systemClock } from "../../src/clock.js";
import { runTalos } from "../helpers/run-talos.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

/** A journal as a server leaves it: one job waiting, one parked, one delivery refused. */
async function seedJournal(dataDir: string) {
  const logs = await captureLogs("warn");
  const journal = await JobJournal.open({
    file: join(dataDir, "jobs", "journal.log"),
    maxQueued: 2,
    retentionMs: 3_600_000,
    maxFinished: 100,
    clock: systemClock,
    log: logs.log,
  });
  const job = (id: string, repository: string, thread: string) => ({
    id,
    kind: "comment",
    event: "issue_comment.created",
    thread,
    repository,
    installation: 1,
    payload: {},
  });
  await journal.enqueue(job("parked-1", "octo/alpha", "a"));
  await journal.enqueue(job("waiting-1", "octo/beta", "b"));
  await journal.claimNext();
  await journal.fail("parked-1", "malformed webhook payload: comment.id: Required", undefined);
  await journal.enqueue(job("refused-1", "octo/gamma", "c"));
  await journal.close();
}

describe("talos jobs", () => {
  it("lists waiting, parked and refused jobs by repository, and as JSON", async () => {
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const table = await runTalos(["jobs", "--data-dir", dataDir]);
    expect(table.code).toBe(0);
    expect(table.out.split("\n").slice(0, 4)).toEqual([
      "repository  waiting  parked  refused",
      "octo/alpha        0       1        0",
      "octo/beta         1       0        0",
      "octo/gamma        0       0        1",
    ]);
    expect(table.out).toContain(
      "parked: octo/alpha issue_comment.created (delivery parked-1, 1 attempt(s)): malformed webhook payload: comment.id: Required",
    );
    const json = await runTalos(["jobs", "--json"], { env: { TALOS_DATA_DIR: dataDir } });
    expect(JSON.parse(json.out)).toMatchObject({
      repositories: [
        { repository: "octo/alpha", waiting: 0, parked: [{ delivery: "parked-1" }], refused: 0 },
        { repository: "octo/beta", waiting: 1, refused: 0 },
        { repository: "octo/gamma", waiting: 0, refused: 1 },
      ],
    });
  });

  it("reads TALOS_DATA_DIR from .env in the current directory, as npm start does", async () => {
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const cwd = makeDataDir();
    writeFileSync(join(cwd, ".env"), `TALOS_DATA_DIR=${dataDir}\n`);
    const result = await runTalos(["jobs", "--json"], { cwd });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.out).repositories).toHaveLength(3);
  });

  it("exits 2 with the variable's name when the environment has a bad value", async () => {
    const cwd = makeDataDir();
    writeFileSync(join(cwd, ".env"), "TALOS_CONCURRENCY=many\n");
    const result = await runTalos(["jobs"], { cwd });
    expect(result.code).toBe(2);
    expect(result.err.trim().split("\n")).toHaveLength(1);
    expect(result.err).toMatch(/^talos jobs: Invalid environment: TALOS_CONCURRENCY: /);
  });

  it("prints one line, not the server's outage log, when REDIS_URL does not answer", async () => {
    const result = await runTalos(["jobs"], { env: { REDIS_URL: "redis://127.0.0.1:1" } });
    // An unreachable service is not bad input: exit code 1, as for npm start.
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/^talos jobs: REDIS_URL: Redis does not answer/);
    expect(result.err).not.toMatch(/503/);
    expect(result.err.trim().split("\n")).toHaveLength(1);
  });

  it("leaves the journal untouched, so it is safe beside a running server", async () => {
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const file = join(dataDir, "jobs", "journal.log");
    const before = readFileSync(file, "utf8");
    await runTalos(["jobs", "--data-dir", dataDir]);
    expect(readFileSync(file, "utf8")).toBe(before);
  });
});

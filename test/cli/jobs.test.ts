import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { lockDirectory } from "../../src/memory/directory-lock.js";
import { eventually } from "../helpers/eventually.js";
import { systemClock } from "../../src/clock.js";
import { runTalos } from "../helpers/run-talos.js";
import {
  githubScope,
  INSTALLATION_TOKEN,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { lockAsRunningServer } from "../helpers/test-memory.js";
import {
  captureLogs,
  createTestApp,
  loadFixture,
  makeDataDir,
  type TestApp,
} from "../helpers/test-app.js";

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

  it("says on stderr when the journal has lines it cannot read, and a retry keeps the file as it was", async () => {
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const file = join(dataDir, "jobs", "journal.log");
    writeFileSync(file, `${readFileSync(file, "utf8")}garbage from a disk fault\n`);
    const before = readFileSync(file, "utf8");

    const listed = await runTalos(["jobs", "--data-dir", dataDir]);
    expect(listed.code).toBe(0);
    expect(listed.out).toContain("octo/alpha");
    expect(listed.err).toContain(
      "the job journal has lines that cannot be read: they are skipped here (the server keeps a copy of the file as it was when it next starts)",
    );
    expect(readdirSync(join(dataDir, "jobs"))).toEqual(["journal.log"]);

    const retried = await runTalos(["jobs", "retry", "--all", "--data-dir", dataDir]);
    expect(retried.code).toBe(0);
    expect(retried.err).toContain("the file as it was is kept as the copy");
    const copies = readdirSync(join(dataDir, "jobs")).filter((f) => f.includes(".damaged-"));
    expect(copies).toHaveLength(1);
    expect(readFileSync(join(dataDir, "jobs", copies[0]!), "utf8")).toBe(before);
  });
});

describe("talos jobs where the data directory is not there", () => {
  it("exits 2 naming it, as talos jobs retry does, rather than saying no job is parked", async () => {
    const missing = join(makeDataDir(), "no-such-dir");
    for (const args of [["jobs"], ["jobs", "--json"], ["jobs", "retry", "--all"]]) {
      const run = await runTalos([...args, "--data-dir", missing]);
      expect(run.code).toBe(2);
      expect(run.out).toBe("");
      expect(run.err).toBe(
        `talos jobs: data directory ${missing} does not exist; pass --data-dir or set TALOS_DATA_DIR\n`,
      );
    }
    // TALOS_DATA_DIR defaults to ./data: a shell in another directory than the server's.
    const elsewhere = await runTalos(["jobs"], { cwd: makeDataDir() });
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.err).toMatch(/data directory .*data does not exist/);
  });
});

describe("talos jobs and malformed deliveries", () => {
  it("lists a parked delivery whose repository.full_name is not a string, in text and JSON", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ dataDir, logLevel: "warn" });
    const payload = loadFixture<{ repository: Record<string, unknown> }>(
      "issue_comment.created.help.json",
    );
    payload.repository.full_name = 12345;
    await app.probot.receive({ id: "name-is-a-number", name: "issue_comment", payload } as never);
    const [job] = app.talos.services.journal!.list();
    expect(job?.parked?.error).toMatch(/malformed webhook payload: repository\.full_name/);
    await app.talos.close();
    // A journal an earlier version wrote, which kept the number, is listed too.
    const file = join(dataDir, "jobs", "journal.log");
    const older = { ...job, id: "older", repository: 678, parked: job!.parked, op: "add" };
    writeFileSync(file, `${readFileSync(file, "utf8")}${JSON.stringify(older)}\n`);

    const text = await runTalos(["jobs", "--data-dir", dataDir]);
    expect(text).toMatchObject({ code: 0, err: "" });
    expect(text.out).toContain("(no repository)");
    expect(text.out).toContain("name-is-a-number");
    expect(text.out).toMatch(/^678 /m);
    const json = await runTalos(["jobs", "--data-dir", dataDir, "--json"]);
    expect(json.code).toBe(0);
    const { repositories } = JSON.parse(json.out) as {
      repositories: Array<{ repository: string }>;
    };
    expect(repositories.map((r) => r.repository)).toEqual(["(no repository)", "678"]);
  });
});

describe("talos jobs and a journal another version (or a hand) wrote", () => {
  it("lists and retries a parked job whose error is not text, in text and JSON", async () => {
    // `error.replace is not a function` had ended every `talos jobs` command with exit 1.
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const file = join(dataDir, "jobs", "journal.log");
    const park = { op: "park", id: "parked-1", error: { message: "boom" }, at: Date.now() };
    writeFileSync(file, `${readFileSync(file, "utf8")}${JSON.stringify(park)}\n`);

    const text = await runTalos(["jobs", "--data-dir", dataDir]);
    expect(text).toMatchObject({ code: 0, err: "" });
    expect(text.out).toContain("parked-1");
    const json = await runTalos(["jobs", "--json", "--data-dir", dataDir]);
    expect(json).toMatchObject({ code: 0, err: "" });
    expect(JSON.parse(json.out).repositories[0]).toMatchObject({
      repository: "octo/alpha",
      parked: [{ delivery: "parked-1", error: "[object Object]" }],
    });
    const retried = await runTalos(["jobs", "retry", "parked-1", "--data-dir", dataDir]);
    expect(retried).toMatchObject({ code: 0, err: "" });
    expect(retried.out).toContain("Retried octo/alpha");
  });

  it("refuses a retry of a delivery that is not parked without rewriting the journal", async () => {
    // The journal was opened to write before the id was checked: rewritten, its unreadable line
    // dropped and a copy made, for a command that said it changed nothing.
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const file = join(dataDir, "jobs", "journal.log");
    writeFileSync(file, `${readFileSync(file, "utf8")}a line a disk fault left\n`);
    const before = readFileSync(file, "utf8");

    for (const id of ["waiting-1", "no-such-delivery"]) {
      const refused = await runTalos(["jobs", "retry", id, "--data-dir", dataDir]);
      expect(refused.code).toBe(2);
      expect(refused.err.trimEnd().split("\n").at(-1)).toBe(
        `talos jobs: no parked job has delivery ${id}; \`talos jobs\` lists those parked`,
      );
    }
    expect(readdirSync(join(dataDir, "jobs"))).toEqual(["journal.log"]);
    expect(readFileSync(file, "utf8")).toBe(before);
  });
});

describe("talos jobs and a journal holding escape sequences", () => {
  // Nothing a terminal acts on: ESC, BEL, C1 controls, CR.
  // eslint-disable-next-line no-control-regex -- matching them is the point
  const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

  it("prints the repository and error without what a terminal acts on", async () => {
    // An error can quote what a delivery held; a journal another version wrote, any name.
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const file = join(dataDir, "jobs", "journal.log");
    const osc52 = "\u001b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\u0007";
    const lines = readFileSync(file, "utf8")
      .replaceAll("octo/alpha", "octo/alpha\\u001b[2J\\r")
      .replace(
        "comment.id: Required",
        `comment.id: ${JSON.stringify(osc52).slice(1, -1)}\\u009b31m`,
      );
    writeFileSync(file, lines);

    const text = await runTalos(["jobs", "--data-dir", dataDir]);
    expect(text).toMatchObject({ code: 0, err: "" });
    expect(text.out).not.toMatch(CONTROLS);
    expect(text.out).toMatch(/^octo\/alpha\[2J +0 +1 +0$/m);
    expect(text.out).toContain("comment.id: ]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==31m");
    const retried = await runTalos(["jobs", "retry", "parked-1", "--data-dir", dataDir]);
    expect(retried).toMatchObject({ code: 0, err: "" });
    expect(retried.out).not.toMatch(CONTROLS);
    expect(retried.out).toContain("Retried octo/alpha[2J  issue_comment.created");
  });
});

describe("a journaled job without an installation, run after a restart", () => {
  it("is parked without relabelling the app's own client, which everything shares", async () => {
    const dataDir = makeDataDir();
    const first = await createTestApp({ dataDir, logLevel: "warn" });
    await first.talos.close();
    // What a malformed payload leaves journaled: no installation, so Probot's app client.
    const payload = loadFixture<Record<string, unknown>>("issue_comment.created.help.json");
    delete payload.installation;
    const file = join(dataDir, "jobs", "journal.log");
    const add = {
      op: "add",
      id: "no-installation",
      kind: "comment",
      event: "issue_comment.created",
      thread: "-/-#1",
      payload,
      acceptedAt: Date.now(),
      attempts: 0,
    };
    writeFileSync(file, `${readFileSync(file, "utf8")}${JSON.stringify(add)}\n`);

    const app = await createTestApp({ dataDir, logLevel: "warn" });
    const journal = app.talos.services.journal!;
    await eventually(() => journal.list().some((job) => job.parked), "the job parked");
    const client = (await app.probot.auth()) as unknown as { log: { bindings?: () => object } };
    await app.talos.close();
    expect(client.log.bindings?.()).not.toMatchObject({ id: "no-installation" });
  });
});

describe("talos jobs retry", () => {
  const REPO = "/repos/Codertocat/Hello-World";

  /** A `/talos help` job's GitHub calls, up to its reply, which GitHub answers `status`. */
  function mockHelpJob(status: number, { cached = false } = {}) {
    const scope = githubScope();
    if (!cached) {
      mockAppIdentity(scope);
      mockInstallationToken(scope);
      mockRepoConfig(scope);
    }
    scope
      .post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" })
      .reply(201, { id: 1, content: "eyes" });
    scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/1/comments`, (body: { body: string }) => {
        posted.push(body.body);
        return true;
      })
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .reply(status, status === 201 ? { id: 9001 } : { message: "Validation Failed" });
    return { scope, posted };
  }

  /** `/talos help` as delivery `delivery-parked`, whose reply GitHub refuses: parked at once. */
  async function parkHelpJob(app: TestApp) {
    // A 4xx fails the same way every time.
    const refused = mockHelpJob(422);
    await app.probot.receive({
      id: "delivery-parked",
      name: "issue_comment",
      payload: loadFixture("issue_comment.created.help.json"),
    } as Parameters<typeof app.probot.receive>[0]);
    expect(refused.scope.pendingMocks()).toEqual([]);
    expect(app.talos.services.journal!.list()[0]?.parked).toBeDefined();
  }

  it("runs a parked job again at the server's next start, once what parked it is fixed", async () => {
    const dataDir = makeDataDir();
    const first = await createTestApp({ dataDir });
    await parkHelpJob(first);
    await first.talos.close();

    const listed = await runTalos(["jobs", "retry", "--all", "--json", "--data-dir", dataDir]);
    expect(listed.err).toBe("");
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.out)).toEqual({
      retried: [
        {
          repository: "Codertocat/Hello-World",
          delivery: "delivery-parked",
          event: "issue_comment.created",
          attempts: 1,
          error: expect.stringContaining("failed: Validation Failed"),
        },
      ],
    });
    // Once: it is not parked any more.
    const again = await runTalos(["jobs", "retry", "delivery-parked", "--data-dir", dataDir]);
    expect(again.code).toBe(2);
    expect(again.err).toBe(
      "talos jobs: no parked job has delivery delivery-parked; `talos jobs` lists those parked\n",
    );

    // The cause fixed, the next start runs it, as a first attempt, and replies once.
    const answered = mockHelpJob(201);
    const second = await createTestApp({ dataDir });
    await second.talos.services.jobs.idle();
    expect(answered.scope.pendingMocks()).toEqual([]);
    expect(answered.posted).toHaveLength(1);
    expect(answered.posted[0]).toContain("<!-- talos:reply:492700400 -->");
    expect(second.talos.services.journal!.list()).toEqual([]);
  });

  it("asks a running server, which runs the parked job at once and replies once", async () => {
    const dataDir = makeDataDir();
    // As main.ts does: the server holds the data directory for its life.
    const release = await lockDirectory(dataDir);
    onTestFinished(release);
    const server = await createTestApp({ dataDir });
    await parkHelpJob(server);

    // The cause fixed. The server still has its token, the app's slug and the config cached.
    const answered = mockHelpJob(201, { cached: true });
    const result = await runTalos(["jobs", "retry", "delivery-parked", "--data-dir", dataDir]);
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      "Retried Codertocat/Hello-World issue_comment.created (delivery delivery-parked): the running server runs it now.\n",
    );
    await eventually(() => answered.posted.length > 0, "the reply");
    await server.talos.services.jobs.idle();
    expect(answered.scope.pendingMocks()).toEqual([]);
    expect(answered.posted).toHaveLength(1);
    expect(answered.posted[0]).toContain("<!-- talos:reply:492700400 -->");
    expect(server.talos.services.journal!.list()).toEqual([]);
    // Again with --all: none is parked, so the server is not asked.
    const again = await runTalos(["jobs", "retry", "--all", "--json", "--data-dir", dataDir]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out)).toEqual({ retried: [] });
    expect(readdirSync(join(dataDir, "requests"))).toEqual(["server.json"]);
  });

  it("says a stopping server retried nothing, rather than that the job is not parked", async () => {
    const dataDir = makeDataDir();
    const release = await lockDirectory(dataDir);
    onTestFinished(release);
    const server = await createTestApp({ dataDir });
    await parkHelpJob(server);
    // SIGTERM's first step: the runner stops taking jobs; the requests are still answered.
    await server.talos.services.jobs.stop(0);

    const result = await runTalos(["jobs", "retry", "delivery-parked", "--data-dir", dataDir]);
    expect(result.code).toBe(1);
    expect(result.err).toBe(
      "talos jobs: the server is stopping, so nothing was retried: run `talos jobs retry` again once it has stopped or started again\n",
    );
    expect(server.talos.services.journal!.list()[0]?.parked).toBeDefined();
  });

  it("changes nothing while a server holds the data directory, without a delivery or a data directory", async () => {
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const file = join(dataDir, "jobs", "journal.log");
    const before = readFileSync(file, "utf8");
    const held = lockAsRunningServer(dataDir);
    const busy = await runTalos(["jobs", "retry", "parked-1", "--data-dir", dataDir]);
    expect(busy.code).toBe(2);
    expect(busy.err).toBe(`talos jobs: ${held}\n`);
    const none = await runTalos(["jobs", "retry", "--data-dir", dataDir]);
    expect(none.code).toBe(2);
    expect(none.err).toBe("talos jobs: retry takes the delivery ids of parked jobs, or --all\n");
    const missing = join(dataDir, "nope");
    const nowhere = await runTalos(["jobs", "retry", "parked-1", "--data-dir", missing]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.err).toBe(
      `talos jobs: data directory ${missing} does not exist; pass --data-dir or set TALOS_DATA_DIR\n`,
    );
    const all = await runTalos(["jobs", "--all", "--data-dir", dataDir]);
    expect(all.code).toBe(2);
    expect(all.err).toBe("talos jobs: --all goes with retry: talos jobs retry --all\n");
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  it("retries the parked job named, with the server stopped, and says when it runs", async () => {
    const dataDir = makeDataDir();
    await seedJournal(dataDir);
    const result = await runTalos(["jobs", "retry", "parked-1", "--data-dir", dataDir]);
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      "Retried octo/alpha issue_comment.created (delivery parked-1): the server runs it when it starts.\n",
    );
    const listed = JSON.parse((await runTalos(["jobs", "--json", "--data-dir", dataDir])).out);
    expect(listed.repositories).toMatchObject([
      { repository: "octo/alpha", waiting: 1, parked: [] },
      { repository: "octo/beta", waiting: 1 },
      { repository: "octo/gamma", refused: 1 },
    ]);
  });
});

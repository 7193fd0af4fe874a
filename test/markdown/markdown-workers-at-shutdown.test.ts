import { join } from "node:path";
import type nock from "nock";
import { pino } from "pino";
import { Probot } from "probot";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { getSecrets, parseEnv } from "../../src/config.js";
import type { Embedder } from "../../src/memory/embedder.js";
import { createTalos } from "../../src/index.js";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { eventually } from "../helpers/eventually.js";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import {
  captureLogs,
  loadFixture,
  makeDataDir,
  TEST_APP_ID,
  TEST_PRIVATE_KEY,
  TEST_WEBHOOK_SECRET,
} from "../helpers/test-app.js";
import { holdingEmbedder } from "../helpers/test-memory.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const COMMENTS = "/repos/Codertocat/Hello-World/issues/1/comments";
const REACTIONS = "/repos/Codertocat/Hello-World/issues/comments/492700400/reactions";

/**
 * SIGTERM (talos.close(), what main.ts calls): jobs still running after TALOS_SHUTDOWN_GRACE_MS
 * go on while the services close, and memory's close waits for a job still using its store (a
 * hung embedding call: minutes). The Markdown workers close last, after the job journal: a
 * command parsed or replied to in that window is answered as usual and journaled done, and one
 * that reaches the workers once they are closed fails and stays journaled for the next start.
 * (The workers had closed first: such a command was taken for no command, or its reply posted as
 * escaped plain text, and the job journaled done.)
 */
describe("Markdown workers at shutdown", () => {
  it("answer a /talos help that parses while memory's close holds the shutdown open", async () => {
    const held = holdingEmbedder("HOLD-EMBED");
    const { talos, probot, logs, dataDir } = await startTalos({ embedder: held.embedder });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope, { repo: "Other" });
    // GitHub is slow to give the config (well inside TALOS_GITHUB timeouts): the job runs past
    // the 300 ms grace, and parses its comment once the services are closing. (The owner's
    // `.github` answer is the one the first job read.)
    mockRepoFile(scope, 1_500);
    const { posted, reacted } = mockHelpReply(scope);

    await probot.receive({ id: "hold-memory", name: "issues", payload: heldIssue() } as never);
    await held.holding;
    await probot.receive({ id: "late-help", name: "issue_comment", payload: help() } as never);
    let closed = false;
    const closing = talos.close().then(() => (closed = true));
    await eventually(() => ended(logs.lines(), "late-help"), "the help job to end", 10_000);
    // It ended in the window: memory's close still waits on the held call.
    expect(closed).toBe(false);
    held.release();
    await closing;

    expect(reacted).toHaveLength(1);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("| `/talos help` |");
    expect(ignoredLines(logs.lines(), "late-help")).toEqual([]);
    expect(await journaledIds(dataDir)).not.toContain("late-help");
    expect(scope.pendingMocks()).toEqual([]);
  }, 30_000);

  it("post a /talos help reply rendered while memory's close holds the shutdown open as the open pool renders it", async () => {
    // What the reply is with nothing stopping.
    const normal = await startTalos({});
    const normalScope = githubScope();
    mockAppIdentity(normalScope);
    mockInstallationToken(normalScope);
    mockRepoConfig(normalScope);
    const expected = mockHelpReply(normalScope);
    await normal.probot.receive({ id: "help", name: "issue_comment", payload: help() } as never);
    await normal.talos.services.jobs.idle();
    await normal.talos.close();
    expect(expected.posted).toHaveLength(1);
    expect(normalScope.pendingMocks()).toEqual([]);

    const held = holdingEmbedder("HOLD-EMBED");
    const { talos, probot, logs, dataDir } = await startTalos({ embedder: held.embedder });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope, { repo: "Other" });
    mockRepoFile(scope);
    // The command is parsed (the 👀 reaction follows the parse); GitHub is slow to answer the
    // reaction, so the reply is rendered once the services are closing.
    const { posted, reacted } = mockHelpReply(scope, { reactionDelayMs: 1_500 });
    await probot.receive({ id: "hold-memory", name: "issues", payload: heldIssue() } as never);
    await held.holding;
    await probot.receive({ id: "late-render", name: "issue_comment", payload: help() } as never);
    await eventually(() => reacted.length > 0, "the reaction", 10_000);
    const closing = talos.close();
    await eventually(() => ended(logs.lines(), "late-render"), "the help job to end", 10_000);
    held.release();
    await closing;

    expect(posted).toEqual(expected.posted);
    expect(await journaledIds(dataDir)).not.toContain("late-render");
    expect(scope.pendingMocks()).toEqual([]);
  }, 30_000);

  it("leave a /talos help that parses once every service closed journaled, and answer it once at the next start", async () => {
    const first = await startTalos({});
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    // GitHub gives the config once the whole shutdown is over: the job parses on closed workers.
    let closed = false;
    let shutDown!: () => void;
    const over = new Promise<void>((resolve) => (shutDown = resolve));
    scope
      .get("/repos/Codertocat/Hello-World/contents/.github%2Ftalos.yml")
      .reply((_uri, _body, answer) => {
        void over.then(() => answer(null, [404, { message: "Not Found" }]));
      })
      .get("/repos/Codertocat/.github/contents/.github%2Ftalos.yml")
      .reply(404, { message: "Not Found" });
    await first.probot.receive({
      id: "late-help",
      name: "issue_comment",
      payload: help(),
    } as never);
    await first.talos.close().then(() => (closed = true));
    shutDown();
    await eventually(
      () =>
        first.logs
          .lines()
          .some((l) => l.delivery === "late-help" && String(l.msg).startsWith("cannot journal")),
      "the help job to end",
      10_000,
    );

    expect(closed).toBe(true);
    const failed = first.logs
      .lines()
      .filter((l) => l.delivery === "late-help" && String(l.msg).startsWith("job failed"));
    // Failed for the closed workers (the handler's error names its cause), and only once.
    expect(failed.map((l) => (l.err as { stack: string }).stack)).toEqual([
      expect.stringContaining("caused by: MarkdownWorkersClosedError: Talos is stopping"),
    ]);
    // Neither taken for no command nor answered.
    expect(ignoredLines(first.logs.lines(), "late-help")).toEqual([]);
    expect(await journaledIds(first.dataDir)).toContain("late-help");
    expect(scope.pendingMocks()).toEqual([]);

    // The next start resumes it.
    const nextScope = githubScope();
    mockAppIdentity(nextScope);
    mockInstallationToken(nextScope);
    mockRepoConfig(nextScope);
    const { posted } = mockHelpReply(nextScope);
    const next = await startTalos({ dataDir: first.dataDir });
    await eventually(() => ended(next.logs.lines(), "late-help"), "the resumed job", 10_000);
    await next.talos.close();

    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("| `/talos help` |");
    expect(await journaledIds(first.dataDir)).not.toContain("late-help");
    expect(nextScope.pendingMocks()).toEqual([]);
  }, 30_000);
});

/** Talos as `npm start` builds it: its own Markdown workers, closed with its services. */
async function startTalos({
  dataDir = makeDataDir(),
  embedder,
}: {
  dataDir?: string;
  embedder?: Embedder;
}) {
  const env = parseEnv({
    TALOS_DATA_DIR: dataDir,
    TALOS_BACKFILL_MAX: "0",
    TALOS_SHUTDOWN_GRACE_MS: "300",
  });
  const logs = await captureLogs("debug", [...getSecrets(env), TEST_PRIVATE_KEY]);
  const talos = await createTalos({
    env,
    log: logs.log,
    version: "0.0.0-test",
    octokit: { throttle: false, retry: false },
    ...(embedder ? { embedder } : {}),
  });
  const probot = new Probot({
    appId: TEST_APP_ID,
    privateKey: TEST_PRIVATE_KEY,
    secret: TEST_WEBHOOK_SECRET,
    log: logs.log,
    Octokit: talos.Octokit,
  });
  await probot.load(talos.app, { cwd: process.cwd(), addHandler: () => undefined });
  talos.services.markdown.warm();
  return { talos, probot, logs, dataDir };
}

function help() {
  return loadFixture("issue_comment.created.help.json");
}

/** A new issue in another repository, whose memory write waits on the held embedder. */
function heldIssue() {
  const opened = webhookExample("issues", "opened");
  Object.assign(opened.repository, { id: 999, name: "Other", full_name: "Codertocat/Other" });
  Object.assign(opened.issue, { number: 5, title: "HOLD-EMBED crash", body: "It crashes." });
  return opened;
}

/** Hello-World's `.github/talos.yml` missing, after `delayMs`. */
function mockRepoFile(scope: nock.Scope, delayMs = 0) {
  return scope
    .get("/repos/Codertocat/Hello-World/contents/.github%2Ftalos.yml")
    .delay(delayMs)
    .reply(404, { message: "Not Found" });
}

/** The 👀 reaction and the help reply, each recorded as GitHub receives it. */
function mockHelpReply(scope: nock.Scope, { reactionDelayMs = 0 } = {}) {
  const reacted: boolean[] = [];
  const posted: string[] = [];
  scope
    .post(REACTIONS, () => Boolean(reacted.push(true)))
    .delay(reactionDelayMs)
    .reply(201, {});
  scope.get(COMMENTS).query(true).reply(200, []);
  scope
    .post(COMMENTS, (body: { body: string }) => Boolean(posted.push(body.body)))
    .reply(201, {
      id: 900,
    });
  return { reacted, posted };
}

/** The job runner's line for how the delivery's run ended. */
function ended(lines: Array<Record<string, unknown>>, delivery: string): boolean {
  return lines.some((l) => l.delivery === delivery && /^job (finished|failed)/.test(String(l.msg)));
}

function ignoredLines(lines: Array<Record<string, unknown>>, id: string): string[] {
  return lines
    .filter((l) => l.id === id && String(l.msg).startsWith("ignored"))
    .map((l) => String(l.msg));
}

/** The jobs the journal still holds (waiting, running or parked), as the next start reads it. */
async function journaledIds(dataDir: string): Promise<string[]> {
  const journal = await JobJournal.open({
    file: join(dataDir, "jobs", "journal.log"),
    maxQueued: 10_000,
    retentionMs: 72 * 3_600_000,
    maxFinished: 10_000,
    clock: systemClock,
    log: pino({ level: "silent" }),
  });
  const ids = journal.list().map((job) => job.id);
  await journal.close();
  return ids;
}

import { execFileSync, spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { createChatModel } from "../../src/agent/create-chat-model.js";
import { systemClock } from "../../src/clock.js";
import { parseEnv } from "../../src/config.js";
import { JobJournal } from "../../src/jobs/job-journal.js";
import type { Job } from "../../src/jobs/job-queue.js";
import { retryDelayMs } from "../../src/jobs/job-runner.js";
import { createFakeClock, createManualClock } from "../helpers/fake-clock.js";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import {
  startOpenAIStandIn,
  type OpenAIStandIn,
  type ScriptedReply,
} from "../helpers/openai-stand-in.js";
import {
  buildDist,
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import {
  createTestApp,
  loadFixture,
  makeDataDir,
  TEST_WEBHOOK_SECRET,
  type TestApp,
  type TestAppOptions,
} from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const MARKER = "<!-- talos:reply:492700400 -->";
const HELP_REPLY =
  /^[\s\S]*Talos commands in this repository[\s\S]*\n\n<!-- talos:reply:492700400 -->$/;
const SECONDARY = {
  message:
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
  documentation_url:
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
};
type Scope = ReturnType<typeof githubScope>;

/**
 * Each fault a job can meet, through the real app (`createTestApp`: Probot, the handlers, the job
 * journal and runner) and its documented outcome. GitHub is nock; the model is the OpenAI
 * stand-in behind the real `ChatOpenAI`; the disk is a real filesystem that is full or read-only.
 */

function comment(id: string, body = "/talos help") {
  const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
  payload.comment.body = body;
  return { id, name: "issue_comment", payload } as never;
}

/** What a command reads before its work: identity, token, config, then the 👀 reaction. */
function mockCommandStart(scope: Scope) {
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope);
  scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
}

/**
 * The same start in a later run of the job. The app's identity and token are kept; the config is
 * read again unless the cache still holds it (TALOS_CACHE_TTL_MS, 5 minutes by the app's clock).
 */
function mockCommandAgain(scope: Scope, { configCached = false } = {}) {
  if (!configCached) mockRepoConfig(scope);
  scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
}

/** The reply's look for its marker, answered with no comment. */
function mockNoReplyYet(scope: Scope) {
  scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
}

/** The reply's creation; the bodies posted are collected in `posted`. */
function mockReplyPost(scope: Scope, posted: string[], status = 201) {
  scope
    .post(`${REPO}/issues/1/comments`, (body: { body: string }) => Boolean(posted.push(body.body)))
    .reply(status, status === 201 ? { id: 700 + posted.length } : { message: "injected" });
}

/** The command's read of its thread, refused: `status`, GitHub's `body`, with `headers`. */
function mockThreadReadRefused(
  scope: Scope,
  status: number,
  body: object,
  headers: Record<string, string>,
) {
  scope.get(`${REPO}/issues/1/comments`).query(true).reply(status, body, headers);
}

/** A later run of the command's job, up to its one reply; the bodies posted go to `posted`. */
function mockRunAgain(options: { configCached?: boolean } = {}) {
  const second = githubScope();
  mockCommandAgain(second, options);
  mockNoReplyYet(second);
  const posted: string[] = [];
  mockReplyPost(second, posted);
  return { second, posted };
}

async function jobOutcomes(app: TestApp): Promise<Record<string, number>> {
  const metric = await app.talos.metrics.jobs.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.outcome), v.value]));
}

const logsWith = (app: TestApp, msg: string) => app.logs.lines().filter((l) => l.msg === msg);

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The production GitHub client: Probot's throttling and retries on (write spacing off). */
const PRODUCTION_CLIENT: Pick<TestAppOptions, "octokit" | "env"> = {
  octokit: { throttle: true, retry: true },
  env: { TALOS_GITHUB_WRITE_INTERVAL_MS: "0", TALOS_GITHUB_NOTIFICATION_INTERVAL_MS: "0" },
};

describe("GitHub 5xx mid-job", () => {
  it.each([500, 502, 503])(
    "GitHub %i on a read, once the client's own retries are spent: the job fails, runs again 30 s later, and replies once",
    async (status) => {
      // Retries inside the request are off here (tests' default), as if they were all used up.
      const clock = createManualClock(Date.now());
      const app = await createTestApp({ clock });
      const first = githubScope();
      mockAppIdentity(first);
      mockInstallationToken(first);
      first.get(`${REPO}/contents/.github%2Ftalos.yml`).reply(status, { message: "Server Error" });

      await app.probot.receive(comment(`fault-${status}-read`));

      expect(first.pendingMocks()).toEqual([]);
      expect(logsWith(app, "job failed; will retry")).toMatchObject([
        { level: 50, attempt: 1, retryAt: new Date(clock.now() + 30_000).toISOString() },
      ]);
      const { second, posted } = mockRunAgain();

      await clock.advance(29_999);
      await app.talos.services.jobs.idle();
      expect(second.pendingMocks()).toHaveLength(5);
      await clock.advance(1);
      await app.talos.services.jobs.idle();

      expect(second.pendingMocks()).toEqual([]);
      expect(posted).toHaveLength(1);
      expect(posted[0]).toMatch(HELP_REPLY);
      expect(await jobOutcomes(app)).toEqual({ retry: 1, done: 1 });
      expect(app.talos.services.journal!.list()).toEqual([]);
    },
  );

  it.each([500, 502, 503])(
    "GitHub %i on posting the reply: the reply waits, finds no comment with its marker, posts once; the job is done on its first run",
    async (status) => {
      const clock = createFakeClock();
      const app = await createTestApp({ clock });
      const scope = githubScope();
      mockCommandStart(scope);
      mockNoReplyYet(scope);
      const posted: string[] = [];
      mockReplyPost(scope, posted, status);
      mockNoReplyYet(scope);
      mockReplyPost(scope, posted);

      await app.probot.receive(comment(`fault-${status}-post`));

      expect(scope.pendingMocks()).toEqual([]);
      expect(clock.sleeps).toEqual([1_000]);
      expect(posted).toHaveLength(2);
      expect(posted[1]).toBe(posted[0]);
      expect(posted[1]).toMatch(HELP_REPLY);
      expect(await jobOutcomes(app)).toEqual({ done: 1 });
    },
  );

  it("GitHub 503 on a read with the production client: retried inside the request, and the job is done on its first run", async () => {
    const app = await createTestApp({ clock: createFakeClock(), ...PRODUCTION_CLIENT });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    scope
      .get(`${REPO}/contents/.github%2Ftalos.yml`)
      .reply(503, { message: "Service Unavailable" });
    mockRepoConfig(scope);
    scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
    mockNoReplyYet(scope);
    const posted: string[] = [];
    mockReplyPost(scope, posted);

    await app.probot.receive(comment("fault-503-production"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(await jobOutcomes(app)).toEqual({ done: 1 });
  });
});

describe("GitHub rate limits mid-job", () => {
  it("a secondary rate limit on a read (403, retry-after 1): Probot's throttling waits and retries it; the job is done on its first run", async () => {
    const app = await createTestApp({ clock: createFakeClock(), ...PRODUCTION_CLIENT });
    const scope = githubScope();
    mockCommandStart(scope);
    mockThreadReadRefused(scope, 403, SECONDARY, { "retry-after": "1" });
    mockNoReplyYet(scope);
    const posted: string[] = [];
    mockReplyPost(scope, posted);

    await app.probot.receive(comment("fault-secondary-read"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatch(HELP_REPLY);
    const throttled = await app.talos.metrics.githubThrottled.get();
    expect(throttled.values).toMatchObject([{ labels: { kind: "secondary" }, value: 1 }]);
    expect(await jobOutcomes(app)).toEqual({ done: 1 });
  });

  it("a secondary rate limit on posting the reply: it waits retry-after, finds no reply with its marker, posts once", async () => {
    const clock = createFakeClock();
    const app = await createTestApp({ clock, ...PRODUCTION_CLIENT });
    const scope = githubScope();
    mockCommandStart(scope);
    mockNoReplyYet(scope);
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/1/comments`, (body: { body: string }) =>
        Boolean(posted.push(body.body)),
      )
      .reply(403, SECONDARY, { "retry-after": "7" });
    mockNoReplyYet(scope);
    mockReplyPost(scope, posted);

    await app.probot.receive(comment("fault-secondary-post"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(clock.sleeps).toEqual([7_000]);
    expect(posted).toHaveLength(2);
    expect(posted[1]).toMatch(HELP_REPLY);
    expect(await jobOutcomes(app)).toEqual({ done: 1 });
  });

  it("a secondary rate limit longer than TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS: the job fails and runs again no sooner than retry-after", async () => {
    const clock = createManualClock(Date.now());
    const app = await createTestApp({ clock, ...PRODUCTION_CLIENT });
    const first = githubScope();
    mockCommandStart(first);
    mockThreadReadRefused(first, 403, SECONDARY, { "retry-after": "120" });

    await app.probot.receive(comment("fault-secondary-long"));

    expect(first.pendingMocks()).toEqual([]);
    const [failed] = logsWith(app, "job failed; will retry");
    expect(failed?.retryAt).toBe(new Date(clock.now() + 120_000).toISOString());
    const { second, posted } = mockRunAgain({ configCached: true });

    await clock.advance(retryDelayMs(1));
    await app.talos.services.jobs.idle();
    expect(second.pendingMocks()).toHaveLength(3);
    await clock.advance(120_000 - retryDelayMs(1));
    await app.talos.services.jobs.idle();

    expect(second.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(await jobOutcomes(app)).toEqual({ retry: 1, done: 1 });
  });

  it("an older GitHub Enterprise's rate limit (403 'abuse detection', retry-after as a date): the job runs again once that date has come, and replies once", async () => {
    const clock = createManualClock(Date.parse("2026-12-06T12:00:00.000Z"));
    const app = await createTestApp({ clock, ...PRODUCTION_CLIENT });
    const first = githubScope();
    mockCommandStart(first);
    mockThreadReadRefused(
      first,
      403,
      { message: "You have triggered an abuse detection mechanism. Please wait a few minutes." },
      { "retry-after": "Sun, 06 Dec 2026 12:04:00 GMT" },
    );

    await app.probot.receive(comment("fault-abuse-detection"));

    expect(first.pendingMocks()).toEqual([]);
    const [failed] = logsWith(app, "job failed; will retry");
    expect(failed?.retryAt).toBe("2026-12-06T12:04:00.000Z");
    expect(logsWith(app, "job failed; parked (see `talos jobs`)")).toEqual([]);
    const { second, posted } = mockRunAgain({ configCached: true });

    const pending = second.pendingMocks().length;
    await clock.advance(3 * 60_000);
    await app.talos.services.jobs.idle();
    expect(second.pendingMocks()).toHaveLength(pending);
    await clock.advance(60_000);
    await app.talos.services.jobs.idle();

    expect(second.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatch(HELP_REPLY);
    expect(await jobOutcomes(app)).toEqual({ retry: 1, done: 1 });
  });

  it("the primary rate limit used up until its reset an hour away: the job runs again a second after the reset, not parked before it", async () => {
    const clock = createManualClock(Date.now());
    const app = await createTestApp({ clock, ...PRODUCTION_CLIENT });
    const reset = Math.floor(clock.now() / 1000) + 3_600;
    const first = githubScope();
    mockCommandStart(first);
    mockThreadReadRefused(
      first,
      403,
      { message: "API rate limit exceeded for installation ID 2." },
      {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-used": "5000",
        "x-ratelimit-reset": String(reset),
      },
    );

    await app.probot.receive(comment("fault-primary"));

    expect(first.pendingMocks()).toEqual([]);
    const { second, posted } = mockRunAgain();
    // Attempts at 30 s, 1, 2 and 4 min would park it (TALOS_JOB_MAX_ATTEMPTS is 5) with the
    // limit still used up; it waits for the reset instead.
    await clock.advance(30 * 60_000);
    await app.talos.services.jobs.idle();
    expect(second.pendingMocks()).toHaveLength(5);
    // A second after the reset, as GitHub's reset is counted in whole seconds.
    await clock.advance(reset * 1000 - clock.now());
    await app.talos.services.jobs.idle();
    expect(second.pendingMocks()).toHaveLength(5);
    await clock.advance(1_000);
    await app.talos.services.jobs.idle();
    expect(second.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(await jobOutcomes(app)).toEqual({ retry: 1, done: 1 });
  });
});

describe("GitHub 404 and 410 mid-job", () => {
  it.each([
    [404, "Not Found"],
    [410, "Gone"],
  ])(
    "GitHub %i (%s) on posting the reply, the issue deleted or moved: the job is dropped, logged, and never run again",
    async (status, message) => {
      const clock = createManualClock(Date.now());
      const app = await createTestApp({ clock });
      const scope = githubScope();
      mockCommandStart(scope);
      mockNoReplyYet(scope);
      const posted: string[] = [];
      scope
        .post(`${REPO}/issues/1/comments`, (body: { body: string }) =>
          Boolean(posted.push(body.body)),
        )
        .reply(status, { message });

      await app.probot.receive(comment(`fault-${status}`));
      await clock.advance(24 * 3_600_000);
      await app.talos.services.jobs.idle();

      expect(scope.pendingMocks()).toEqual([]);
      expect(posted).toHaveLength(1);
      expect(logsWith(app, "job dropped: what it was about is gone from GitHub")).toMatchObject([
        { level: 30, delivery: `fault-${status}` },
      ]);
      expect(logsWith(app, "job failed; will retry")).toEqual([]);
      expect(await jobOutcomes(app)).toEqual({ gone: 1 });
      expect(app.talos.services.journal!.list()).toEqual([]);
    },
  );
});

describe("the language model failing", () => {
  let llm: OpenAIStandIn;
  beforeAll(async () => {
    llm = await startOpenAIStandIn();
  });
  afterAll(async () => {
    llm?.release();
    await llm?.close();
  });

  const LLM_DOWN =
    "Sorry, the language model did not answer `ask` (it may be down or slow). Please try again later.";

  /** The app with the real ChatOpenAI against the stand-in: one retry, a 300 ms timeout. */
  async function createAppWithModel() {
    const env = {
      OPENAI_API_KEY: "sk-fault-outcomes-0123456789",
      OPENAI_BASE_URL: llm.baseUrl,
      TALOS_MODEL: "local-model",
      TALOS_LLM_TIMEOUT_MS: "300",
      TALOS_LLM_MAX_RETRIES: "1",
    };
    const model = createChatModel(parseEnv({ TALOS_DATA_DIR: makeDataDir(), ...env }));
    return createTestApp({ clock: createFakeClock(), model, env });
  }

  /** `/talos ask` up to the model call: the command's start and what the agent reads. */
  function mockAskUntilModel(scope: Scope) {
    mockCommandStart(scope);
    scope.get(REPO).reply(200, {
      full_name: "Codertocat/Hello-World",
      default_branch: "main",
      visibility: "public",
      archived: false,
      description: "My first repository",
    });
    scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
  }

  /**
   * `/talos ask` answered by the model's server with `failures`, one a request: what was posted,
   * and how many requests reached the model.
   */
  async function askWithModelFailing(failures: Array<Extract<ScriptedReply, { status: number }>>) {
    const app = await createAppWithModel();
    const scope = githubScope();
    mockAskUntilModel(scope);
    mockNoReplyYet(scope);
    const posted: string[] = [];
    mockReplyPost(scope, posted);
    const before = llm.chatArrivals();
    llm.script(...failures);

    await app.probot.receive(comment(`fault-model-${failures[0]?.status}`, "/talos ask why?"));

    expect(scope.pendingMocks()).toEqual([]);
    return { app, posted, calls: llm.chatArrivals() - before };
  }

  it.each([
    ["500", 2, { status: 500, body: { error: { message: "The server had an error" } } }],
    ["429 with retry-after: 1", 2, { status: 429, headers: { "retry-after": "1" } }],
    // LangChain retries a 429 only when it says how long to wait (up to a minute).
    ["429 without retry-after", 1, { status: 429 }],
  ] as const)(
    "model %s on every try (%i request(s)): one short reply that the model did not answer; the job is done, not retried",
    async (_name, requests, failure) => {
      const { app, posted, calls } = await askWithModelFailing(range(requests).map(() => failure));
      expect(calls).toBe(requests);
      expect(posted).toEqual([`${LLM_DOWN}\n\n${MARKER}`]);
      expect(await jobOutcomes(app)).toEqual({ done: 1 });
    },
  );

  it("model timeout (no answer within TALOS_LLM_TIMEOUT_MS, twice): one short reply; the job is done, not retried", async () => {
    const app = await createAppWithModel();
    const scope = githubScope();
    mockAskUntilModel(scope);
    mockNoReplyYet(scope);
    const posted: string[] = [];
    mockReplyPost(scope, posted);
    const before = llm.chatArrivals();
    llm.hold();
    onTestFinished(() => llm.release());

    await app.probot.receive(comment("fault-model-timeout", "/talos ask why?"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(llm.chatArrivals() - before).toBe(2);
    expect(posted).toEqual([`${LLM_DOWN}\n\n${MARKER}`]);
    expect(await jobOutcomes(app)).toEqual({ done: 1 });
  });

  // What OpenAI answers (the key's head in a 401's message, which the reply must not quote).
  const refusal = (status: number, code: string, message: string) =>
    ({ status, body: { error: { message, type: "invalid_request_error", code } } }) as const;
  it.each([
    [
      "401, key refused",
      refusal(401, "invalid_api_key", "Incorrect API key provided: sk-fault*****."),
      "Sorry, the language model's server refused Talos's credentials, so `ask` was not run. Whoever runs this app should check `OPENAI_API_KEY` (and that the key may use `TALOS_MODEL`).",
    ],
    [
      "403, model not allowed for the key",
      refusal(403, "model_not_found", "Project does not have access to model `local-model`"),
      "Sorry, the language model's server refused Talos's credentials, so `ask` was not run. Whoever runs this app should check `OPENAI_API_KEY` (and that the key may use `TALOS_MODEL`).",
    ],
    [
      "404, model not served",
      refusal(404, "model_not_found", "The model `local-model` does not exist."),
      "Sorry, the language model's server does not serve the model Talos asks for, so `ask` was not run. Whoever runs this app should check `TALOS_MODEL` and `OPENAI_BASE_URL`.",
    ],
    [
      "400, over the model's context",
      refusal(
        400,
        "context_length_exceeded",
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 12000 tokens.",
      ),
      "Sorry, this thread is longer than the language model's context, so `ask` was not run. Whoever runs this app should check `TALOS_AGENT_CONTEXT_TOKENS`, which must fit the model's context.",
    ],
    [
      "400, context overflow in a compatible server's words (vLLM)",
      refusal(
        400,
        "BadRequestError",
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
      ),
      "Sorry, this thread is longer than the language model's context, so `ask` was not run. Whoever runs this app should check `TALOS_AGENT_CONTEXT_TOKENS`, which must fit the model's context.",
    ],
    [
      "400, another refusal",
      refusal(400, "invalid_value", "Invalid value for 'temperature'."),
      "Sorry, the language model's server refused the request for `ask` (HTTP 400). The maintainers of this app can find the details in its log.",
    ],
  ])(
    "model %s: one request, a reply saying what to check (not 'try again later'); the job is done",
    async (_name, failure, reply) => {
      const { app, posted, calls } = await askWithModelFailing([failure]);
      // LangChain retries none of these.
      expect(calls).toBe(1);
      expect(posted).toEqual([`${reply}\n\n${MARKER}`]);
      expect(await jobOutcomes(app)).toEqual({ done: 1 });
    },
  );
});

// A system command blocks the test's thread, where no test timeout can end it: each is bounded.
const BOUNDED = { timeout: 30_000 };
const QUIET = { ...BOUNDED, stdio: "ignore" } as const;

/**
 * A real full or read-only filesystem needs a mount (root with CAP_SYS_ADMIN, as on this machine
 * and in a privileged container). Where mounting is refused, these tests are skipped, saying so.
 */
const canMount = (() => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), "talos-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], QUIET);
    execFileSync("umount", [dir], QUIET);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

/** An ext4 image on a loop device also needs e2fsprogs and loop devices. */
const canMountExt4 =
  canMount &&
  existsSync("/dev/loop-control") &&
  ["mkfs.ext4", "e2fsck"].every((tool) => spawnSync(tool, ["-V"], QUIET).status === 0);

/** A tmpfs of `size` mounted for this test; unmounted when it ends. */
function mountTmpfs(size: string): string {
  const dir = mkdtempSync(join(tmpdir(), "talos-tmpfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], BOUNDED);
  onTestFinished(() => {
    spawnSync("umount", ["-l", dir], BOUNDED);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Fills the filesystem of `dir` to the last byte; returns the filler file, to delete. */
function fillDisk(dir: string): string {
  const filler = join(dir, "filler");
  const fd = openSync(filler, "w");
  try {
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

/** The journal's records, as JSON: every line must be a whole one. */
function journalRecords(file: string): unknown[] {
  const text = readFileSync(file, "utf8");
  return text
    .split("\n")
    .slice(0, -1)
    .map((line) => JSON.parse(line) as unknown);
}

/** The jobs a start would resume from this journal file, read by the journal's own code. */
async function replayJournal(file: string): Promise<Job[]> {
  const journal = await JobJournal.open({
    file,
    maxQueued: 100,
    retentionMs: 3_600_000,
    maxFinished: 100,
    clock: systemClock,
    log: pino({ level: "silent" }),
  });
  try {
    return journal.list();
  } finally {
    await journal.close();
  }
}

describe.skipIf(!canMount)("a full disk", () => {
  it("refuses a delivery it cannot journal (receive rejects, so GitHub sees a failure); the redelivery, once there is room, is journaled whole and answered once", async () => {
    const dataDir = join(mountTmpfs("1m"), "data");
    const app = await createTestApp({ dataDir, clock: createManualClock(Date.now()) });
    const journal = join(dataDir, "jobs", "journal.log");
    const before = githubScope();
    mockCommandStart(before);
    mockNoReplyYet(before);
    mockReplyPost(before, []);
    await app.probot.receive(comment("fault-disk-before"));
    expect(before.pendingMocks()).toEqual([]);
    const filler = fillDisk(join(dataDir, ".."));

    await expect(app.probot.receive(comment("fault-disk-full"))).rejects.toThrow(
      /ENOSPC: no space left on device/,
    );
    expect(app.talos.services.journal!.list()).toEqual([]);

    unlinkSync(filler);
    // The app's identity and the repository's (missing) config are cached from the first one.
    const scope = githubScope();
    // What a start after a crash at this point (the redelivery acknowledged, its job running)
    // would find in the journal.
    const atCrash = join(mkdtempSync(join(tmpdir(), "talos-journal-")), "journal.log");
    scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(() => {
      copyFileSync(journal, atCrash);
      return [201, {}];
    });
    mockNoReplyYet(scope);
    const posted: string[] = [];
    mockReplyPost(scope, posted);
    await app.probot.receive(comment("fault-disk-full"));

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toHaveLength(1);
    expect(posted[0]).toMatch(HELP_REPLY);
    expect(await jobOutcomes(app)).toEqual({ done: 2 });
    // A write that ran out of room can leave part of its record at the end of the file.
    expect((await replayJournal(atCrash)).map((job) => job.id)).toEqual(["fault-disk-full"]);
    expect(journalRecords(journal)).toContainEqual(
      expect.objectContaining({ op: "done", id: "fault-disk-full" }),
    );
  });
});

describe.skipIf(!canMount)("a full disk under the started server", () => {
  let github: GitHubStandIn;
  let server: ServerProcess | undefined;
  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
  });
  afterAll(async () => {
    await server?.kill();
    await github?.close();
  });

  const help = (id: string, commentId: number) => {
    const payload = loadFixture<{ comment: { id: number } }>("issue_comment.created.help.json");
    payload.comment.id = commentId;
    return { id, event: "issue_comment", payload };
  };
  const replies = (commentId: number) =>
    (github.comments.get("Codertocat/Hello-World#1") ?? []).filter((c) =>
      c.body.endsWith(`<!-- talos:reply:${commentId} -->`),
    );
  const until = async (condition: () => boolean) => {
    while (!condition()) await new Promise((resolve) => setTimeout(resolve, 25));
  };

  it("answers 500 to a delivery it cannot journal, so GitHub shows it failed; the redelivery gets 200 and one reply", async () => {
    const disk = mountTmpfs("4m");
    const env = await standInServerEnv(github.host, { TALOS_DATA_DIR: join(disk, "data") });
    server = await startServerProcess(env, { cwd: makeWorkDir() });
    const signed = { secret: TEST_WEBHOOK_SECRET };
    expect((await sendWebhook(server.url, help("full-before", 801), signed)).status).toBe(200);
    await until(() => replies(801).length === 1);
    const filler = fillDisk(disk);

    const refused = await sendWebhook(server.url, help("full-refused", 802), signed);
    expect(refused.status).toBe(500);
    unlinkSync(filler);
    const redelivered = await sendWebhook(server.url, help("full-refused", 802), signed);
    expect(redelivered.status).toBe(200);
    await until(() => replies(802).length === 1);

    await server.kill();
    expect(server.child.exitCode).toBe(0);
    expect(replies(802)).toHaveLength(1);
    expect(server.output()).toContain("ENOSPC");
  });
});

/** An ext4 filesystem in a file, mounted through a loop device; unmounted when the test ends. */
function mountExt4(): { dir: string; abort(): void; checkAndRemount(): void } {
  const root = mkdtempSync(join(tmpdir(), "talos-ext4-"));
  const image = join(root, "image");
  const dir = join(root, "mnt");
  mkdirSync(dir);
  execFileSync("truncate", ["-s", "8M", image], BOUNDED);
  execFileSync("mkfs.ext4", ["-q", "-F", image], QUIET);
  execFileSync("mount", ["-o", "loop", image, dir], BOUNDED);
  onTestFinished(() => {
    spawnSync("umount", ["-l", dir], BOUNDED);
    rmSync(root, { recursive: true, force: true });
  });
  return {
    dir,
    // ext4's `abort` option does what the kernel does on an I/O error with errors=remount-ro:
    // from now on every write fails with EROFS, files already open included.
    abort: () => execFileSync("mount", ["-o", "remount,abort", dir], BOUNDED),
    // What an operator does then: check the filesystem (exit 1: errors were corrected), mount it.
    checkAndRemount: () => {
      execFileSync("umount", [dir], BOUNDED);
      const check = spawnSync("e2fsck", ["-fy", image], QUIET);
      expect(check.status).toBeLessThanOrEqual(1);
      execFileSync("mount", ["-o", "loop", image, dir], BOUNDED);
    },
  };
}

describe.skipIf(!canMount)("a read-only data directory", () => {
  it("at start: Talos does not start (the journal cannot be written), so nothing is acknowledged", async () => {
    // A filesystem with a file open for writing cannot be made read-only (EBUSY), so this one is
    // made read-only before the app starts, as a read-only volume would be.
    const dir = mountTmpfs("1m");
    mkdirSync(join(dir, "used", "jobs"), { recursive: true });
    mkdirSync(join(dir, "fresh"));
    execFileSync("mount", ["-o", "remount,ro", dir], BOUNDED);

    await expect(createTestApp({ dataDir: join(dir, "used") })).rejects.toThrow(
      `EROFS: read-only file system, open '${join(dir, "used", "jobs", "journal.log")}.`,
    );
    // A data directory never used before: Node's recursive mkdir reports ENOENT for EROFS.
    await expect(createTestApp({ dataDir: join(dir, "fresh") })).rejects.toThrow(
      `ENOENT: no such file or directory, mkdir '${join(dir, "fresh", "jobs")}'`,
    );
  });

  it.skipIf(!canMountExt4)(
    "when it turns read-only while running: deliveries are refused (receive rejects); after a check and a restart, the redelivery is answered once",
    async () => {
      const ext4 = mountExt4();
      const dataDir = join(ext4.dir, "data");
      const app = await createTestApp({ dataDir, clock: createManualClock(Date.now()) });
      ext4.abort();

      await expect(app.probot.receive(comment("fault-read-only"))).rejects.toThrow(
        /EROFS: read-only file system/,
      );
      expect(app.talos.services.journal!.list()).toEqual([]);
      await app.talos.close();

      ext4.checkAndRemount();
      const restarted = await createTestApp({ dataDir, clock: createManualClock(Date.now()) });
      const scope = githubScope();
      mockCommandStart(scope);
      mockNoReplyYet(scope);
      const posted: string[] = [];
      mockReplyPost(scope, posted);
      await restarted.probot.receive(comment("fault-read-only"));

      expect(scope.pendingMocks()).toEqual([]);
      expect(posted).toHaveLength(1);
      expect(posted[0]).toMatch(HELP_REPLY);
      expect(await jobOutcomes(restarted)).toEqual({ done: 1 });
    },
  );

  it.skipIf(!canMountExt4)(
    "when it turns read-only while a job runs and then fails: the process keeps running, and after a check and a restart the job resumes and replies once",
    async () => {
      const ext4 = mountExt4();
      const dataDir = join(ext4.dir, "data");
      const clock = createManualClock(Date.now());
      const app = await createTestApp({ dataDir, clock });
      const first = githubScope();
      mockAppIdentity(first);
      mockInstallationToken(first);
      mockRepoConfig(first);
      first.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(() => {
        ext4.abort();
        return [502, { message: "Bad Gateway" }];
      });

      await app.probot.receive(comment("fault-read-only-mid-job"));
      await clock.advance(60 * 60_000);
      await app.talos.services.jobs.idle();

      expect(first.pendingMocks()).toEqual([]);
      expect(logsWith(app, "job failed; will retry")).toHaveLength(1);
      await app.talos.close();
      ext4.checkAndRemount();
      const second = githubScope();
      mockCommandStart(second);
      mockNoReplyYet(second);
      const posted: string[] = [];
      mockReplyPost(second, posted);
      const restarted = await createTestApp({ dataDir, clock: createManualClock(Date.now()) });
      await restarted.talos.services.jobs.idle();

      expect(logsWith(restarted, "resuming journaled jobs")).toMatchObject([{ jobs: 1 }]);
      expect(second.pendingMocks()).toEqual([]);
      expect(posted).toHaveLength(1);
      expect(posted[0]).toMatch(HELP_REPLY);
      expect(await jobOutcomes(restarted)).toEqual({ done: 1 });
    },
  );
});

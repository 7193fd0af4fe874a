import Bottleneck from "bottleneck";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createOctokitClass } from "../../src/github/create-octokit.js";
import { RateLimitTracker } from "../../src/metrics/rate-limit-plugin.js";
import type { CommentInfo } from "../../src/github/create-repo-client.js";
import type { Octokit } from "../../src/github/octokit.js";
import { upsertReply } from "../../src/github/upsert-reply.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { githubScope } from "../helpers/github-mocks.js";
import { captureLogs } from "../helpers/test-app.js";

const COMMENTS = "/repos/acme/widgets/issues/7/comments";
const MARKER = "<!-- talos:reply:7 -->";
const BODY = `hello\n\n${MARKER}`;
const BOT = "talos-bot[bot]";
// Production's retries; spacing off, so that only the timers under test need advancing.
const LIMITS = {
  maxRetries: 3,
  maxRetryWaitSeconds: 60,
  writeIntervalMs: 0,
  notificationIntervalMs: 0,
};

afterEach(() => {
  vi.useRealTimers();
});

/**
 * The production client class, throttling and retries on. `probotRedis`: built as Probot builds
 * it with REDIS_URL, its Redis connection in the throttle options (the throttling plugin only
 * looks at whether there is one, so a stand-in does). Records the signal each attempt is sent with.
 */
async function createClient(options: { requestTimeoutMs: number; probotRedis?: boolean }) {
  const { log } = await captureLogs("warn");
  const metrics = createMetrics();
  const Octokit = createOctokitClass({
    cache: undefined,
    metrics,
    rateLimits: new RateLimitTracker(metrics),
    limits: LIMITS,
    requestTimeoutMs: options.requestTimeoutMs,
  });
  const sent: Array<{ method: string; signal: AbortSignal | undefined }> = [];
  const octokit = new Octokit({
    auth: { token: "ghs_inFlightWritesTest" },
    log,
    request: {
      fetch: (input: string, init: RequestInit) => {
        sent.push({ method: init.method ?? "GET", signal: init.signal ?? undefined });
        return globalThis.fetch(input, init);
      },
    },
    ...(options.probotRedis
      ? { throttle: { Bottleneck, connection: {} as Bottleneck.IORedisConnection } }
      : {}),
  } as never) as unknown as Octokit;
  return { octokit, sent };
}

/** A reply GitHub holds back until `answer()`: the request is in flight meanwhile. */
function heldReply(status: number, body: unknown) {
  let answer!: () => void;
  let arrive!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  return {
    reply: async (): Promise<[number, unknown]> => {
      arrive();
      await answered;
      return [status, body];
    },
    arrived,
    answer,
  };
}

/**
 * Runs the fake timers a millisecond at a time, with real I/O passing between steps, until
 * `promise` settles or `maxMs` of fake time pass; tells whether it settled. Time moves in big
 * steps only where a test says so, while every request in flight is one GitHub holds back: an
 * answered request is never overtaken by its own timeout.
 */
async function settle(promise: Promise<unknown>, maxMs = 5_000): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let elapsed = 0; !settled && elapsed < maxMs; elapsed++) {
    await new Promise((resolve) => setImmediate(resolve));
    await vi.advanceTimersByTimeAsync(1);
  }
  return settled;
}

function reply(octokit: Octokit, knownComments?: CommentInfo[]) {
  return upsertReply({
    knownComments,
    octokit,
    owner: "acme",
    repo: "widgets",
    issueNumber: 7,
    marker: MARKER,
    body: "hello",
    references: [],
    markdown: { toSafeMarkdown: async (text) => text },
    botLogin: BOT,
    limits: LIMITS,
    clock: createFakeClock(),
  });
}

describe("a write GitHub is slow to answer", () => {
  it("is never sent again while it is in flight, Probot having a Redis connection", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const { octokit, sent } = await createClient({
      requestTimeoutMs: 10 * 60_000,
      probotRedis: true,
    });
    const post = heldReply(201, { id: 1, body: BODY, user: { login: BOT } });
    // No second look-up and no second POST: unmocked, either would fail the reply.
    const scope = githubScope()
      .get(COMMENTS)
      .query({ per_page: "100" })
      .reply(200, [])
      .post(COMMENTS, { body: BODY })
      .reply(post.reply);

    const result = reply(octokit);
    expect(await settle(post.arrived)).toBe(true);
    // Minutes pass with the comment in flight, past the 60 s the throttling plugin gives a job
    // when it has a Redis connection: nothing may give up on it and try again.
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    post.answer();
    expect(await settle(result)).toBe(true);

    expect(await result).toEqual({ action: "created", commentId: 1 });
    expect(sent.map((s) => s.method)).toEqual(["GET", "POST"]);
    expect(scope.isDone()).toBe(true);
  });

  it("is aborted when unanswered, and the reply is looked for only then: found, it is edited", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const { octokit, sent } = await createClient({ requestTimeoutMs: 30_000 });
    // GitHub created the comment, but its answer never came.
    const post = heldReply(201, { id: 1 });
    let postAbortedAtLookUp: boolean | undefined;
    const scope = githubScope()
      .get(COMMENTS)
      .query({ per_page: "100" })
      .reply(200, [])
      .post(COMMENTS, { body: BODY })
      .reply(post.reply)
      .get(COMMENTS)
      .query({ per_page: "100" })
      .reply(() => {
        postAbortedAtLookUp = sent[1]?.signal?.aborted;
        return [200, [{ id: 1, body: BODY, user: { login: BOT } }]];
      })
      .patch("/repos/acme/widgets/issues/comments/1", { body: BODY })
      .reply(200, { id: 1 });

    const result = reply(octokit);
    try {
      expect(await settle(post.arrived)).toBe(true);
      await vi.advanceTimersByTimeAsync(30_000);
      expect(await settle(result)).toBe(true);
      expect(await result).toEqual({ action: "updated", commentId: 1 });
    } finally {
      post.answer();
    }
    expect(postAbortedAtLookUp).toBe(true);
    expect(sent.map((s) => s.method)).toEqual(["GET", "POST", "GET", "PATCH"]);
    expect(scope.isDone()).toBe(true);
  });
});

describe("a read GitHub does not answer", () => {
  it("is aborted, then retried", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const { octokit, sent } = await createClient({ requestTimeoutMs: 30_000 });
    const first = heldReply(200, { full_name: "acme/widgets", attempt: 1 });
    const scope = githubScope()
      .get("/repos/acme/widgets")
      .reply(first.reply)
      .get("/repos/acme/widgets")
      .reply(200, { full_name: "acme/widgets", attempt: 2 });

    const read = octokit.rest.repos.get({ owner: "acme", repo: "widgets" });
    try {
      expect(await settle(first.arrived)).toBe(true);
      await vi.advanceTimersByTimeAsync(30_000);
      expect(await settle(read)).toBe(true);
      expect((await read).data).toEqual({ full_name: "acme/widgets", attempt: 2 });
    } finally {
      first.answer();
    }
    expect(sent.map((s) => s.signal?.aborted)).toEqual([true, false]);
    expect(scope.isDone()).toBe(true);
  });
});

describe("a reply deleted between its look-up and the edit", () => {
  // Its list was read before the model ran (a summary's, for tens of seconds): a maintainer
  // deleting the old reply meanwhile made the edit a 404, which ended the job as if its issue
  // were gone, with nothing posted.
  it("is looked for again and posted anew", async () => {
    const { octokit } = await createClient({ requestTimeoutMs: 10_000 });
    const posted: unknown[] = [];
    const scope = githubScope()
      .patch("/repos/acme/widgets/issues/comments/5")
      .reply(404, { message: "Not Found" })
      .get(COMMENTS)
      .query(true)
      .reply(200, [])
      .post(COMMENTS, (body) => Boolean(posted.push(body)))
      .reply(201, { id: 9 });

    const result = await reply(octokit, [
      { id: 5, author: BOT, body: BODY, createdAt: "2024-01-01T00:00:00Z" },
    ]);

    expect(result).toEqual({ action: "created", commentId: 9 });
    expect(posted).toEqual([{ body: BODY }]);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

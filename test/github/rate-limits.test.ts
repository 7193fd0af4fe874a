import { describe, expect, it } from "vitest";
import { createRepoClient } from "../../src/github/create-repo-client.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
  recordUnmatchedRequests,
} from "../helpers/github-mocks.js";
import { createTestApp, loadFixture, type TestApp } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const MARKER = "<!-- talos:reply:492700400 -->";
const SECONDARY = {
  message:
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
  documentation_url:
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
};
const repoBody = {
  full_name: "Codertocat/Hello-World",
  default_branch: "main",
  private: false,
  archived: false,
};

/** The app as it runs in production: throttling and retries on (write spacing off, for speed). */
function createThrottledApp(clock = createFakeClock()) {
  return createTestApp({
    clock,
    octokit: { throttle: true, retry: true },
    env: { TALOS_GITHUB_WRITE_INTERVAL_MS: "0", TALOS_GITHUB_NOTIFICATION_INTERVAL_MS: "0" },
  });
}

async function throttledCount(app: TestApp, kind: string) {
  const metric = await app.talos.metrics.githubThrottled.get();
  return metric.values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

function receiveHelp(app: TestApp) {
  return app.probot.receive({
    id: `rate-${Math.random()}`,
    name: "issue_comment",
    payload: loadFixture("issue_comment.created.help.json"),
  } as never);
}

function mockCommandStart(scope: ReturnType<typeof githubScope>) {
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope);
  scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
}

describe("rate limits and retries", () => {
  it("waits out a secondary rate limit on a read, then retries and succeeds", async () => {
    const app = await createThrottledApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get(REPO).reply(403, SECONDARY, { "retry-after": "1" });
    scope.get(REPO).reply(200, repoBody);

    const repository = await createRepoClient(await app.probot.auth(2), {
      owner: "Codertocat",
      repo: "Hello-World",
    }).getRepository();

    expect(repository.defaultBranch).toBe("main");
    expect(scope.pendingMocks()).toEqual([]);
    expect(await throttledCount(app, "secondary")).toBe(1);
    const warning = app.logs.lines().find((l) => l.msg === "GitHub secondary rate limit hit");
    expect(warning).toMatchObject({
      level: 40,
      kind: "secondary",
      retryAfter: 1,
      method: "GET",
      route: "/repos/{owner}/{repo}",
      installation: "2",
      retry: true,
    });
  });

  it.each([
    ["an HTTP date ten minutes away", (now: number) => new Date(now + 600_000).toUTCString()],
    ["a header sent twice", () => "600, 600"],
  ])(
    "gives up at once on a secondary limit whose retry-after is past the bound, written as %s",
    async (_, retryAfter) => {
      // The throttling plugin read it with Number(): NaN, so its fallback minute, within the
      // bound: the read was sent again after 60 s, minutes before GitHub allowed.
      const clock = createFakeClock();
      const app = await createThrottledApp(clock);
      const scope = githubScope();
      mockInstallationToken(scope);
      scope.get(REPO).reply(403, SECONDARY, { "retry-after": retryAfter(clock.now()) });

      const read = createRepoClient(await app.probot.auth(2), {
        owner: "Codertocat",
        repo: "Hello-World",
      }).getRepository();

      await expect(read).rejects.toMatchObject({ status: 403 });
      expect(scope.pendingMocks()).toEqual([]);
      const warning = app.logs.lines().find((l) => l.msg === "GitHub secondary rate limit hit");
      expect(warning).toMatchObject({ retry: false });
      expect(warning?.retryAfter).toBe(600);
    },
  );

  /** A reply GitHub first refuses as `refusal` says: what the app waited, and posted. */
  async function replyRefusedOnce(
    refusal: (now: number) => { status: number; body: object; headers?: Record<string, string> },
  ) {
    const clock = createFakeClock();
    const app = await createThrottledApp(clock);
    const scope = githubScope();
    mockCommandStart(scope);
    scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
    const { status, body, headers } = refusal(clock.now());
    scope.post(`${REPO}/issues/1/comments`).reply(status, body, headers);
    // Before posting again, it looks for the reply by its marker.
    scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
    let posted = 0;
    scope
      .post(
        `${REPO}/issues/1/comments`,
        (body: { body: string }) => body.body.endsWith(MARKER) && ++posted > 0,
      )
      .reply(201, { id: 42 });

    await receiveHelp(app);

    expect(scope.pendingMocks()).toEqual([]);
    return { app, posted, sleeps: clock.sleeps };
  }

  it("retries a reply after a secondary rate limit, and exactly one reply lands", async () => {
    const { app, posted, sleeps } = await replyRefusedOnce(() => ({
      status: 403,
      body: SECONDARY,
      headers: { "retry-after": "1" },
    }));
    expect(posted).toBe(1);
    expect(sleeps).toEqual([1000]);
    expect(await throttledCount(app, "secondary")).toBe(1);
  });

  it("waits until a reply's retry-after date, and exactly one reply lands", async () => {
    // RFC 9110 allows an HTTP date; read as a number it was NaN, and the reply was sent at once.
    const { posted, sleeps } = await replyRefusedOnce((now) => ({
      status: 403,
      body: { message: "You have been rate limited." },
      headers: { "retry-after": new Date(now + 30_000).toUTCString() },
    }));
    expect(posted).toBe(1);
    expect(sleeps).toEqual([30_000]);
  });

  it("does not post twice when a failed POST had created the comment after all", async () => {
    const clock = createFakeClock();
    const app = await createThrottledApp(clock);
    const scope = githubScope();
    mockCommandStart(scope);
    scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
    scope.post(`${REPO}/issues/1/comments`).reply(502, { message: "Bad Gateway" });
    scope
      .get(`${REPO}/issues/1/comments`)
      .query(true)
      .reply(200, [
        { id: 77, body: `help\n\n${MARKER}`, user: { login: `${APP_SLUG}[bot]`, type: "Bot" } },
      ]);
    scope
      .patch(`${REPO}/issues/comments/77`, (body: { body: string }) => body.body.endsWith(MARKER))
      .reply(200, { id: 77 });

    await receiveHelp(app);

    expect(scope.pendingMocks()).toEqual([]);
    expect(clock.sleeps).toEqual([1000]);
  });

  it("does not retry a 4xx that is not a rate limit", async () => {
    const app = await createThrottledApp();
    const scope = githubScope();
    mockCommandStart(scope);
    scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, []);
    scope.post(`${REPO}/issues/1/comments`).reply(422, { message: "Validation Failed" });

    await receiveHelp(app);
    expect(scope.pendingMocks()).toEqual([]);
    // A 422 fails the same way every time: the job is parked, not retried.
    const [parked] = app.talos.services.journal!.list();
    expect(parked?.parked?.error).toMatch(/Validation Failed/);
  });

  it("waits a minute after a reply GitHub refused as 'submitted too quickly' (a 422), and exactly one reply lands", async () => {
    // GitHub's content-creation limit: a 422 naming no rate limit, with no retry-after.
    const { app, posted, sleeps } = await replyRefusedOnce(() => ({
      status: 422,
      body: {
        message: "Validation Failed",
        errors: [
          {
            resource: "IssueComment",
            code: "custom",
            field: "data",
            message: "was submitted too quickly",
          },
        ],
        documentation_url: "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
      },
    }));
    expect(posted).toBe(1);
    expect(sleeps).toContain(60_000);
    // Answered, not parked as a request GitHub will always refuse.
    expect(app.talos.services.journal!.list()).toEqual([]);
    expect(await throttledCount(app, "secondary")).toBe(1);
  });

  it("retries a read after a 5xx", async () => {
    const app = await createThrottledApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get(REPO).reply(502, { message: "Bad Gateway" });
    scope.get(REPO).reply(200, repoBody);

    const octokit = await app.probot.auth(2);
    const { data } = await octokit.rest.repos.get({ owner: "Codertocat", repo: "Hello-World" });

    expect(data.default_branch).toBe("main");
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("gives up on a primary rate limit whose reset is further away than the bound", async () => {
    const app = await createThrottledApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    const reset = String(Math.floor(Date.now() / 1000) + 3600);
    scope.get(REPO).reply(
      403,
      { message: "API rate limit exceeded" },
      {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": reset,
      },
    );

    const octokit = await app.probot.auth(2);
    await expect(
      octokit.rest.repos.get({ owner: "Codertocat", repo: "Hello-World" }),
    ).rejects.toThrow(/rate limit/);

    expect(scope.pendingMocks()).toEqual([]);
    expect(await throttledCount(app, "primary")).toBe(1);
    expect(app.logs.lines().find((l) => l.msg === "GitHub primary rate limit hit")).toMatchObject({
      retry: false,
    });
  });

  // The throttling plugin reads a limit only from "secondary rate" in the message or a spent
  // primary limit; these it passed on unseen, neither counted nor logged.
  it.each([
    [
      "older GitHub Enterprise's 403 'abuse detection'",
      403,
      "You have triggered an abuse detection mechanism. Please wait a few minutes.",
      {},
      "secondary",
      60,
    ],
    ["a 403 with only a retry-after", 403, "Forbidden", { "retry-after": "30" }, "secondary", 30],
    [
      "a 429 with only a retry-after",
      429,
      "Too Many Requests",
      { "retry-after": "5" },
      "secondary",
      5,
    ],
    [
      "a 403 naming a primary limit, without headers",
      403,
      "API rate limit exceeded",
      {},
      "primary",
      60,
    ],
  ])(
    "counts and logs a rate limit the throttling does not see: %s",
    async (_, status, message, headers, kind, retryAfter) => {
      const app = await createThrottledApp();
      const scope = githubScope();
      mockInstallationToken(scope);
      scope.get(REPO).reply(status, { message }, headers);

      const octokit = await app.probot.auth(2);
      await expect(
        octokit.rest.repos.get({ owner: "Codertocat", repo: "Hello-World" }),
      ).rejects.toMatchObject({ status });

      expect(scope.pendingMocks()).toEqual([]);
      expect(await throttledCount(app, kind)).toBe(1);
      const warnings = app.logs.lines().filter((l) => /rate limit hit$/.test(String(l.msg)));
      expect(warnings).toEqual([
        expect.objectContaining({
          level: 40,
          msg: `GitHub ${kind} rate limit hit`,
          kind,
          retryAfter,
          method: "GET",
          route: "/repos/{owner}/{repo}",
          installation: "2",
          retry: false,
        }),
      ]);
    },
  );

  it("does not count a 403 for a permission as a rate limit", async () => {
    const app = await createThrottledApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get(REPO).reply(403, { message: "Resource not accessible by integration" });

    const octokit = await app.probot.auth(2);
    await expect(
      octokit.rest.repos.get({ owner: "Codertocat", repo: "Hello-World" }),
    ).rejects.toMatchObject({ status: 403 });

    expect(await throttledCount(app, "secondary")).toBe(0);
    expect(await throttledCount(app, "primary")).toBe(0);
  });

  it("warns once when the remaining requests drop under 10% of the limit", async () => {
    const app = await createThrottledApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    for (const remaining of ["600", "400", "300"]) {
      scope.get("/repos/Codertocat/Hello-World/issues/1/comments").reply(200, [], {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": remaining,
        "x-ratelimit-used": String(5000 - Number(remaining)),
        "x-ratelimit-reset": "1900000000",
        "x-ratelimit-resource": "core",
      });
    }
    const octokit = await app.probot.auth(2);
    for (let i = 0; i < 3; i++)
      await octokit.rest.issues.listComments({
        owner: "Codertocat",
        repo: "Hello-World",
        issue_number: 1,
      });

    const warnings = app.logs
      .lines()
      .filter((l) => l.msg === "GitHub rate limit below 10% of the limit");
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 40,
        installation: "2",
        resource: "core",
        limit: 5000,
        remaining: 400,
        used: 4600,
      }),
    ]);
    const gauge = await app.talos.metrics.githubRateLimitRemaining.get();
    expect(gauge.values).toEqual([{ labels: { installation: "2", resource: "core" }, value: 300 }]);
  });
});

describe("a 429 the throttling has had its say on", () => {
  /** One retry at most: the retry plugin's own first backoff is 1 s, its second 4 s. */
  const app = () =>
    createTestApp({
      octokit: { throttle: true, retry: true },
      env: {
        TALOS_GITHUB_MAX_RETRIES: "1",
        TALOS_GITHUB_WRITE_INTERVAL_MS: "0",
        TALOS_GITHUB_NOTIFICATION_INTERVAL_MS: "0",
      },
    });
  const getRepository = async (talos: TestApp) =>
    (await talos.probot.auth(2)).rest.repos
      .get({ owner: "Codertocat", repo: "Hello-World" })
      .catch((e: unknown) => e as { status?: number });

  it.each([
    ["a secondary limit whose retry-after is past the bound", SECONDARY, { "retry-after": "3600" }],
    [
      "a primary limit spent, its reset an hour away",
      { message: "API rate limit exceeded" },
      {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
      },
    ],
  ])("is not sent again when given up on: %s", async (_, body, headers) => {
    const talos = await app();
    const unmatched = recordUnmatchedRequests();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get(REPO).reply(429, body, headers);
    // The retry plugin sent it again 1 s later, and 4 s after that.
    expect(((await getRepository(talos)) as { status?: number }).status).toBe(429);
    expect(unmatched).toEqual([]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("is sent at most 1 + TALOS_GITHUB_MAX_RETRIES times when it keeps coming", async () => {
    const talos = await app();
    const unmatched = recordUnmatchedRequests();
    const scope = githubScope();
    mockInstallationToken(scope);
    // Within the bound: the throttling retries it once; the retry plugin retried that again.
    scope.get(REPO).times(2).reply(429, SECONDARY, { "retry-after": "1" });
    expect(((await getRepository(talos)) as { status?: number }).status).toBe(429);
    expect(unmatched).toEqual([]);
    expect(scope.pendingMocks()).toEqual([]);
    expect(await throttledCount(talos, "secondary")).toBe(2);
  });
});

describe("/metrics", () => {
  it("exposes the GitHub, rate-limit, cache and process series after a replayed event", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    const limits = (remaining: number) => ({
      "x-ratelimit-limit": "5000",
      "x-ratelimit-remaining": String(remaining),
      "x-ratelimit-used": String(5000 - remaining),
      "x-ratelimit-reset": "1900000000",
      "x-ratelimit-resource": "core",
    });
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    scope.get(`${REPO}/contents/.github%2Ftalos.yml`).reply(404, {}, limits(4990));
    scope
      .get("/repos/Codertocat/.github/contents/.github%2Ftalos.yml")
      .reply(404, {}, limits(4989));
    scope.post(`${REPO}/issues/comments/492700400/reactions`).reply(201, {}, limits(4988));
    scope.get(`${REPO}/issues/1/comments`).query(true).reply(200, [], limits(4987));
    scope.post(`${REPO}/issues/1/comments`).reply(201, { id: 1 }, limits(4986));

    await receiveHelp(app);
    const text = await app.talos.metrics.registry.metrics();

    expect(scope.pendingMocks()).toEqual([]);
    expect(text).toContain(
      'talos_github_requests_total{method="POST",route="/repos/{owner}/{repo}/issues/{issue_number}/comments",status="201"} 1',
    );
    expect(text).toContain(
      'talos_github_requests_total{method="GET",route="/repos/{owner}/{repo}/contents/{path}",status="404"} 2',
    );
    expect(text).toMatch(
      /talos_github_request_duration_seconds_count\{method="GET",route="\/repos\/\{owner\}\/\{repo\}\/issues\/\{issue_number\}\/comments"\} 1/,
    );
    expect(text).toContain(
      'talos_github_rate_limit_remaining{installation="2",resource="core"} 4986',
    );
    expect(text).toContain('talos_github_rate_limit_limit{installation="2",resource="core"} 5000');
    expect(text).toContain("# TYPE talos_github_throttled_total counter");
    expect(text).toContain('talos_cache_requests_total{kind="config",result="miss"} 2');
    expect(text).toContain("process_cpu_user_seconds_total");
  });
});

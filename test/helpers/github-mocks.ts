import nock from "nock";
import { onTestFinished } from "vitest";

export const API = "https://api.github.com";
export const INSTALLATION_TOKEN = "ghs_installationTokenForTests0123456789";
export const APP_SLUG = "talos-bot";

/**
 * One scope per test for api.github.com. Requests nobody mocked fail the test, because
 * `nock.disableNetConnect()` is in force (test/setup.ts).
 */
export function githubScope() {
  return nock(API);
}

/** The app identity read (`GET /app`, authenticated with the app's JWT). */
export function mockAppIdentity(scope: nock.Scope, slug = APP_SLUG) {
  return scope
    .get("/app")
    .matchHeader("authorization", /^bearer eyJ/i)
    .reply(200, { id: 1, slug, name: "Talos" });
}

/** The installation token exchange Probot performs before the first installation request. */
export function mockInstallationToken(scope: nock.Scope, installationId = 2) {
  return (
    scope
      // Probot asks for the installation's full permissions: the request has no body.
      .post(`/app/installations/${installationId}/access_tokens`, (body) => body === "")
      .matchHeader("authorization", /^bearer eyJ/i)
      .reply(201, {
        token: INSTALLATION_TOKEN,
        expires_at: "2999-01-01T00:00:00Z",
        permissions: {
          issues: "write",
          pull_requests: "write",
          contents: "read",
          metadata: "read",
        },
        repository_selection: "all",
      })
  );
}

/**
 * `.github/talos.yml` reads: the repository's file, and for a missing file the owner's `.github`
 * repository fallback. Pass YAML text to serve a file.
 */
export function mockRepoConfig(
  scope: nock.Scope,
  {
    owner = "Codertocat",
    repo = "Hello-World",
    yaml,
  }: { owner?: string; repo?: string; yaml?: string } = {},
) {
  const path = `/repos/${owner}/${repo}/contents/.github%2Ftalos.yml`;
  if (yaml !== undefined) {
    return scope
      .get(path)
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .reply(200, yaml, {
        "content-type": "application/vnd.github.raw; charset=utf-8",
      });
  }
  return scope
    .get(path)
    .reply(404, { message: "Not Found" })
    .get(`/repos/${owner}/.github/contents/.github%2Ftalos.yml`)
    .reply(404, { message: "Not Found" });
}

/**
 * `GET /repos/{owner}/{repo}` as a backfill or catch-up reads it: the repository's id, name and
 * creation time (which tell whether a memory is this repository's).
 */
export function mockRepositoryRead(
  scope: nock.Scope,
  fullName: string,
  id: number,
  {
    createdAt = "2019-05-15T15:19:25Z",
    defaultBranch,
  }: { createdAt?: string; defaultBranch?: string } = {},
) {
  const [owner = "", name = ""] = fullName.split("/");
  return scope.get(`/repos/${fullName}`).reply(200, {
    id,
    name,
    full_name: fullName,
    owner: { login: owner },
    created_at: createdAt,
    ...(defaultBranch ? { default_branch: defaultBranch } : {}),
  });
}

/**
 * GitHub's answer to the read of issue `number` (a similar issue gets one before it is named):
 * the issue in the repository, or `status` with GitHub's message (a 410's says the issue was
 * deleted unless told otherwise), or (`movedTo`) the issue a transfer's redirect leads to, in
 * another repository: GitHub's 301 to it by repository id (`movedToId`), which fetch follows.
 */
export function mockIssueRead(
  scope: nock.Scope,
  number: number,
  {
    fullName = "Codertocat/Hello-World",
    status = 200,
    movedTo,
    movedToId = 99,
    message = status === 410 ? "This issue was deleted" : "Not Found",
    title = `Issue ${number}`,
  }: {
    fullName?: string;
    status?: number;
    movedTo?: string;
    movedToId?: number;
    message?: string;
    /** The title GitHub shows now, which a similar-issues comment names. */
    title?: string;
  } = {},
) {
  const repository = movedTo ?? fullName;
  const reply =
    status === 200
      ? {
          number,
          title,
          body: null,
          state: "open",
          html_url: `https://github.com/${repository}/issues/${number}`,
          repository_url: `${API}/repos/${repository}`,
        }
      : { message, documentation_url: "https://docs.github.com/rest/issues/issues#get-an-issue" };
  if (movedTo === undefined)
    return scope.get(`/repos/${fullName}/issues/${number}`).reply(status, reply);
  const moved = `/repositories/${movedToId}/issues/${number}`;
  return scope
    .get(`/repos/${fullName}/issues/${number}`)
    .reply(301, "", { location: `${API}${moved}` })
    .get(moved)
    .reply(status, reply);
}

/**
 * Codertocat/Hello-World pull request 2's reviews: one of Talos's (`talos-bot[bot]`), of `sha`,
 * which an earlier `/talos review` (comment 1) asked for.
 */
export function mockEarlierReview(scope: nock.Scope, sha: string) {
  return scope
    .get("/repos/Codertocat/Hello-World/pulls/2/reviews")
    .query({ per_page: "100" })
    .reply(200, [
      {
        id: 79,
        user: { login: `${APP_SLUG}[bot]` },
        body: `Earlier.\n\n<!-- talos:review:${sha}:1 -->`,
        commit_id: sha,
      },
    ]);
}

/**
 * Every request nock could not answer (it answers them as a 404, which can pass for GitHub's:
 * a job dropped as gone). With no mocks set up, any request at all lands here.
 */
export function recordUnmatchedRequests(): string[] {
  const unmatched: string[] = [];
  const listener = (req: { method?: string; path?: string }) =>
    unmatched.push(`${req.method} ${req.path}`);
  nock.emitter.on("no match", listener);
  onTestFinished(() => void nock.emitter.removeListener("no match", listener));
  return unmatched;
}

/**
 * A new issue read again before its automatic work (readIssueNow in on-new-issue.ts): GitHub's
 * answer when the job runs, asked past the cache. It is the payload's `issue` as opened, with
 * what `now` says changed since (closed, locked, edited).
 */
export function mockIssueNow(
  scope: nock.Scope,
  issue: Record<string, unknown> & { number: number },
  now: Record<string, unknown> = {},
  fullName = "Codertocat/Hello-World",
) {
  return scope
    .get(`/repos/${fullName}/issues/${issue.number}`)
    .matchHeader("cache-control", "max-age=0")
    .reply(200, { ...issue, repository_url: `${API}/repos/${fullName}`, ...now });
}

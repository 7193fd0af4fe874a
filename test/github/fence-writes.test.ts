import { afterEach, describe, expect, it } from "vitest";
import { createCliOctokit } from "../../src/cli/create-cli-octokit.js";
import { parseEnv } from "../../src/config.js";
import { createServices, type Services } from "../../src/create-services.js";
import { fenceWrites } from "../../src/github/create-octokit.js";
import { JobLeaseLostError } from "../../src/jobs/redis-job-queue.js";
import { githubScope } from "../helpers/github-mocks.js";
import { captureLogs } from "../helpers/test-app.js";

const REPO = { owner: "acme", repo: "widgets" };
const COMMENTS = "/repos/acme/widgets/issues/7/comments";

/** The cause chain of an error, outermost first. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && chain.length < 10; e = (e as { cause?: unknown }).cause)
    chain.push(e);
  return chain;
}

describe("a job's GitHub client once its lease is lost", () => {
  let services: Services | undefined;
  afterEach(async () => {
    await services?.close();
    services = undefined;
  });

  it("refuses writes, those waiting in the write queue included, and goes on reading", async () => {
    // Writes spaced as in production, so that the second one waits in its queue.
    const env = parseEnv({
      GITHUB_TOKEN: "ghp_fenceTestToken",
      TALOS_GITHUB_WRITE_INTERVAL_MS: "400",
      TALOS_GITHUB_NOTIFICATION_INTERVAL_MS: "400",
    });
    const { log } = await captureLogs("warn");
    services = await createServices({ env, log, ephemeralJobs: true });
    const octokit = createCliOctokit(services);
    const lease = new AbortController();
    fenceWrites(octokit, lease.signal);
    const scope = githubScope()
      .post(COMMENTS, { body: "first" })
      .reply(201, { id: 1 })
      .get("/repos/acme/widgets")
      .reply(200, { full_name: "acme/widgets" });

    const first = octokit.rest.issues.createComment({ ...REPO, issue_number: 7, body: "first" });
    const second = octokit.rest.issues.createComment({ ...REPO, issue_number: 7, body: "second" });
    await first;
    // The second waits its turn in the queue; the lease goes meanwhile.
    lease.abort(new JobLeaseLostError("lost"));
    const refused = await second.then(
      () => undefined,
      (error: unknown) => error,
    );
    // Refused as it was about to be sent: nock, which has no reply for it, never saw it.
    expect(causes(refused).some((e) => e instanceof JobLeaseLostError)).toBe(true);
    await expect(
      octokit.rest.issues.createComment({ ...REPO, issue_number: 7, body: "third" }),
    ).rejects.toBeInstanceOf(JobLeaseLostError);
    expect((await octokit.rest.repos.get(REPO)).data).toEqual({ full_name: "acme/widgets" });
    expect(scope.pendingMocks()).toEqual([]);
  });
});

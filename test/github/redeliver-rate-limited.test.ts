import { Probot, ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { redeliverMissed } from "../../src/github/redeliver-missed.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { API, githubScope } from "../helpers/github-mocks.js";
import { captureLogs, TEST_APP_ID, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

const LIST = "/app/hook/deliveries";
const SINCE = new Date("2026-11-23T12:00:00Z");

/** GitHub's `hook-delivery-item`: a failed attempt at delivering event `guid`. */
const attempt = (id: number, guid: string, deliveredAt: string) => ({
  id,
  guid,
  delivered_at: deliveredAt,
  redelivery: false,
  duration: 0.42,
  status: "failed to connect",
  status_code: 502,
  event: "issues",
  action: "opened",
  installation_id: 2,
  repository_id: 101,
  throttled_at: null,
});

/** The app's client, its own retries and throttling off: what they give up on comes back. */
async function appClient() {
  const probot = new Probot({
    appId: TEST_APP_ID,
    privateKey: TEST_PRIVATE_KEY,
    log: (await captureLogs("warn")).log,
    Octokit: ProbotOctokit.defaults((o: Record<string, any>) => ({
      ...o,
      retry: { enabled: false },
      throttle: { ...o.throttle, enabled: false },
    })),
  });
  return probot.auth();
}

const LIMITS = {
  "a secondary rate limit (403)": {
    status: 403,
    body: {
      message:
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    },
    headers: {},
  },
  "a rate limit answered 429 with retry-after": {
    status: 429,
    body: { message: "Too Many Requests" },
    headers: { "retry-after": "60" },
  },
};

describe("redeliverMissed and GitHub's rate limit on asking for redeliveries", () => {
  for (const [name, limit] of Object.entries(LIMITS)) {
    it(`stops at ${name}, which every next request meets too, leaving the rest for the next start rather than counting them refused`, async () => {
      const scope = githubScope();
      scope
        .get(LIST)
        .query({ per_page: "100" })
        .reply(200, [
          attempt(92, "guid-3", "2026-11-24T10:02:00Z"),
          attempt(91, "guid-2", "2026-11-24T10:01:00Z"),
          attempt(90, "guid-1", "2026-11-24T10:00:00Z"),
        ]);
      const posted: string[] = [];
      for (const id of [90, 91, 92])
        scope.post(`${LIST}/${id}/attempts`).reply((uri) => {
          posted.push(uri);
          return [limit.status, limit.body, limit.headers];
        });
      const metrics = createMetrics();
      const logs = await captureLogs("debug");

      const report = await redeliverMissed({
        app: await appClient(),
        since: SINCE,
        known: () => false,
        log: logs.log,
        max: 100,
        metrics,
      });

      // One request into the limit; the others are not sent into it.
      expect(posted).toEqual([`${LIST}/90/attempts`]);
      expect(report).toMatchObject({
        redelivered: 0,
        stopped: "redelivery failed",
        skipped: { refused: 0, left: 3 },
      });
      const { values } = await metrics.webhookRedeliveries.get();
      expect(Object.fromEntries(values.map((v) => [v.labels.outcome, v.value]))).toEqual({
        left: 3,
      });
      expect(scope.pendingMocks()).toEqual([
        `POST ${API}:443${LIST}/91/attempts`,
        `POST ${API}:443${LIST}/92/attempts`,
      ]);
    });
  }
});

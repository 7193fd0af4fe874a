import { Probot, ProbotOctokit } from "probot";
import { describe, expect, it } from "vitest";
import { redeliverMissed } from "../../src/github/redeliver-missed.js";
import { API, githubScope } from "../helpers/github-mocks.js";
import { captureLogs, TEST_APP_ID, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

const LIST = "/app/hook/deliveries";
const SINCE = new Date("2026-11-23T12:00:00Z");

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

describe("the deliveries listing is bounded in requests", () => {
  it("reads at most 100 pages even when pages hold no attempts but a Link to another page", async () => {
    // README: "read back to the window's start or to its newest 10,000 attempts (100 requests)".
    // A listing whose pages are empty (or hold only attempts it skips) but keep a `next` link
    // must still stop; the bound is counted in attempts kept, so it never does.
    const scope = githubScope();
    let requests = 0;
    scope
      .get(LIST)
      .query(true)
      .times(400)
      .reply(() => {
        requests++;
        // After 300 pages, the listing ends: before, all 300 were read (and more, for ever).
        const headers: Record<string, string> =
          requests < 300
            ? { link: `<${API}${LIST}?per_page=100&cursor=c${requests}>; rel="next"` }
            : {};
        return [200, [], headers];
      });

    const logs = await captureLogs("debug");
    const report = await redeliverMissed({
      app: await appClient(),
      since: SINCE,
      known: () => false,
      log: logs.log,
      max: 100,
    });

    expect(report.redelivered).toBe(0);
    expect(requests).toBe(100);
    expect(report.listingCut).toBe(true);
  });

  it("counts attempts it skips (no guid) towards the bound as well", async () => {
    const scope = githubScope();
    let requests = 0;
    const junk = Array.from({ length: 100 }, (_, i) => ({
      id: i + 1,
      guid: null,
      delivered_at: "2026-11-24T09:00:00Z",
      redelivery: false,
      status_code: 502,
      event: "issues",
      action: "opened",
    }));
    scope
      .get(LIST)
      .query(true)
      .times(400)
      .reply(() => {
        requests++;
        const headers: Record<string, string> =
          requests < 300
            ? { link: `<${API}${LIST}?per_page=100&cursor=c${requests}>; rel="next"` }
            : {};
        return [200, junk, headers];
      });
    const logs = await captureLogs("debug");
    const report = await redeliverMissed({
      app: await appClient(),
      since: SINCE,
      known: () => false,
      log: logs.log,
      max: 100,
    });
    expect(requests).toBe(100);
    expect(report.listingCut).toBe(true);
  });
});

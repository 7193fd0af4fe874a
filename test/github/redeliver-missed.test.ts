import { describe, expect, it } from "vitest";
import {
  redeliverMissed,
  redeliverMissedAtStart,
  redeliveryWindowHours,
  type RedeliverMissedOptions,
} from "../../src/github/redeliver-missed.js";
import { createMetrics, type Metrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { API, githubScope } from "../helpers/github-mocks.js";
import {
  appClient,
  attempt,
  LIST,
  mockPage,
  mockRedeliveries,
} from "../helpers/hook-deliveries.js";
import { captureLogs } from "../helpers/test-app.js";

/** The run looks back to here; every attempt below is after it unless said otherwise. */
const SINCE = new Date("2026-11-23T12:00:00Z");

/** talos_webhook_redeliveries_total by outcome, the outcomes counted. */
async function redeliveries(metrics: Metrics) {
  const { values } = await metrics.webhookRedeliveries.get();
  return Object.fromEntries(values.map((v) => [v.labels.outcome, v.value]));
}

async function run(overrides: Partial<RedeliverMissedOptions> = {}) {
  const logs = await captureLogs("debug");
  const report = await redeliverMissed({
    app: await appClient(),
    since: SINCE,
    known: () => false,
    log: logs.log,
    max: 100,
    ...overrides,
  });
  return { report, logs };
}

describe("redeliverMissed", () => {
  it("reads two pages through the Link header's cursor and asks for every missed delivery, oldest first", async () => {
    const scope = githubScope();
    // Newest first across both pages: c (newest) … a (oldest).
    mockPage(
      scope,
      [
        attempt(30, "guid-c", "2026-11-24T09:00:00Z"),
        attempt(29, "guid-b", "2026-11-24T08:00:00Z"),
      ],
      { next: "v1_29" },
    );
    mockPage(scope, [attempt(12, "guid-a", "2026-11-24T07:00:00Z")], { cursor: "v1_29" });
    const posted: string[] = [];
    mockRedeliveries(scope, [12, 29, 30], posted);

    const { report, logs } = await run();

    expect(posted).toEqual([`${LIST}/12/attempts`, `${LIST}/29/attempts`, `${LIST}/30/attempts`]);
    expect(report).toMatchObject({ seen: 3, deliveries: 3, redelivered: 3, stopped: undefined });
    expect(report.skipped).toEqual({
      delivered: 0,
      redeliveredBefore: 0,
      accepted: 0,
      left: 0,
      refused: 0,
    });
    const summary = logs
      .lines()
      .find((l) => l.msg === "asked GitHub to redeliver missed deliveries");
    expect(summary).toMatchObject({ seen: 3, redelivered: 3, since: SINCE.toISOString() });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("stops reading at `since`: older attempts are neither read further nor asked for", async () => {
    const scope = githubScope();
    // The next page exists, but is older than the window: it must not be requested (nock would
    // fail the listing, and nothing would be asked for).
    mockPage(
      scope,
      [
        attempt(41, "guid-new", "2026-11-23T12:30:00Z"),
        attempt(40, "guid-old", "2026-11-23T11:59:59Z"),
        attempt(39, "guid-older", "2026-11-23T10:00:00Z"),
      ],
      { next: "v1_39" },
    );
    const posted: string[] = [];
    mockRedeliveries(scope, [41], posted);

    const { report } = await run();

    expect(posted).toEqual([`${LIST}/41/attempts`]);
    expect(report).toMatchObject({ seen: 1, deliveries: 1, redelivered: 1 });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("reads no more than maxListed attempts, and says the listing was cut", async () => {
    const scope = githubScope();
    // A third page exists and is in the window: it must not be requested.
    mockPage(
      scope,
      [
        attempt(52, "guid-e", "2026-11-24T09:00:00Z"),
        attempt(51, "guid-d", "2026-11-24T08:00:00Z"),
      ],
      { next: "v1_51" },
    );
    mockPage(
      scope,
      [
        attempt(50, "guid-c", "2026-11-24T07:00:00Z"),
        attempt(49, "guid-b", "2026-11-24T06:00:00Z"),
      ],
      { cursor: "v1_51", next: "v1_49" },
    );
    const posted: string[] = [];
    mockRedeliveries(scope, [50, 51, 52], posted);

    const { report, logs } = await run({ maxListed: 3 });

    expect(posted).toEqual([`${LIST}/50/attempts`, `${LIST}/51/attempts`, `${LIST}/52/attempts`]);
    expect(report).toMatchObject({ seen: 3, deliveries: 3, redelivered: 3, listingCut: true });
    expect(logs.lines().find((l) => l.level === 40)).toMatchObject({
      read: 3,
      msg: expect.stringMatching(/^the app's webhook deliveries are too many/),
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("skips a delivery one of whose attempts succeeded, and one whose redelivery Talos refused (4xx), but asks again for one whose redelivery failed for the time being (5xx, no connection)", async () => {
    const scope = githubScope();
    mockPage(
      scope,
      [
        // guid-fixed: failed, then someone's redelivery got a 200.
        attempt(55, "guid-fixed", "2026-11-24T10:05:00Z", { statusCode: 200, redelivery: true }),
        // guid-doomed: failed, then the redelivery Talos asked for failed too (a bad signature, a
        // body too large): asked for once, never again.
        attempt(54, "guid-doomed", "2026-11-24T10:04:00Z", { statusCode: 400, redelivery: true }),
        // guid-busy and guid-down: their redeliveries found Talos refusing work for a while (a
        // full queue, a shutdown: 503) or down again (no connection): asked for again.
        attempt(59, "guid-busy", "2026-11-24T10:09:00Z", { statusCode: 503, redelivery: true }),
        attempt(58, "guid-down", "2026-11-24T10:08:00Z", { statusCode: 0, redelivery: true }),
        attempt(57, "guid-down", "2026-11-24T10:07:00Z", { statusCode: 502 }),
        attempt(56, "guid-busy", "2026-11-24T10:06:00Z", { statusCode: 503 }),
        attempt(53, "guid-missed", "2026-11-24T10:03:00Z", { statusCode: 500 }),
        attempt(52, "guid-doomed", "2026-11-24T10:02:00Z", { statusCode: 400 }),
        attempt(51, "guid-fixed", "2026-11-24T10:01:00Z"),
        attempt(50, "guid-fine", "2026-11-24T10:00:00Z", { statusCode: 200 }),
      ].sort((a, b) => b.id - a.id),
    );
    const posted: string[] = [];
    // Each by its newest attempt, the oldest delivery first.
    mockRedeliveries(scope, [53, 59, 58], posted);

    const { report } = await run();

    expect(posted).toEqual([53, 59, 58].map((id) => `${LIST}/${id}/attempts`));
    expect(report).toMatchObject({ seen: 10, deliveries: 6, redelivered: 3 });
    expect(report.skipped).toMatchObject({ delivered: 2, redeliveredBefore: 1, accepted: 0 });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("with maxRedeliveries, skips a delivery redelivered that many times, each refused for now, and asks for one redelivered fewer times", async () => {
    const scope = githubScope();
    mockPage(scope, [
      // guid-refused-again: refused (503) at its first delivery and at both redeliveries.
      attempt(75, "guid-refused-again", "2026-11-24T10:05:00Z", {
        statusCode: 503,
        redelivery: true,
      }),
      attempt(74, "guid-once", "2026-11-24T10:04:00Z", { statusCode: 503, redelivery: true }),
      attempt(73, "guid-refused-again", "2026-11-24T10:03:00Z", {
        statusCode: 503,
        redelivery: true,
      }),
      attempt(72, "guid-once", "2026-11-24T10:02:00Z", { statusCode: 503 }),
      attempt(71, "guid-refused-again", "2026-11-24T10:01:00Z", { statusCode: 503 }),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [74], posted);

    const { report } = await run({ maxRedeliveries: 2 });

    expect(posted).toEqual([`${LIST}/74/attempts`]);
    expect(report).toMatchObject({ deliveries: 2, redelivered: 1 });
    expect(report.skipped).toEqual({
      delivered: 0,
      redeliveredBefore: 1,
      accepted: 0,
      left: 0,
      refused: 0,
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("skips a delivery the ledger says Talos accepted, asking it only about missed ones", async () => {
    const scope = githubScope();
    mockPage(scope, [
      attempt(62, "guid-ok", "2026-11-24T10:02:00Z", { statusCode: 200 }),
      attempt(61, "guid-accepted", "2026-11-24T10:01:00Z"),
      attempt(60, "guid-missed", "2026-11-24T10:00:00Z"),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [60], posted);
    const asked: string[] = [];

    const { report } = await run({
      known: async (guid) => {
        asked.push(guid);
        return guid === "guid-accepted";
      },
    });

    expect(posted).toEqual([`${LIST}/60/attempts`]);
    expect(asked.sort()).toEqual(["guid-accepted", "guid-missed"]);
    expect(report.skipped).toMatchObject({ accepted: 1, delivered: 1 });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("asks for at most `max`, the oldest, and says how many were left", async () => {
    const scope = githubScope();
    mockPage(scope, [
      attempt(73, "guid-4", "2026-11-24T10:03:00Z"),
      attempt(72, "guid-3", "2026-11-24T10:02:00Z"),
      attempt(71, "guid-2", "2026-11-24T10:01:00Z"),
      attempt(70, "guid-1", "2026-11-24T10:00:00Z"),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [70, 71], posted);

    const metrics = createMetrics();
    const { report, logs } = await run({ max: 2, metrics });

    expect(posted).toEqual([`${LIST}/70/attempts`, `${LIST}/71/attempts`]);
    expect(report).toMatchObject({ redelivered: 2, skipped: { left: 2 } });
    expect(await redeliveries(metrics)).toEqual({ asked: 2, left: 2 });
    expect(logs.lines().find((l) => l.left === 2)).toMatchObject({ level: 40, max: 2 });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("ends the listing at an attempt it cannot read, and asks for none such", async () => {
    const scope = githubScope();
    mockPage(
      scope,
      [
        attempt(87, "guid-read", "2026-11-24T10:02:00Z"),
        { ...attempt(86, "guid-no-time", "2026-11-24T10:01:00Z"), delivered_at: "yesterday" },
        attempt(85, "guid-after", "2026-11-24T10:00:00Z"),
      ],
      { next: "v1_85" },
    );
    const posted: string[] = [];
    mockRedeliveries(scope, [87], posted);

    const { report } = await run();

    expect(posted).toEqual([`${LIST}/87/attempts`]);
    expect(report).toMatchObject({ seen: 1, redelivered: 1 });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("logs a warning and asks for nothing when GitHub fails the listing, without throwing", async () => {
    const scope = githubScope();
    mockPage(scope, [attempt(81, "guid-x", "2026-11-24T10:00:00Z")], { next: "v1_81" });
    scope
      .get(LIST)
      .query({ per_page: "100", cursor: "v1_81" })
      .reply(502, { message: "Server Error" });

    const { report, logs } = await run();

    expect(report).toMatchObject({ redelivered: 0, stopped: "listing failed" });
    expect(logs.lines().find((l) => l.level === 40)).toMatchObject({
      msg: "cannot list the app's webhook deliveries; none redelivered",
      status: 502,
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("goes on with the others when GitHub refuses one redelivery (4xx)", async () => {
    const scope = githubScope();
    mockPage(scope, [
      attempt(92, "guid-3", "2026-11-24T10:02:00Z"),
      attempt(91, "guid-2", "2026-11-24T10:01:00Z"),
      attempt(90, "guid-1", "2026-11-24T10:00:00Z"),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [90], posted);
    mockRedeliveries(scope, [91], posted, 422);
    mockRedeliveries(scope, [92], posted);

    const metrics = createMetrics();
    const { report, logs } = await run({ metrics });

    expect(posted).toEqual([`${LIST}/90/attempts`, `${LIST}/91/attempts`, `${LIST}/92/attempts`]);
    expect(report).toMatchObject({ redelivered: 2, skipped: { refused: 1 }, stopped: undefined });
    expect(await redeliveries(metrics)).toEqual({ asked: 2, refused: 1 });
    expect(logs.lines().find((l) => l.level === 40)).toMatchObject({
      guid: "guid-2",
      status: 422,
      msg: "GitHub refused to redeliver a delivery",
    });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("stops asking when GitHub fails a redelivery with a 5xx, which would fail them all", async () => {
    const scope = githubScope();
    mockPage(scope, [
      attempt(96, "guid-2", "2026-11-24T10:01:00Z"),
      attempt(95, "guid-1", "2026-11-24T10:00:00Z"),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [95], posted, 503);

    const { report, logs } = await run();

    expect(posted).toEqual([`${LIST}/95/attempts`]);
    expect(report).toMatchObject({
      redelivered: 0,
      stopped: "redelivery failed",
      skipped: { left: 2, refused: 0 },
    });
    expect(logs.lines().find((l) => l.level === 40)).toMatchObject({ guid: "guid-1", status: 503 });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("stops before the next redelivery once the server is stopping", async () => {
    const scope = githubScope();
    mockPage(scope, [
      attempt(101, "guid-2", "2026-11-24T10:01:00Z"),
      attempt(100, "guid-1", "2026-11-24T10:00:00Z"),
    ]);
    const stopping = new AbortController();
    const posted: string[] = [];
    scope.post(`${LIST}/100/attempts`).reply((uri) => {
      posted.push(uri);
      // SIGTERM arrives meanwhile: a redelivery now would reach a closed listener and count
      // as the one redelivery asked for.
      stopping.abort();
      return [202, {}];
    });

    const { report } = await run({ signal: stopping.signal });

    expect(posted).toEqual([`${LIST}/100/attempts`]);
    expect(report).toMatchObject({ redelivered: 1, stopped: "aborted", skipped: { left: 1 } });
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe("redeliverMissedAtStart", () => {
  it("looks back TALOS_REDELIVER_HOURS and takes the deliveries the queue has accepted as known", async () => {
    const clock = createFakeClock(Date.parse("2026-11-24T12:00:00Z"));
    const scope = githubScope();
    mockPage(scope, [
      attempt(111, "guid-parked", "2026-11-24T10:01:00Z"),
      attempt(110, "guid-missed", "2026-11-24T06:00:00Z"),
      attempt(109, "guid-too-old", "2026-11-24T05:59:59Z"),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [110], posted);
    const logs = await captureLogs("debug");
    const app = await appClient();

    const report = await redeliverMissedAtStart({
      auth: async () => app,
      queue: { has: async (id: string) => id === "guid-parked" },
      hours: 6,
      ledgerRetentionHours: 72,
      clock,
      log: logs.log,
    });

    expect(posted).toEqual([`${LIST}/110/attempts`]);
    expect(report).toMatchObject({ seen: 2, redelivered: 1, skipped: { accepted: 1 } });
    expect(scope.pendingMocks()).toEqual([]);
  });

  // The queue skips only deliveries the ledger still remembers: one Talos accepted and finished
  // whose 2xx GitHub did not see (a reset, a timeout), older than the ledger's retention, would be
  // asked for again and run twice.
  it("looks back no further than TALOS_LEDGER_RETENTION_HOURS when the ledger forgets sooner, and warns naming it", async () => {
    const clock = createFakeClock(Date.parse("2026-11-24T12:00:00Z"));
    const scope = githubScope();
    mockPage(scope, [
      attempt(121, "guid-missed", "2026-11-24T11:30:00Z"),
      // Accepted and finished 2 hours ago; the ledger, kept 1 hour, has forgotten it.
      attempt(120, "guid-forgotten", "2026-11-24T10:00:00Z"),
    ]);
    const posted: string[] = [];
    mockRedeliveries(scope, [121], posted);
    const logs = await captureLogs("debug");
    const app = await appClient();

    const report = await redeliverMissedAtStart({
      auth: async () => app,
      queue: { has: async () => false },
      hours: 24,
      ledgerRetentionHours: 1,
      clock,
      log: logs.log,
    });

    expect(posted).toEqual([`${LIST}/121/attempts`]);
    expect(report).toMatchObject({ seen: 1, redelivered: 1 });
    expect(redeliveryWindowHours(24, 1)).toBe(1);
    expect(redeliveryWindowHours(6, 72)).toBe(6);
    const warnings = logs.lines().filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg as string).toMatch(/1 h back, not 24.*TALOS_LEDGER_RETENTION_HOURS/);
  });

  it("asks GitHub nothing when TALOS_REDELIVER_HOURS is 0", async () => {
    // No nock mocks: any request would fail the listing, and the report would say so.
    let authenticated = false;
    const report = await redeliverMissedAtStart({
      auth: async () => {
        authenticated = true;
        return appClient();
      },
      queue: { has: async () => false },
      hours: 0,
      ledgerRetentionHours: 72,
      clock: createFakeClock(),
      log: (await captureLogs("debug")).log,
    });

    expect(report).toBeUndefined();
    expect(authenticated).toBe(false);
  });
});

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

      const { report } = await run({ metrics });

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

describe("the deliveries listing is bounded in requests", () => {
  /**
   * A listing of `page` over and over, each linking to a next: 100 pages are mocked, and a
   * 101st request would fail the listing (no mock, no network). Before, it read on for ever.
   */
  async function listEndlessly(page: unknown[]) {
    const scope = githubScope();
    let requests = 0;
    scope
      .get(LIST)
      .query(true)
      .times(100)
      .reply(() => {
        requests++;
        const next = `<${API}${LIST}?per_page=100&cursor=c${requests}>; rel="next"`;
        return [200, page, { link: next }];
      });
    const report = await redeliverMissed({
      app: await appClient(),
      since: SINCE,
      known: () => false,
      log: (await captureLogs("debug")).log,
      max: 100,
    });
    expect(scope.pendingMocks()).toEqual([]);
    expect(report.stopped).toBeUndefined();
    return { requests, report };
  }

  it("reads at most 100 pages of its 10,000 attempts even when the pages hold none", async () => {
    const { requests, report } = await listEndlessly([]);
    expect(report.redelivered).toBe(0);
    expect(requests).toBe(100);
    expect(report.listingCut).toBe(true);
  });

  it("counts the attempts it skips (no guid) towards the 10,000", async () => {
    const junk = Array.from({ length: 100 }, (_, i) => ({
      id: i + 1,
      guid: null,
      delivered_at: "2026-11-24T09:00:00Z",
      redelivery: false,
      status_code: 502,
      event: "issues",
      action: "opened",
    }));
    const { requests, report } = await listEndlessly(junk);
    expect(requests).toBe(100);
    expect(report.listingCut).toBe(true);
  });
});

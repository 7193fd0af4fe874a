import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { JobJournal } from "../../src/jobs/job-journal.js";
import { githubScope } from "../helpers/github-mocks.js";
import { runTalos } from "../helpers/run-talos.js";
import { captureLogs, makeDataDir, TEST_PRIVATE_KEY } from "../helpers/test-app.js";

const LIST = "/app/hook/deliveries";
const APP_JWT = /^bearer eyJ/i;
const APP = { APP_ID: "1", PRIVATE_KEY: TEST_PRIVATE_KEY };

/** One attempt of delivery `guid`, `minutesAgo` before now. */
function attempt(id: number, guid: string, minutesAgo: number, statusCode = 502) {
  return {
    id,
    guid,
    delivered_at: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    redelivery: false,
    status_code: statusCode,
    event: "issues",
    action: "opened",
  };
}

/** The listing, newest first: one missed, one Talos accepted (GitHub saw it fail), one delivered. */
function mockListing(scope: ReturnType<typeof githubScope>) {
  scope
    .get(LIST)
    .query({ per_page: "100" })
    .matchHeader("authorization", APP_JWT)
    .reply(200, [
      attempt(3, "guid-delivered", 10, 200),
      attempt(2, "guid-accepted", 20),
      attempt(1, "guid-missed", 30),
    ]);
}

/** A server's journal under `dataDir` that accepted `guid-accepted`. */
async function journalWith(dataDir: string) {
  const journal = await JobJournal.open({
    file: join(dataDir, "jobs", "journal.log"),
    maxQueued: 10,
    retentionMs: 3_600_000,
    maxFinished: 100,
    clock: systemClock,
    log: (await captureLogs("warn")).log,
  });
  await journal.enqueue({
    id: "guid-accepted",
    kind: "issue",
    event: "issues.opened",
    thread: "t",
    repository: "octo/alpha",
    installation: 1,
    payload: {},
  });
  await journal.close();
}

describe("talos redeliver", () => {
  it("lists with --dry-run the deliveries the server missed, asking for none, then asks for them", async () => {
    const dataDir = makeDataDir();
    await journalWith(dataDir);
    const scope = githubScope();
    mockListing(scope);

    const dry = await runTalos(["redeliver", "--dry-run", "--data-dir", dataDir], { env: APP });

    expect(dry.code).toBe(0);
    expect(scope.pendingMocks()).toEqual([]);
    const lines = dry.out.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+ {2}issues\.opened {2}guid-missed$/);
    expect(lines[1]).toBe(
      "3 deliveries in the last 24 h; would ask for 1 (already delivered 1, accepted by Talos 1, failed for good before 0, refused by GitHub 0, left for another run 0)",
    );

    mockListing(scope);
    const posted: string[] = [];
    scope
      .post(`${LIST}/1/attempts`)
      .matchHeader("authorization", APP_JWT)
      .reply((uri) => {
        posted.push(uri);
        return [202, {}];
      });
    const asked = await runTalos(["redeliver", "--json", "--hours", "2", "--data-dir", dataDir], {
      env: APP,
    });

    expect(asked.code).toBe(0);
    expect(posted).toEqual([`${LIST}/1/attempts`]);
    expect(scope.pendingMocks()).toEqual([]);
    expect(JSON.parse(asked.out)).toMatchObject({
      deliveries: 3,
      redelivered: 1,
      chosen: [{ guid: "guid-missed", event: "issues", action: "opened" }],
      skipped: { delivered: 1, accepted: 1, left: 0 },
    });
    expect(asked.err).not.toContain("PRIVATE KEY");
  });

  it("exits 1 with one line on stderr, no stack, when GitHub refuses the listing", async () => {
    const scope = githubScope();
    scope
      .get(LIST)
      .query({ per_page: "100" })
      .matchHeader("authorization", APP_JWT)
      .reply(401, { message: "Bad credentials" });

    const { code, out, err } = await runTalos(["redeliver", "--data-dir", makeDataDir()], {
      env: APP,
    });

    expect(code).toBe(1);
    expect(scope.pendingMocks()).toEqual([]);
    expect(err).toBe("talos redeliver: listing failed: 401 Bad credentials\n");
    expect(out).toMatch(/asked for 0 .*; stopped: listing failed\n$/);
  });

  it.each([[[]], [["--json"]]])(
    "scrubs a configured secret that GitHub's answer (a proxy's, say) quotes from its line and report (%j)",
    async (flags) => {
      const secret = "proxy-credential-0123456789abcdef";
      const scope = githubScope();
      scope
        .get(LIST)
        .query({ per_page: "100" })
        .reply(401, { message: `Bad credentials: ${secret}` });
      const { code, out, err } = await runTalos(
        ["redeliver", ...flags, "--data-dir", makeDataDir()],
        { env: { ...APP, GITHUB_TOKEN: secret } },
      );
      expect(code).toBe(1);
      expect(scope.pendingMocks()).toEqual([]);
      expect(err).toBe("talos redeliver: listing failed: 401 Bad credentials: [REDACTED]\n");
      expect(out).not.toContain(secret);
      if (flags.length > 0) {
        expect(JSON.parse(out)).toMatchObject({
          stopped: "listing failed",
          error: "401 Bad credentials: [REDACTED]",
        });
      }
    },
  );

  it("prints in --json no credential the answer quotes: the app's JWT, which it sent", async () => {
    // A proxy's answer quoting the Authorization header it refused: it had reached stdout.
    const scope = githubScope();
    scope
      .get(LIST)
      .query({ per_page: "100" })
      .reply(function () {
        return [401, { message: `Bad credentials: ${String(this.req.headers.authorization)}` }];
      });
    const { code, out, err } = await runTalos(
      ["redeliver", "--json", "--data-dir", makeDataDir()],
      { env: APP },
    );
    expect(code).toBe(1);
    expect(scope.pendingMocks()).toEqual([]);
    const jwt = /eyJ[\w-]+\.eyJ[\w-]+/;
    expect(err).not.toMatch(jwt);
    expect(out).not.toMatch(jwt);
    expect(JSON.parse(out).error).toContain("[REDACTED]");
  });

  it("exits 2 with one line without the app's credentials, or for a window GitHub does not keep", async () => {
    githubScope(); // no mocks: any request fails the test
    const missing = await runTalos(["redeliver"], { env: {} });
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^talos redeliver: set APP_ID and PRIVATE_KEY .*\n$/);

    const tooLong = await runTalos(["redeliver", "--hours", "100"], { env: APP });
    expect(tooLong.code).toBe(2);
    expect(tooLong.err).toBe(
      "talos redeliver: --hours takes at most 72 (GitHub keeps deliveries 3 days), not 100\n",
    );
  });
});

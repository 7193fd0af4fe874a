import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { catchUpRepository } from "../../src/memory/catch-up-repository.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { listedIssue } from "../helpers/listed-issue.js";
import { makeDataDir } from "../helpers/test-app.js";
import { openTestStore } from "../helpers/test-memory.js";

const SINCE = "2026-11-20T08:00:00.000Z";
const UPDATED_AT = "2026-11-24T00:00:00Z";

describe("catchUpRepository when issues are switched off while it reads them", () => {
  it("reads the pull requests' own listing from its first page", async () => {
    const store = await openTestStore(makeDataDir());
    onTestFinished(() => store.close());
    const askedIssues: number[] = [];
    const askedPulls: number[] = [];
    const octokit = {
      rest: {
        issues: {
          // A full first page, then issues are switched off: GitHub answers 410 Gone.
          listForRepo: async ({ page }: { page: number }) => {
            askedIssues.push(page);
            if (page > 1)
              throw Object.assign(new Error("Issues are disabled for this repo"), { status: 410 });
            const data = Array.from({ length: 100 }, (_, i) =>
              listedIssue(1_000 - i, { updated_at: UPDATED_AT }),
            );
            return { data, headers: {} };
          },
        },
        pulls: {
          // Three pull requests updated since, all on the first page.
          list: async ({ page }: { page: number }) => {
            askedPulls.push(page);
            const data =
              page === 1
                ? [3, 2, 1].map((number) => ({
                    ...listedIssue(2_000 + number, { updated_at: UPDATED_AT }),
                    html_url: `https://github.com/acme/widgets/pull/${2_000 + number}`,
                  }))
                : [];
            return { data, headers: {} };
          },
        },
      },
    } as unknown as Octokit;

    const result = await catchUpRepository({
      octokit,
      repo: { owner: "acme", repo: "widgets" },
      memory: store,
      since: SINCE,
      max: 10_000,
      clock: createFakeClock(),
      log: pino({ level: "silent" }),
    });

    expect(askedIssues).toEqual([1, 2]);
    expect(askedPulls).toEqual([1]);
    expect(result).toMatchObject({ status: "done", listing: "pulls", stored: 103 });
    const ids = (await store.list()).map((record) => record.id);
    expect(ids).toEqual(
      expect.arrayContaining(["pull_request-2001", "pull_request-2002", "pull_request-2003"]),
    );
  });
});
